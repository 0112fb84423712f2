// Package rungstate reads what the HTTP handler and the Prometheus adapter
// both need to know about a ladder's rungs: whether each can serve now, its
// breaker state, and a short, stable name for why a rung fell.
//
// It is the one place that adapts to the router's health API, so that
// ladderhttp and ladderprom judge a rung the same way.
package rungstate

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// Rung is one rung's state as it stands.
type Rung struct {
	Name     string
	Position int
	Kind     string // "model", "cache", "heuristic" or "default"
	// State is a model tier's breaker state ("closed", "open",
	// "half-open"), or its condition when it is "loading" or "unhealthy"
	// (router.Condition); for the other rungs "available" or, for the cache,
	// "on-hit" (it answers only inputs it has seen).
	State string
	// CanServe reports whether the rung can answer a new input now: a
	// model tier whose breaker is not open, the heuristic or the default.
	// The cache is not counted: it answers only repeated inputs.
	CanServe bool
	// Since is when the breaker entered State; zero when not known.
	Since time.Time
	// RetryAfter is when an open breaker lets a probe through; zero when
	// not open or not known.
	RetryAfter time.Time
}

// Rungs returns the state of every rung of r, in ladder order.
func Rungs(r *router.Router) []Rung {
	health := r.Health()
	names := r.Rungs()
	out := make([]Rung, len(names))
	for i, name := range names {
		g := Rung{Name: name, Position: i}
		if th, ok := health[name]; ok {
			g.Kind, g.State = "model", th.State.String()
			g.CanServe = th.State != policy.Open
			g.Since, g.RetryAfter = th.Since, th.RetryAfter
			if !th.Condition.CanServe() && th.Condition != router.BreakerOpen {
				// Loading, or taken out by its probes: skipped whatever
				// its breaker says.
				g.State, g.CanServe = th.Condition.String(), false
			}
		} else {
			g.Kind = name
			switch name {
			case router.RungCache:
				g.State = "on-hit"
			default:
				g.State, g.CanServe = "available", true
			}
		}
		out[i] = g
	}
	return out
}

// Ready reports whether the ladder can answer a new input: some rung can
// serve, and so can every rung named in required. When it cannot, why
// says so.
func Ready(rungs []Rung, required []string) (ready bool, why string) {
	for _, name := range required {
		i := slices.IndexFunc(rungs, func(g Rung) bool { return g.Name == name })
		if i < 0 {
			return false, "required rung " + name + " is not in the ladder"
		}
		if !rungs[i].CanServe {
			return false, "required rung " + name + " cannot serve: " + rungs[i].State
		}
	}
	if !slices.ContainsFunc(rungs, func(g Rung) bool { return g.CanServe }) {
		return false, "no rung can serve a new input"
	}
	return true, ""
}

// Reason names why a rung fell, for a metric label or a header: one of
// "breaker_open", "bulkhead_full", "abandoned", "unavailable", "retry_budget", "timeout",
// "invalid_output", "panic", "not_cached", "too_stale", "not_accepted",
// "canceled", "deadline" or "error".
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, router.ErrNotAccepted):
		return "not_accepted"
	case errors.Is(err, router.ErrNotCached):
		return "not_cached"
	case errors.Is(err, router.ErrTooStale):
		return "too_stale"
	case errors.Is(err, router.ErrAbandoned):
		return "abandoned"
	case errors.Is(err, router.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, policy.ErrOpen):
		return "breaker_open"
	case errors.Is(err, policy.ErrFull):
		return "bulkhead_full"
	case errors.Is(err, policy.ErrBudget):
		return "retry_budget"
	case errors.Is(err, policy.ErrTimeout):
		return "timeout"
	case errors.Is(err, router.ErrInvalidOutput):
		return "invalid_output"
	case errors.Is(err, router.ErrPanic):
		return "panic"
	case errors.Is(err, tensor.ErrInvalidInput):
		return "invalid_input"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}
