package router

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/policy"
)

// Condition is what a model tier can do now, as [TierHealth] reports it.
type Condition int

// The conditions of a model tier. The zero value is Healthy.
const (
	// Healthy: the tier is tried.
	Healthy Condition = iota
	// Loading: the tier has no version yet (a manager, such as package
	// reload's, is loading it); the tier is skipped without an attempt.
	Loading
	// Unhealthy: the tier's probes found it unhealthy ([Handle.Probed],
	// package probe); it is skipped without an attempt until they find it
	// healthy.
	Unhealthy
	// BreakerOpen: the tier's breaker is open; see TierHealth.Since and
	// RetryAfter.
	BreakerOpen
	// ReloadFailed: the last reload or start-up load of the tier was
	// rejected or rolled back, and the tier still serves its previous
	// version (TierHealth.Version); TierHealth.ReloadErr says why.
	ReloadFailed
)

var conditionNames = [...]string{"healthy", "loading", "unhealthy", "breaker-open", "reload-failed"}

// String returns "healthy", "loading", "unhealthy", "breaker-open" or
// "reload-failed".
func (c Condition) String() string {
	if c < 0 || int(c) >= len(conditionNames) {
		return fmt.Sprintf("Condition(%d)", int(c))
	}
	return conditionNames[c]
}

// ErrUnavailable matches every [*UnavailableError].
var ErrUnavailable = errors.New("router: tier unavailable")

// UnavailableError is the reason of a model tier skipped without an
// attempt because it is loading or its probes found it unhealthy.
type UnavailableError struct {
	Tier      string    // the tier skipped
	Condition Condition // Loading or Unhealthy
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%v: %s is %v", ErrUnavailable, e.Tier, e.Condition)
}

// Is reports whether target is [ErrUnavailable].
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Outcome returns [Unavailable].
func (e *UnavailableError) Outcome() policy.Outcome { return Unavailable }

// TierHealth is a model tier's health, as [Router.Health] reports it.
//
// The embedded [policy.Status] is the tier's breaker: State, Since and
// RetryAfter (the "until" of an open breaker).
type TierHealth struct {
	policy.Status
	// Condition sums the tier up: loading, healthy, unhealthy (by its
	// probes), breaker open, or reload failed.
	Condition Condition
	// Abandoned is the number of calls to a Model without
	// [TimeoutPredictor] that outlived their timeout and still run.
	Abandoned int64

	// Version is the version serving now, and Source where it was loaded
	// from ([Loaded].Source; empty for a model given in [Tier].Model).
	Version, Source string
	// KnownGood is the last version that served through its rollback
	// window, or that served first; empty while none has.
	KnownGood string
	// ReloadErr is why the last reload or load failed, while Condition is
	// ReloadFailed or Loading; a [*ReloadError] or a [*RollbackError].
	ReloadErr error

	// LastError is the last reason the tier fell, and LastErrorAt when,
	// to the millisecond.
	LastError   error
	LastErrorAt time.Time
	// LastSuccess is when the tier last served a request or passed a
	// probe, to the millisecond.
	LastSuccess time.Time

	// Served and Failed count the requests the tier answered and those it
	// fell for (skips for a full bulkhead or spent retry budget apart).
	Served, Failed uint64
	// ProbesPassed and ProbesFailed count its canary probes.
	ProbesPassed, ProbesFailed uint64
	// Reloads counts the versions swapped in (start-up loads included),
	// ReloadFailures the reloads rejected, and Rollbacks the versions
	// rolled back.
	Reloads, ReloadFailures, Rollbacks uint64
}

// String reads like "healthy v2 from /models/a.onnx; breaker closed since
// 12:00:00.000".
func (h TierHealth) String() string {
	s := h.Condition.String()
	if h.Version != "" {
		s += " " + h.Version
	}
	if h.Source != "" {
		s += " from " + h.Source
	}
	s += "; breaker " + h.Status.String()
	if h.Abandoned > 0 {
		s += fmt.Sprintf(", %d abandoned calls running", h.Abandoned)
	}
	if h.ReloadErr != nil {
		s += "; " + h.ReloadErr.Error()
	}
	return s
}

// tierHealth is what the router knows of a tier's health across ladders
// and versions, by name. The request path reads down with one atomic load
// and counts with atomic adds; the rest is guarded by mu, which is never
// held while user code runs.
type tierHealth struct {
	name     string
	required bool

	down      atomic.Pointer[UnavailableError] // non-nil: skip the tier
	served    atomic.Uint64
	failed    atomic.Uint64
	lastOK    atomic.Int64          // unix nanoseconds
	lastErr   atomic.Pointer[boxed] // the last error the tier fell for
	lastErrAt atomic.Int64          // when, in Unix nanoseconds
	passed    atomic.Uint64
	probeFail atomic.Uint64

	swapping sync.Mutex // serialises a tier's swaps

	mu        sync.Mutex
	loading   bool
	unhealthy bool
	reloadErr error
	knownGood string
	reloads   uint64
	rejected  uint64
	rollbacks uint64
}

func newTierHealth(name string, required bool) *tierHealth {
	return &tierHealth{name: name, required: required}
}

// condition returns the health condition apart from the breaker; mu is
// held.
func (h *tierHealth) conditionLocked() Condition {
	switch {
	case h.loading:
		return Loading
	case h.unhealthy:
		return Unhealthy
	case h.reloadErr != nil:
		return ReloadFailed
	}
	return Healthy
}

// setDownLocked publishes the skip decision for the request path.
func (h *tierHealth) setDownLocked() {
	switch c := h.conditionLocked(); c {
	case Loading, Unhealthy:
		h.down.Store(&UnavailableError{Tier: h.name, Condition: c})
	default:
		h.down.Store(nil)
	}
}

// succeeded counts a request served by version v, at Unix nanoseconds.
func (h *tierHealth) succeeded(at int64, v *version) {
	h.served.Add(1)
	if v.counting.Load() {
		v.served.Add(1)
	}
	stamp(&h.lastOK, at)
}

// stamp stores at in t, unless t is already within a millisecond of it,
// so that a stream of requests writes the cache line once a millisecond
// rather than once a request; the times in [TierHealth] are to the
// millisecond.
func stamp(t *atomic.Int64, at int64) {
	if last := t.Load(); at-last >= int64(time.Millisecond) || at < last {
		t.Store(at)
	}
}

// fell counts a request the tier fell for on version v, at Unix
// nanoseconds.
func (h *tierHealth) fell(o policy.Outcome, err error, at int64, v *version) {
	if o == policy.BulkheadFull || o == policy.BudgetSpent || o == policy.Abandoned {
		return
	}
	h.failed.Add(1)
	if v.counting.Load() {
		v.failed.Add(1)
	}
	stamp(&h.lastErrAt, at)
	// A run of the same error (an open breaker's skips) allocates nothing.
	if last := h.lastErr.Load(); last == nil || last.err != err {
		h.lastErr.Store(&boxed{err, o})
	}
}

// boxed holds an error and its verdict for an atomic.Pointer.
type boxed struct {
	err error
	o   policy.Outcome
}

// rungNote is what the router knows of a rung other than a model tier:
// the last time it served, and the last time it fell and why.
type rungNote struct {
	lastOK    atomic.Int64 // Unix nanoseconds
	lastErr   atomic.Pointer[boxed]
	lastErrAt atomic.Int64
}

func (n *rungNote) fell(o policy.Outcome, err error, at int64) {
	stamp(&n.lastErrAt, at)
	if last := n.lastErr.Load(); last == nil || last.err != err {
		n.lastErr.Store(&boxed{err, o})
	}
}

// change applies f under mu and reports the condition before and after.
func (h *tierHealth) change(f func()) (from, to Condition) {
	h.mu.Lock()
	from = h.conditionLocked()
	f()
	to = h.conditionLocked()
	h.setDownLocked()
	h.mu.Unlock()
	return from, to
}

// healthChanged reports a change of condition as a [HealthChanged] event.
func (r *Router) healthChanged(name string, from, to Condition, err error) {
	if from != to {
		r.emit(Event{Kind: HealthChanged, Tier: name, Position: r.position(name), Health: HealthChange{From: from, To: to}, Err: err})
	}
}

// Health returns the health of every model tier, by name. A breaker whose
// OpenFor has passed is reported half-open, as the next request finds it,
// not open until traffic happens to probe it.
func (r *Router) Health() map[string]TierHealth {
	l := r.ladder.Load()
	out := make(map[string]TierHealth, len(l.byTier))
	for name, t := range l.byTier {
		out[name] = t.health()
	}
	return out
}

// health reports one tier.
func (t *tierRung) health() TierHealth {
	h := t.hs
	th := TierHealth{
		Status:       t.guard.Status(),
		Abandoned:    t.abandoned.Load(),
		Version:      t.version,
		Served:       h.served.Load(),
		Failed:       h.failed.Load(),
		ProbesPassed: h.passed.Load(),
		ProbesFailed: h.probeFail.Load(),
	}
	if e := h.lastErr.Load(); e != nil {
		th.LastError, th.LastErrorAt = e.err, time.Unix(0, h.lastErrAt.Load())
	}
	if ns := h.lastOK.Load(); ns != 0 {
		th.LastSuccess = time.Unix(0, ns)
	}
	h.mu.Lock()
	th.Condition = h.conditionLocked()
	th.Source = t.v.source
	th.KnownGood = h.knownGood
	th.ReloadErr = h.reloadErr
	th.Reloads, th.ReloadFailures, th.Rollbacks = h.reloads, h.rejected, h.rollbacks
	h.mu.Unlock()
	if th.Status.State == policy.Open && (th.Condition == Healthy || th.Condition == ReloadFailed) {
		th.Condition = BreakerOpen
	}
	return th
}
