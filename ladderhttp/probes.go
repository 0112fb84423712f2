package ladderhttp

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/ladder-ml/ladder/router"
)

// Readiness is the ladder's readiness and each rung's state, as
// /readyz?verbose reports it.
type Readiness struct {
	Ready  bool        `json:"ready"`            // the ladder can answer a new input
	Reason string      `json:"reason,omitempty"` // why not ready
	Rungs  []RungState `json:"rungs"`            // every rung, in ladder order
}

// RungState is one rung's state for operators.
type RungState struct {
	Name     string `json:"name"`     // the rung's name, as in [router.Router.Rungs]
	Position int    `json:"position"` // its position in the ladder, from 0
	Kind     string `json:"kind"`     // "model", "cache", "heuristic", "default" or a custom rung's own
	// State is the rung's [router.RungStatus].State: a model tier's
	// breaker state ("closed", "open", "half-open") or "loading" or
	// "unhealthy"; "available" for the heuristic and the default; "on-hit"
	// for the cache, which answers only inputs it has seen.
	State    string `json:"state"`
	CanServe bool   `json:"can_serve"` // it can answer a new input now
	Required bool   `json:"required"`  // Options.Required names it, or it is a tier marked Required
	// Since is when the breaker entered State, when known.
	Since *time.Time `json:"since,omitempty"`
	// Until is when an open breaker lets a probe through.
	Until *time.Time `json:"until,omitempty"`
	// Why is the latest reason the rung fell ("breaker_open", "timeout",
	// ...), Error its error, and FellAt when; empty when it never fell.
	Why    string     `json:"why,omitempty"`
	Error  string     `json:"error,omitempty"`
	FellAt *time.Time `json:"fell_at,omitempty"`
}

// Readiness reports whether the ladder can answer a new input now, by the
// router's one readiness rule ([router.Readiness]) with [Options].Required
// added to the tiers marked Required: every required rung can serve, and
// at least one rung can. A model tier can serve unless its breaker is open
// or it is loading or unhealthy; the heuristic and the default always
// can; the cache is not counted, since it answers only repeated inputs.
func (h *Handler) Readiness() Readiness {
	rungs := h.r.Status()
	ready, why := router.Readiness(rungs, h.required...)
	out := Readiness{Ready: ready, Reason: why, Rungs: make([]RungState, len(rungs))}
	for i, g := range rungs {
		s := RungState{Name: g.Name, Position: g.Position, Kind: g.Kind.String(), State: g.State, CanServe: g.CanServe,
			Required: g.Required || slices.Contains(h.required, g.Name), Since: timePtr(g.Since), Until: timePtr(g.Until)}
		if n := h.fell[i].Load(); n != nil {
			s.Why, s.Error, s.FellAt = n.reason, n.err, timePtr(n.at)
		}
		out.Rungs[i] = s
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Healthz returns the liveness probe: 200 "ok" while the process can
// serve HTTP at all. It never looks at the models, so a reload or an
// outage of every tier never fails it and never gets the process
// restarted.
func (h *Handler) Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !probeMethod(w, req) {
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
}

// Readyz returns the readiness probe: 200 "ok" when [Handler.Readiness]
// is ready, else 503 with the reason. With the query parameter verbose it
// answers the whole [Readiness] as JSON, with the same status.
func (h *Handler) Readyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !probeMethod(w, req) {
			return
		}
		rd := h.Readiness()
		status := http.StatusOK
		if !rd.Ready {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Cache-Control", "no-store")
		if req.URL.Query().Has("verbose") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rd)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		if rd.Ready {
			_, _ = w.Write([]byte("ok\n"))
		} else {
			_, _ = w.Write([]byte("not ready: " + rd.Reason + "\n"))
		}
	})
}

func probeMethod(w http.ResponseWriter, req *http.Request) bool {
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}
