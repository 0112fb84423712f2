package router

import (
	"runtime/debug"
	"slices"
	"time"

	"github.com/ladder-ml/ladder/policy"
)

// RungStatus is one rung's state as it stands, as [Router.Status] reports
// it for readiness probes, dashboards and adapters.
type RungStatus struct {
	Name     string // the rung's name
	Position int    // its position in the ladder, from 0
	Kind     Kind   // what it is: the rung's own Kind
	// State says what the rung can do now. A model tier's is its breaker
	// state ("closed", "open", "half-open") or, while it is skipped
	// whatever its breaker says, its condition ("loading", "unhealthy") or
	// "abandoned" (its calls left running at their timeout fill it);
	// the cache's is "on-hit" (it answers only inputs it has seen); the
	// heuristic's and the default's "available"; a custom rung's is its
	// own ([StatusReporter]), by default "available". After Close every
	// rung's is "shut-down".
	State string
	// CanServe reports whether the rung can answer a new input now. The
	// cache never counts: it answers only repeated inputs.
	CanServe bool
	// Required: the rung is a tier marked [Tier].Required.
	Required bool
	// Since is when the rung entered State, and Until when an open
	// breaker lets a probe through; zero when not known.
	Since, Until time.Time
	// Outcome is the rung's last verdict: [policy.Served], or why it last
	// fell; empty before its first request. Err is that fall's error and
	// At when the verdict was given, to the millisecond.
	Outcome policy.Outcome
	Err     error
	At      time.Time
}

// StatusReporter is a [Rung] that reports its own state: [Router.Status]
// takes State, CanServe, Since and Until from it. A rung of
// [Config].Rungs without it is reported "available".
type StatusReporter interface {
	Status() RungStatus
}

// Status returns the state of every rung, in ladder order. A breaker
// whose OpenFor has passed is reported half-open, as the next request
// finds it.
func (r *Router) Status() []RungStatus {
	l := r.ladder.Load()
	closed := r.closed.Load()
	out := make([]RungStatus, len(l.rungs))
	for i, p := range l.rungs {
		s := RungStatus{Name: p.name, Position: i, Kind: p.kind}
		var lastOK, lastErrAt int64
		var last *boxed
		switch rg := p.rung.(type) {
		case *tierRung:
			h := rg.hs
			b := rg.guard.Status()
			s.State, s.Since, s.Until = b.State.String(), b.Since, b.RetryAfter
			s.CanServe, s.Required = b.State != policy.Open, h.required
			if down := h.down.Load(); down != nil {
				// Loading, or taken out by its probes: skipped whatever its
				// breaker says.
				s.State, s.CanServe = down.Condition.String(), false
			} else if rg.timed == nil && rg.abandoned.Load() >= rg.maxAbandoned {
				// Its calls left running at their timeout fill it: skipped
				// until one returns.
				s.State, s.CanServe = policy.Abandoned.String(), false
			}
			lastOK, lastErrAt, last = h.lastOK.Load(), h.lastErrAt.Load(), h.lastErr.Load()
		case *cacheRung:
			s.State = "on-hit"
		default:
			s.State, s.CanServe = "available", true
			if sr, ok := p.rung.(StatusReporter); ok && !p.builtin {
				own, ok := r.ownStatus(p.name, sr)
				if ok {
					s.State, s.CanServe, s.Since, s.Until = own.State, own.CanServe, own.Since, own.Until
				}
			}
		}
		if n := p.note; n != nil {
			lastOK, lastErrAt, last = n.lastOK.Load(), n.lastErrAt.Load(), n.lastErr.Load()
		}
		switch {
		case last != nil && lastErrAt >= lastOK:
			s.Outcome, s.Err, s.At = last.o, last.err, time.Unix(0, lastErrAt)
		case lastOK != 0:
			s.Outcome, s.At = policy.Served, time.Unix(0, lastOK)
		}
		if closed {
			s.State, s.CanServe = "shut-down", false
		}
		out[i] = s
	}
	return out
}

// ownStatus asks a custom rung its status, recovering its panic.
func (r *Router) ownStatus(name string, sr StatusReporter) (s RungStatus, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			r.events.hookPanicked(&PanicError{Tier: name, Hook: "Rung.Status", Value: v, Stack: debug.Stack()})
			ok = false
		}
	}()
	return sr.Status(), true
}

// Ready reports whether the router should receive traffic, with
// Kubernetes readiness semantics: [Readiness] of [Router.Status].
func (r *Router) Ready() bool {
	ready, _ := Readiness(r.Status())
	return ready
}

// Readiness is the one readiness rule, over a [Router.Status]: ready when
// at least one rung can answer a new input, every tier marked
// [Tier].Required can serve, and so can every rung named in required.
// When not ready, why says so.
func Readiness(status []RungStatus, required ...string) (ready bool, why string) {
	if len(status) > 0 && status[0].State == "shut-down" {
		return false, "the router is closed"
	}
	for _, name := range required {
		i := slices.IndexFunc(status, func(s RungStatus) bool { return s.Name == name })
		if i < 0 {
			return false, "required rung " + name + " is not in the ladder"
		}
		if !status[i].CanServe {
			return false, "required rung " + name + " cannot serve: " + status[i].State
		}
	}
	for _, s := range status {
		if s.Required && !s.CanServe {
			return false, "required tier " + s.Name + " cannot serve: " + s.State
		}
	}
	if !slices.ContainsFunc(status, func(s RungStatus) bool { return s.CanServe }) {
		return false, "no rung can serve a new input"
	}
	return true, ""
}
