package router

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/internal/mono"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
)

// Canary is an input with a known answer. A tier's canaries are run by its
// health probes ([Probe]) and by every [Router.Reload] before the new
// version is swapped in.
type Canary struct {
	// Inputs are given to the model as a request's would be (through
	// [Tier].Inputs when set).
	Inputs []tensor.Tensor
	// Want are the expected outputs, in order. Nil means any answer that
	// passes the ladder's validation (finite, the output contract,
	// [Config].Check).
	Want []tensor.Tensor
	// Tolerance is the largest absolute difference allowed between a
	// numeric output and Want. Zero means [DefaultTolerance]; negative
	// means exactly equal.
	Tolerance float64
}

// DefaultTolerance is the default of [Canary].Tolerance.
const DefaultTolerance = 1e-4

// Probe configures a model tier's health probes. The zero value means the
// defaults; probes run only for a tier with [Tier].Canaries.
//
// A probe runs every canary on the tier's current version, bounded by
// Timeout, outside the tier's breaker and retries. While a canary left
// running past Timeout has not returned (a model ignoring ctx), the next
// probes of that version fail without running. FailAfter failed probes
// in a row make the tier Unhealthy: it is then skipped without an attempt.
// PassAfter passed probes in a row readmit it. While the tier's breaker is
// half-open, a passing probe also runs its canaries through the breaker,
// as requests would, so that a healed tier's breaker closes without
// traffic. Probes stop when the router closes.
type Probe struct {
	// Interval is the time between probes, varied by Jitter. Zero means
	// [DefaultProbeInterval] (5s); negative disables the probes.
	Interval time.Duration
	// Jitter is the fraction by which each interval is varied at random.
	// Zero means 0.1; negative means none.
	Jitter float64
	// Timeout bounds one probe. Zero means the tier's [policy.Config]
	// Timeout.
	Timeout time.Duration
	// FailAfter is the number of failed probes in a row that mark the tier
	// unhealthy. Zero means 3.
	FailAfter int
	// PassAfter is the number of passed probes in a row that readmit an
	// unhealthy tier. Zero means 2.
	PassAfter int
}

// DefaultProbeInterval is the default of [Probe].Interval.
const DefaultProbeInterval = 5 * time.Second

func (p Probe) resolve(tierTimeout time.Duration) Probe {
	if p.Interval == 0 {
		p.Interval = DefaultProbeInterval
	}
	switch {
	case p.Jitter == 0:
		p.Jitter = 0.1
	case p.Jitter < 0:
		p.Jitter = 0
	}
	if p.Timeout <= 0 {
		p.Timeout = tierTimeout
	}
	if p.FailAfter <= 0 {
		p.FailAfter = 3
	}
	if p.PassAfter <= 0 {
		p.PassAfter = 2
	}
	return p
}

// ErrCanary matches every [*CanaryError].
var ErrCanary = errors.New("router: canary failed")

// CanaryError reports a canary whose answer was wrong or missing.
type CanaryError struct {
	Tier    string // the tier probed
	Version string // the version that answered
	Index   int    // the canary's index in [Tier].Canaries
	Err     error  // why: the model's error, a validation error, or a mismatch
}

func (e *CanaryError) Error() string {
	return fmt.Sprintf("%v: %s %s canary %d: %v", ErrCanary, e.Tier, e.Version, e.Index, e.Err)
}

// Unwrap returns the cause.
func (e *CanaryError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrCanary].
func (e *CanaryError) Is(target error) bool { return target == ErrCanary }

// canaries runs every canary on model, bounded by timeout each, and
// returns the first failure. The run holds the version's in-flight count,
// so a version is never closed under it; a model that ignores ctx is left
// running on a helper goroutine at the timeout.
func (r *Router) canaries(ctx context.Context, l *ladder, name string, v *version, adapt func([]tensor.Tensor) ([]tensor.Tensor, error), cs []Canary, timeout time.Duration, busy *atomic.Int32) error {
	for i, c := range cs {
		if err := r.canary(ctx, l, name, v, adapt, c, timeout, busy); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &CanaryError{Tier: name, Version: v.label, Index: i, Err: err}
		}
	}
	return nil
}

func (r *Router) canary(ctx context.Context, l *ladder, name string, v *version, adapt func([]tensor.Tensor) ([]tensor.Tensor, error), c Canary, timeout time.Duration, busy *atomic.Int32) error {
	if !v.enter() {
		return ErrClosed
	}
	if busy == nil {
		busy = new(atomic.Int32)
	}
	busy.Add(1)
	type result struct {
		out []tensor.Tensor
		err error
	}
	done := make(chan result, 1)
	var state atomic.Int32 // callRunning, callFinished or callAbandoned
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() { // leaves the version when the model returns
		defer busy.Add(-1)
		var res result
		defer func() {
			if p := recover(); p != nil {
				res = result{err: &PanicError{Tier: name, Value: p, Stack: debug.Stack()}}
			}
			done <- res
			if state.CompareAndSwap(callRunning, callFinished) {
				v.leave()
			} else {
				v.leaveOrphan() // the version may have been closed, or be closed now
			}
		}()
		in := c.Inputs
		if adapt != nil {
			if in, res.err = adapt(in); res.err != nil {
				return
			}
		}
		res.out, res.err = PredictTimeout(tctx, v.model, timeout, in)
	}()
	var res result
	select {
	case res = <-done:
	case <-tctx.Done():
		// A canary left running is an orphan of its version: retiring the
		// version does not wait for it, and closing it leaves the model to
		// the canary, which closes it when it returns.
		v.orphan() // before the call can see itself abandoned and leave
		if state.CompareAndSwap(callRunning, callAbandoned) {
			return fmt.Errorf("%w after %v", policy.ErrTimeout, timeout)
		}
		v.unorphan()
		res = <-done // it has just finished
	}
	if res.err != nil {
		if ctx.Err() == nil && (tctx.Err() != nil || errors.Is(res.err, context.DeadlineExceeded)) {
			return fmt.Errorf("%w after %v: %w", policy.ErrTimeout, timeout, res.err)
		}
		return res.err
	}
	if err := l.validate(name, res.out); err != nil {
		return err
	}
	if c.Want == nil {
		return nil
	}
	return match(res.out, c.Want, c.Tolerance)
}

// match compares got with want within tol.
func match(got, want []tensor.Tensor, tol float64) error {
	switch {
	case tol == 0:
		tol = DefaultTolerance
	case tol < 0:
		tol = 0
	}
	if len(got) != len(want) {
		return fmt.Errorf("got %d outputs, want %d", len(got), len(want))
	}
	for i := range want {
		g, gok := floats(got[i])
		w, wok := floats(want[i])
		if !gok || !wok {
			if !reflect.DeepEqual(got[i].Data, want[i].Data) {
				return fmt.Errorf("output %d is %v, want %v", i, got[i].Data, want[i].Data)
			}
			continue
		}
		if len(g) != len(w) {
			return fmt.Errorf("output %d has %d values, want %d", i, len(g), len(w))
		}
		for j := range w {
			if d := math.Abs(g[j] - w[j]); !(d <= tol) {
				return fmt.Errorf("output %d value %d is %v, want %v ± %v", i, j, g[j], w[j], tol)
			}
		}
	}
	return nil
}

// floats returns t's numeric values as float64s.
func floats(t tensor.Tensor) ([]float64, bool) { return tensor.Float64s(t) }

// probe runs the named tier's canaries at its interval until the router
// closes. It never has more than one probe in flight on a version: while
// a canary left running past its timeout has not returned, the next probes
// fail without running, so a model that ignores ctx is marked Unhealthy
// like one that answers too late.
func (r *Router) probe(name string, cs []Canary, p Probe) {
	defer r.bg.Done()
	timer := time.NewTimer(jittered(p.Interval, p.Jitter))
	defer timer.Stop()
	var (
		busy  = new(atomic.Int32) // probe calls still running on busyV
		busyV *version
	)
	for {
		select {
		case <-r.stop:
			return
		case <-timer.C:
		}
		l := r.ladder.Load()
		t := l.byTier[name]
		if t.hs.isLoading() {
			timer.Reset(jittered(p.Interval, p.Jitter))
			continue
		}
		if t.v != busyV { // a new version: a call hung on the old one says nothing of it
			busy, busyV = new(atomic.Int32), t.v
		}
		if busy.Load() > 0 {
			// A canary left running past its timeout still has not
			// returned: the model is hung, and this probe fails too, so
			// that a model ignoring ctx is taken out like a slow one.
			r.probed(t.hs, fmt.Errorf("%w: a canary run is still running past its timeout of %v", policy.ErrTimeout, p.Timeout), p, l.now())
			timer.Reset(jittered(p.Interval, p.Jitter))
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		stop := context.AfterFunc(r.stopCtx, cancel)
		err := r.canaries(ctx, l, name, t.v, t.adapt, cs, p.Timeout, busy)
		if err == nil && r.stopCtx.Err() == nil {
			r.probed(t.hs, nil, p, l.now())
			t.nudge(ctx, cs)
		} else if !errors.Is(err, ErrClosed) && r.stopCtx.Err() == nil {
			r.probed(t.hs, err, p, l.now())
		}
		stop()
		cancel()
		timer.Reset(jittered(p.Interval, p.Jitter))
	}
}

// nudge runs the canaries through the tier's breaker while it is
// half-open, as requests would, so that the breaker of a healed tier
// closes on its probes instead of waiting for traffic to find it healed.
// A canary that fails there re-opens it, as a request would.
func (t *tierRung) nudge(ctx context.Context, cs []Canary) {
	for _, c := range cs {
		if t.policy.Status().State != policy.HalfOpen || !t.v.enter() {
			return
		}
		in, err := c.Inputs, error(nil)
		if t.adapt != nil {
			in, err = t.adaptInputs(in)
		}
		if err == nil {
			_, _, err = t.policy.Do(ctx, mono.Now(), in, t.attempt)
		}
		t.v.leave()
		if err != nil {
			return
		}
	}
}

// probed counts a probe's result and moves the tier in or out of service.
func (r *Router) probed(h *tierHealth, err error, p Probe, at time.Time) {
	if err == nil {
		h.passed.Add(1)
		h.lastOK.Store(at.UnixNano())
	} else {
		h.probeFail.Add(1)
	}
	from, to := h.change(func() {
		if err == nil {
			h.streak = max(h.streak, 0) + 1
			if h.unhealthy && h.streak >= p.PassAfter {
				h.unhealthy = false
			}
			return
		}
		h.streak = min(h.streak, 0) - 1
		h.lastErrAt.Store(at.UnixNano())
		h.lastErr.Store(&boxed{err})
		if -h.streak >= p.FailAfter {
			h.unhealthy = true
		}
	})
	r.healthChanged(h.name, from, to, err)
}

func (h *tierHealth) isLoading() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.loading
}
