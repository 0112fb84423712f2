package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
)

// Manager manages a model tier over time, through a [Handle]: it reloads
// new versions (package reload), probes the tier with canaries (package
// probe), or ejects it. The router calls Start once for each of a tier's
// [Tier].Manage, concurrently for all tiers, before [New] returns; an
// error from Start fails New, and ends the ctx of the other Starts. Work
// that goes on after Start starts with [Handle.Go], which the router stops
// and waits for at [Router.Close].
type Manager interface {
	Start(ctx context.Context, h *Handle) error
}

// Handle is a manager's door to one model tier: swap in a version
// (draining the old one), run a version outside the tier's breaker, set
// the tier's condition, read its health. It is safe for concurrent use.
type Handle struct {
	r    *Router
	name string
	hs   *tierHealth
}

// Name returns the tier's name.
func (h *Handle) Name() string { return h.name }

// Clock returns the router's clock ([Config].Clock), which a manager
// times its work with.
func (h *Handle) Clock() clock.Clock { return clock.Or(h.r.clock) }

// Go runs f on a goroutine the router owns: ctx ends when the router
// closes, and [Router.Close] waits for f to return. Once Close has begun,
// f is not run and Go reports false. A panic in f is recovered and
// reported as a [HookPanicked] event.
func (h *Handle) Go(f func(ctx context.Context)) bool {
	if !h.r.begin() {
		return false
	}
	go func() {
		defer h.r.bg.Done()
		defer h.recover("Manager")
		f(h.r.stopCtx)
	}()
	return true
}

// Run runs f on the caller's goroutine as work of the router's: f's ctx
// also ends when the router closes, and Close waits for f to return. It
// returns [ErrClosed] without running f once the router is closed.
func (h *Handle) Run(ctx context.Context, f func(ctx context.Context) error) error {
	if !h.r.begin() {
		return ErrClosed
	}
	defer h.r.bg.Done()
	ctx, cancel := h.r.bound(ctx)
	defer cancel()
	return f(ctx)
}

func (h *Handle) recover(hook string) {
	if v := recover(); v != nil {
		h.r.hookPanicked(hook, h.name, v)
	}
}

// Version is one model version of a tier: serving, being checked before
// it serves, or kept to roll back to. A version a manager made with
// [Handle.Prepare] belongs to the router, which closes its model once it
// is released and every call on it has returned.
type Version struct {
	h *Handle
	v *version
}

// Tier returns the name of the version's tier.
func (v *Version) Tier() string { return v.h.name }

// Label returns the version that labels its answers.
func (v *Version) Label() string { return v.v.label }

// Model returns the version's model, e.g. for a last check of its
// accuracy. Calls on it are not counted against the version's drain: use
// [Version.Predict] for calls that may outlive a swap.
func (v *Version) Model() Model { return v.v.model }

// Running returns the calls on the version that the router stopped
// waiting for at their timeout (a model that ignores ctx), still running.
func (v *Version) Running() int64 { return v.v.orphans.Load() }

// Count starts or stops counting the requests the version serves and
// fails, for [Version.Counts].
func (v *Version) Count(on bool) { v.v.counting.Store(on) }

// Counts returns the requests the version served and those it failed
// while counting.
func (v *Version) Counts() (served, failed uint64) { return v.v.served.Load(), v.v.failed.Load() }

// Release gives the version back: no call enters it any more, and the
// router closes its model (when it loaded it) once the running calls
// have returned. Releasing the serving version does nothing: [Handle.Swap]
// returns it once another replaces it. Releasing one twice does nothing
// more.
func (v *Version) Release() {
	v.h.hs.swapping.Lock() // so that no swap makes it serve meanwhile
	defer v.h.hs.swapping.Unlock()
	if v.h.r.tierConfig(v.h.name).v == v.v {
		return
	}
	v.h.r.discard(v.v)
}

// Predict runs the version once on inputs, outside the tier's breaker and
// retries, bounded by timeout: through [Tier].Inputs when set, with its
// panic recovered and its answer validated as a request's is. A model
// that ignores ctx is left running at the timeout, counted in
// [Version.Running], and the version is not closed under it. It returns
// [ErrClosed] for a released version.
func (v *Version) Predict(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	r, name, vv := v.h.r, v.h.name, v.v
	if !vv.enter() {
		return nil, ErrClosed
	}
	adapt := r.tierConfig(name).Inputs
	out, err := vv.aside(ctx, timeout, name, nil, func(ctx context.Context) ([]tensor.Tensor, error) {
		in := inputs
		if adapt != nil {
			var err error
			if in, err = adapt(in); err != nil {
				return nil, &AdaptError{Tier: name, Err: err}
			}
		}
		// Not through PredictTimeout, which stops waiting at the timeout
		// for a model that ignores ctx: this call must not leave the
		// version before the model returns, or the version could close
		// under it.
		if tp := boundsItsRuns(vv.model); tp != nil {
			return tp.PredictTimeout(ctx, timeout, in)
		}
		return vv.model.Predict(ctx, in)
	})
	if err != nil {
		return nil, err
	}
	if err := r.ladder.Load().validate(name, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Current returns the version serving now, or nil while the tier has
// none yet (it is loading).
func (h *Handle) Current() *Version {
	v := h.r.tierConfig(h.name).v
	if v == nil || v.placeholder() {
		return nil
	}
	return h.wrap(v)
}

// wrap returns v as managers see it, the same pointer every time.
func (h *Handle) wrap(v *version) *Version {
	if p := v.pub.Load(); p != nil {
		return p
	}
	v.pub.CompareAndSwap(nil, &Version{h: h, v: v})
	return v.pub.Load()
}

// Timeout returns the tier's per-attempt timeout ([policy.Config]).
func (h *Handle) Timeout() time.Duration {
	if t := h.r.ladder.Load().byTier[h.name]; t != nil {
		return t.timeout
	}
	return 0
}

// ErrSignature matches the error of [Handle.Prepare] for a model that does
// not fit the ladder's contract.
var ErrSignature = errors.New("router: model does not fit the ladder's contract")

// Prepare makes a version of the tier from m, a model the router then
// owns. The version does not serve until [Handle.Swap]; the router closes
// its model once it is released ([Version.Release]), or at Close while it
// serves. A version prepared and never swapped in is the manager's to
// release, as package reload releases every version it rejects. An m
// that does not fit the ladder's input and output contract gives an error
// matching [ErrSignature], and m is closed. label defaults to [VersionOf]
// m.
func (h *Handle) Prepare(m Model, label, source string) (*Version, error) {
	if isNil(m) {
		return nil, errors.New("router: no Model to prepare")
	}
	if label == "" {
		label, _, _ = describe(h.name, m, VersionOf)
	}
	v := newVersion(m, label, source, true)
	v.tier = h.name
	if err := h.r.fits(h.name, m); err != nil {
		_ = v.close()
		return nil, err
	}
	return h.wrap(v), nil
}

// fits checks m against the ladder's contract for the named tier.
func (r *Router) fits(name string, m Model) error {
	l := r.ladder.Load()
	sig, ok, err := describe(name, m, SignatureOf)
	switch {
	case err != nil:
		return err
	case !ok:
		return nil
	case l.inputs != nil && r.tierConfig(name).Inputs == nil && !sameInfos(sig.Inputs, l.inputs):
		return fmt.Errorf("%w: takes %s but the ladder's input contract is %s", ErrSignature, infosString(sig.Inputs), infosString(l.inputs))
	case l.outputs != nil && !sameInfos(sig.Outputs, l.outputs):
		return fmt.Errorf("%w: returns %s but the ladder's output contract is %s", ErrSignature, infosString(sig.Outputs), infosString(l.outputs))
	}
	return nil
}

// Swap makes v the version serving the tier, atomically: requests in
// flight finish on the previous version, which it returns (nil when the
// tier had none yet) and which keeps its model until released. The tier
// starts afresh: its breaker closed and its poison inputs forgotten,
// since they were the previous version's, and its condition no longer
// Loading, Unhealthy or ReloadFailed. A [Reloaded] event reports it.
func (h *Handle) Swap(v *Version) (prev *Version, err error) {
	return h.swap(v, nil)
}

// Restore makes prev serve again in place of the version serving now,
// which failed under traffic: it swaps prev in, releases the failed
// version, counts a rollback, sets the tier's condition to ReloadFailed
// with err as the reason, and reports a [RolledBack] event. The restored
// version serves at once, its breaker closed.
func (h *Handle) Restore(prev *Version, err error) error {
	failed, serr := h.swap(prev, err)
	if serr != nil {
		return serr
	}
	if failed != nil {
		failed.Release()
	}
	return nil
}

// swap swaps v in; a non-nil rolledBack makes it a rollback.
func (h *Handle) swap(v *Version, rolledBack error) (*Version, error) {
	r := h.r
	// One swap of a tier at a time, so two never both return the same
	// previous version.
	h.hs.swapping.Lock()
	defer h.hs.swapping.Unlock()
	cur := r.tierConfig(h.name)
	switch {
	case v.h.name != h.name:
		return nil, fmt.Errorf("%w: version %s is tier %q's, not tier %q's", ErrInvalidConfig, v.v.label, v.h.name, h.name)
	case cur.v == v.v:
		return nil, fmt.Errorf("%w: version %s of tier %q is serving already", ErrInvalidConfig, v.v.label, h.name)
	case v.v.released.Load():
		return nil, fmt.Errorf("%w: version %s of tier %q was released", ErrClosed, v.v.label, h.name)
	}
	next := cur
	next.Model, next.Version, next.v = v.v.model, v.v.label, v.v
	// The new version gets a guard of its own (see build): the tier starts
	// afresh, and the previous version's guard goes with it.
	old := r.ladder.Load().tiers[h.name]
	if err := r.replaceTier(next); err != nil {
		return nil, err
	}
	if old != nil {
		if s := old.guard.Status(); s.State != policy.Closed {
			r.emit(Event{Kind: BreakerChanged, Tier: h.name, Position: r.position(h.name),
				Breaker: policy.StateChange{From: s.State, To: policy.Closed, At: r.now()}})
		}
	}
	hs := h.hs
	was, now := hs.change(func() {
		hs.loading, hs.unhealthy = false, false
		hs.reloadErr = rolledBack
		if rolledBack != nil {
			hs.rollbacks++
		} else {
			hs.reloads++
		}
	})
	if rolledBack != nil {
		r.emit(Event{Kind: RolledBack, Tier: h.name, Position: r.position(h.name), Version: v.v.label, Err: rolledBack})
	} else {
		r.emit(Event{Kind: Reloaded, Tier: h.name, Position: r.position(h.name), Version: v.v.label, Source: v.v.source})
	}
	r.healthChanged(h.name, was, now, rolledBack)
	if cur.v == nil || cur.v.placeholder() {
		return nil, nil
	}
	return h.wrap(cur.v), nil
}

// Reject records a version that was not swapped in: the tier keeps
// serving what it served, its condition is ReloadFailed with err as the
// reason, and a [ReloadRejected] event reports it. label is the rejected
// version's, when known.
func (h *Handle) Reject(label string, err error) {
	hs := h.hs
	was, now := hs.change(func() { hs.rejected, hs.reloadErr = hs.rejected+1, err })
	h.r.emit(Event{Kind: ReloadRejected, Tier: h.name, Position: h.r.position(h.name), Err: err, Version: label})
	h.r.healthChanged(h.name, was, now, err)
}

// SetKnownGood records label as the tier's last known-good version
// ([TierHealth].KnownGood).
func (h *Handle) SetKnownGood(label string) {
	h.hs.mu.Lock()
	h.hs.knownGood = label
	h.hs.mu.Unlock()
}

// Probed records a health probe's result: its error, nil when it passed,
// and whether the tier is unhealthy now, by the prober's own rule. An
// unhealthy tier is skipped without an attempt until a probe says it is
// healthy again. A change of condition is a [HealthChanged] event.
func (h *Handle) Probed(err error, unhealthy bool) {
	hs := h.hs
	at := h.r.now().UnixNano()
	if err == nil {
		hs.passed.Add(1)
		hs.lastOK.Store(at)
	} else {
		hs.probeFail.Add(1)
	}
	from, to := hs.change(func() {
		if err != nil {
			hs.lastErrAt.Store(at)
			hs.lastErr.Store(&boxed{err, policy.Judge(context.Background(), err)})
		}
		hs.unhealthy = unhealthy
	})
	h.r.healthChanged(h.name, from, to, err)
}

// Loading reports whether the tier has no version yet.
func (h *Handle) Loading() bool {
	h.hs.mu.Lock()
	defer h.hs.mu.Unlock()
	return h.hs.loading
}

// Health returns the tier's health, as [Router.Health] reports it.
func (h *Handle) Health() TierHealth {
	if t := h.r.ladder.Load().byTier[h.name]; t != nil {
		return t.health()
	}
	return TierHealth{}
}

// Nudge runs inputs through the tier's breaker, as a request would, while
// the breaker is half-open, so that a healed tier's breaker closes
// without waiting for traffic; a failure re-opens it, as a request's
// would. It reports whether it ran and the attempt's error.
func (h *Handle) Nudge(ctx context.Context, inputs []tensor.Tensor) (bool, error) {
	t := h.r.ladder.Load().byTier[h.name]
	if t == nil || t.guard.Status().State != policy.HalfOpen || !t.v.enter() {
		return false, nil
	}
	defer t.v.leave()
	in, err := inputs, error(nil)
	if t.adapt != nil {
		in, err = t.adaptInputs(in)
	}
	if err == nil {
		err = t.guard.Do(ctx, policy.Call{Inputs: in, Version: t.version, Validate: t.validate}, t.attempt).Err
	}
	return true, err
}

// begin counts an operation that may start background work, or reports
// false once the router is closing.
func (r *Router) begin() bool {
	r.life.Lock()
	defer r.life.Unlock()
	if r.closed.Load() {
		return false
	}
	r.bg.Add(1)
	return true
}

// bound returns ctx, also cancelled when the router closes.
func (r *Router) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(r.stopCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// tierConfig returns the named tier as the current ladder was built.
func (r *Router) tierConfig(name string) Tier {
	r.swap.Lock()
	defer r.swap.Unlock()
	for _, t := range r.cfg.Tiers {
		if t.Name == name {
			return t
		}
	}
	return Tier{}
}

// placeholder reports whether v stands in for a model still loading.
func (v *version) placeholder() bool {
	_, ok := v.model.(unloaded)
	return ok
}
