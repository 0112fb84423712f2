package router

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/internal/mark"
)

// Loader loads a version of a tier's model, for [Tier].Load and
// [Router.Reload]. The router never calls the Loaders of one tier
// concurrently; Load should return promptly once ctx is done, but the
// router stops waiting for one that does not (the next load of the tier
// waits for it). The router owns every model a Loader returns: it closes
// it (when it is an [io.Closer]) once it is replaced and every call on it
// has returned, once it is rejected, when it arrives after the router
// stopped waiting, or when the router closes. Each call must return a new
// model: the model the tier already serves is rejected at the load check.
type Loader interface {
	Load(ctx context.Context) (Loaded, error)
}

// LoaderFunc adapts a plain function to [Loader].
type LoaderFunc func(ctx context.Context) (Loaded, error)

// Load calls f.
func (f LoaderFunc) Load(ctx context.Context) (Loaded, error) { return f(ctx) }

// Loaded is a model a [Loader] produced.
type Loaded struct {
	// Model is the new version. Required.
	Model Model
	// Version labels its answers; the default is [VersionOf] the model.
	Version string
	// Source says where it came from, e.g. a path or URL, for
	// [TierHealth].Source.
	Source string
}

// Retry is how a failed load is retried. A load error marked with
// [policy.Permanent] is not retried.
type Retry struct {
	// Attempts is the most loads one [Router.Reload] makes, counting the
	// first. Zero means 3. A load at start-up ([Tier].Load) goes on after
	// them, with the same backoff, until the tier loads or the router
	// closes, unless the tier must load ([Tier].MustLoad).
	Attempts int
	// Backoff is the delay before the first retry; it doubles each retry
	// up to MaxBackoff. Zero means 100ms and 30s.
	Backoff, MaxBackoff time.Duration
}

func (r Retry) resolve() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 3
	}
	if r.Backoff <= 0 {
		r.Backoff = 100 * time.Millisecond
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = 30 * time.Second
	}
	r.MaxBackoff = max(r.MaxBackoff, r.Backoff)
	return r
}

// Rollback watches a version after [Router.Reload] swaps it in: when more
// than FailureRate of the tier's requests fail within Window (once at
// least MinRequests have been tried), the previous version is restored
// and a [RolledBack] event says so. The previous version stays loaded
// during the window; after it, the new version is the last known-good one
// and the previous is closed. A later reload whose version passes its
// checks ends the window early, keeping the version watched; a rejected
// one leaves the watch running.
type Rollback struct {
	// Window is how long a new version is watched. Zero means 30s;
	// negative disables rollback, and the previous version is closed as
	// soon as it drains.
	Window time.Duration
	// FailureRate is the fraction of failed requests that rolls back, in
	// (0, 1]. Zero means 0.5.
	FailureRate float64
	// MinRequests is the fewest requests judged. Zero means 20.
	MinRequests int
}

func (r Rollback) resolve() Rollback {
	if r.Window == 0 {
		r.Window = 30 * time.Second
	}
	if r.FailureRate <= 0 {
		r.FailureRate = 0.5
	}
	if r.MinRequests <= 0 {
		r.MinRequests = 20
	}
	return r
}

// The checks of a reload, as [ReloadError].Check names them.
const (
	CheckLoad      = "load"      // the Loader failed, after its retries
	CheckSignature = "signature" // the model does not fit the ladder's contract
	CheckCanary    = "canary"    // a canary gave a wrong or invalid answer
	CheckValidate  = "validate"  // [Tier].Validate refused the model
)

// Sentinel errors of reloads.
var (
	// ErrReload matches every [*ReloadError].
	ErrReload = errors.New("router: reload failed")
	// ErrRolledBack matches every [*RollbackError].
	ErrRolledBack = errors.New("router: version rolled back")
)

// ReloadError reports a reload that was not swapped in. The tier keeps
// serving the version it served before.
type ReloadError struct {
	Tier    string // the tier that was to be reloaded
	Check   string // the check that failed: CheckLoad, CheckSignature, CheckCanary or CheckValidate
	Version string // the rejected version, when known
	Serving string // the version still serving; empty while the tier has none
	Err     error  // why the check failed
}

func (e *ReloadError) Error() string {
	s := fmt.Sprintf("%v: %s", ErrReload, e.Tier)
	if e.Version != "" {
		s += " " + e.Version
	}
	s += fmt.Sprintf(" failed its %s check: %v", e.Check, e.Err)
	if e.Serving != "" {
		s += "; serving " + e.Serving
	}
	return s
}

// Unwrap returns the cause.
func (e *ReloadError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrReload].
func (e *ReloadError) Is(target error) bool { return target == ErrReload }

// RollbackError reports a version rolled back for failing under traffic.
type RollbackError struct {
	Tier             string // the tier rolled back
	Version          string // the version rolled back
	Restored         string // the version serving again
	Failed, Requests uint64 // in the window
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("%v: %s %s failed %d of %d requests; serving %s again", ErrRolledBack, e.Tier, e.Version, e.Failed, e.Requests, e.Restored)
}

// Is reports whether target is [ErrRolledBack].
func (e *RollbackError) Is(target error) bool { return target == ErrRolledBack }

// Reload loads a new version of the named tier's model with from, checks
// it, and swaps it in:
//  1. the load is retried with backoff ([Tier].LoadRetry);
//  2. the model must fit the ladder's input and output contract, answer
//     every [Tier].Canaries as expected (each within the tier's probe
//     timeout, and at least 1s), and pass [Tier].Validate;
//  3. the swap is atomic: requests in flight finish on the old version,
//     which is closed (if the router loaded it) only once they have all
//     returned; it stays loaded while [Tier].Rollback watches the new one.
//
// When a check fails, the old version keeps serving, the tier's condition
// is ReloadFailed, a [ReloadRejected] event is emitted, and Reload returns a
// [*ReloadError] naming the check. Reloads of one tier are serialised.
// Reload blocks until the swap or the failure, or until ctx is done (or
// the router closes), even when the Loader or Tier.Validate ignores ctx;
// a model whose Validate is left running is closed when it returns.
func (r *Router) Reload(ctx context.Context, tier string, from Loader) error {
	if from == nil {
		return fmt.Errorf("%w: Reload of %q has no Loader", ErrInvalidConfig, tier)
	}
	if !r.begin() {
		return ErrClosed
	}
	defer r.bg.Done()
	h := r.healths[tier]
	if h == nil {
		return fmt.Errorf("%w: no tier is named %q", ErrInvalidConfig, tier)
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	select {
	case h.reloading <- struct{}{}:
		defer func() { <-h.reloading }()
	case <-ctx.Done():
		return ctx.Err()
	}
	return r.install(ctx, tier, from)
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

// install loads, checks and swaps in a new version of the named tier.
func (r *Router) install(ctx context.Context, name string, from Loader) error {
	h := r.healths[name]
	h.mu.Lock()
	var watched Model // the previous version, kept while a rollback watch runs
	if h.watch != nil {
		watched = h.watch.prev
	}
	h.mu.Unlock()
	cur := r.tierConfig(name)
	serving := ""
	if !cur.v.placeholder() {
		serving = cur.v.label
	}
	reject := func(check, version string, err error) error {
		rerr := &ReloadError{Tier: name, Check: check, Version: version, Serving: serving, Err: err}
		was, now := h.change(func() { h.rejected, h.reloadErr = h.rejected+1, rerr })
		r.emit(Event{Kind: ReloadRejected, Tier: name, Position: r.position(name), Err: rerr, Version: version})
		r.healthChanged(name, was, now, rerr)
		return rerr
	}

	loaded, err := r.load(ctx, h, cur.LoadRetry.resolve(), from)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return reject(CheckLoad, "", err)
	}
	label := loaded.Version
	if label == "" {
		label, _ = VersionOf(loaded.Model)
	}
	if sameModel(loaded.Model, cur.Model) || sameModel(loaded.Model, watched) {
		// Swapping it in would close it under the requests it serves, once
		// the version it replaces drains.
		return reject(CheckLoad, label, errors.New("the Loader returned a model the tier already has; a Loader must return a new model each time"))
	}
	v := newVersion(loaded.Model, label, loaded.Source, true)
	v.tier = name
	v.counting.Store(true) // for its rollback watch, from its first request
	if check, err := r.check(ctx, cur, v); err != nil {
		if !errors.Is(err, errStillValidating) {
			// A canary the check stopped waiting for closes it when it
			// returns.
			_ = v.close()
		} // else the Validate left running closes it when it returns
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return reject(check, label, err)
	}

	// Only a version that passed its checks ends the rollback watch of the
	// one before it, keeping that one, unless the watch has just rolled it
	// back: the version swapped out is read again.
	r.settle(name)
	cur = r.tierConfig(name)
	next := cur
	next.Model, next.Version, next.v = v.model, label, v
	if err := r.replaceTier(next); err != nil {
		_ = v.close()
		if errors.Is(err, ErrInvalidConfig) {
			return reject(CheckSignature, label, err)
		}
		return err
	}
	was, now := h.change(func() {
		h.loading, h.reloadErr, h.reloads = false, nil, h.reloads+1
		h.installed = time.Now()
		h.streak, h.unhealthy = 0, false
	})
	r.emit(Event{Kind: Reloaded, Tier: name, Position: r.position(name), Version: label, Source: loaded.Source})
	r.healthChanged(name, was, now, nil)

	rb := cur.Rollback.resolve()
	if cur.v.placeholder() || rb.Window < 0 {
		v.counting.Store(false) // no watch
		r.discard(cur.v)
		h.mu.Lock()
		h.lastGood = label
		h.mu.Unlock()
		return nil
	}
	w := &watch{stop: make(chan struct{}), done: make(chan struct{}), prev: cur.v.model}
	h.mu.Lock()
	h.watch = w
	h.mu.Unlock()
	r.bg.Add(1)
	go r.watch(w, h, cur, next, rb)
	return nil
}

// load runs from with retries.
func (r *Router) load(ctx context.Context, h *tierHealth, rt Retry, from Loader) (Loaded, error) {
	delay := rt.Backoff
	for attempt := 1; ; attempt++ {
		loaded, err := callLoader(ctx, h, from)
		if err == nil && isNil(loaded.Model) {
			err = errors.New("the Loader returned no Model")
		}
		if err == nil {
			return loaded, nil
		}
		if attempt >= rt.Attempts || mark.IsPermanent(err) {
			return Loaded{}, err
		}
		t := time.NewTimer(jittered(delay, 0.2))
		select {
		case <-ctx.Done():
			t.Stop()
			return Loaded{}, err
		case <-t.C:
		}
		delay = min(2*delay, rt.MaxBackoff)
	}
}

// loadCall is one call of a Loader, on a helper goroutine.
type loadCall struct {
	done   chan struct{}
	loaded Loaded
	err    error
	state  atomic.Int32 // callRunning, callFinished or callAbandoned
}

// callLoader runs from on a helper goroutine and stops waiting for it when
// ctx is done, so a Loader that ignores ctx holds up neither Reload nor
// Close. The tier's Loaders still never run concurrently: the next waits
// until the one left running returns, and the model that one returns
// late is closed.
func callLoader(ctx context.Context, h *tierHealth, from Loader) (Loaded, error) {
	select {
	case h.loader <- struct{}{}:
	case <-ctx.Done():
		return Loaded{}, ctx.Err()
	}
	c := &loadCall{done: make(chan struct{})}
	go func() {
		defer func() { <-h.loader }()
		c.loaded, c.err = safeLoad(ctx, from)
		close(c.done)
		if !c.state.CompareAndSwap(callRunning, callFinished) && c.err == nil && !isNil(c.loaded.Model) {
			_ = newVersion(c.loaded.Model, "", "", true).close() // nobody waits for it
		}
	}()
	select {
	case <-c.done:
	case <-ctx.Done():
		if c.state.CompareAndSwap(callRunning, callAbandoned) {
			return Loaded{}, ctx.Err()
		}
		<-c.done
	}
	return c.loaded, c.err
}

func safeLoad(ctx context.Context, from Loader) (l Loaded, err error) {
	defer func() {
		if v := recover(); v != nil {
			l, err = Loaded{}, &PanicError{Hook: "Load", Value: v, Stack: debug.Stack()}
		}
	}()
	return from.Load(ctx)
}

// check validates a new version against the tier and the current ladder,
// and returns the failed check's name.
func (r *Router) check(ctx context.Context, t Tier, v *version) (string, error) {
	l := r.ladder.Load()
	if sig, ok := SignatureOf(v.model); ok {
		if l.inputs != nil && t.Inputs == nil && !sameInfos(sig.Inputs, l.inputs) {
			return CheckSignature, fmt.Errorf("takes %s but the ladder's input contract is %s", infosString(sig.Inputs), infosString(l.inputs))
		}
		if l.outputs != nil && !sameInfos(sig.Outputs, l.outputs) {
			return CheckSignature, fmt.Errorf("returns %s but the ladder's output contract is %s", infosString(sig.Outputs), infosString(l.outputs))
		}
	}
	if len(t.Canaries) > 0 {
		timeout := max(t.Probe.resolve(l.byTier[t.Name].timeout).Timeout, time.Second)
		if err := r.canaries(ctx, l, t.Name, v, t.Inputs, t.Canaries, timeout, nil); err != nil {
			return CheckCanary, err
		}
	}
	if t.Validate != nil {
		if err := callValidate(ctx, r.healths[t.Name], t, v); err != nil {
			return CheckValidate, err
		}
	}
	return "", nil
}

// errStillValidating marks a check that stopped waiting for a Validate
// still running, which then owns the version and closes it.
var errStillValidating = errors.New("router: Validate still running")

// callValidate runs t.Validate on v's model on a helper goroutine and
// stops waiting for it when ctx is done (or the router closes), so a
// Validate that ignores ctx holds up neither Reload nor Close. The
// Validate left running closes v when it returns; the error then matches
// errStillValidating and ctx's error. Like a Loader, it holds the tier's
// loader token while it runs, so the tier's next load waits for a Validate
// left running: the tier's Loaders and Validates never run at once, and
// one left running holds one model at most.
func callValidate(ctx context.Context, h *tierHealth, t Tier, v *version) error {
	select {
	case h.loader <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	c := &validateCall{done: make(chan struct{})}
	go func() {
		defer func() { <-h.loader }()
		c.err = safeValidate(ctx, t, v.model)
		close(c.done)
		if !c.state.CompareAndSwap(callRunning, callFinished) {
			_ = v.close() // nobody waits for it
		}
	}()
	select {
	case <-c.done:
	case <-ctx.Done():
		if c.state.CompareAndSwap(callRunning, callAbandoned) {
			return fmt.Errorf("%w: %w", errStillValidating, ctx.Err())
		}
		<-c.done
	}
	return c.err
}

// validateCall is one call of a Tier.Validate, on a helper goroutine.
type validateCall struct {
	done  chan struct{}
	err   error
	state atomic.Int32 // callRunning, callFinished or callAbandoned
}

func safeValidate(ctx context.Context, t Tier, m Model) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Tier: t.Name, Hook: "Validate", Value: v, Stack: debug.Stack()}
		}
	}()
	return t.Validate(ctx, m)
}

// watch is a version under rollback watch.
type watch struct {
	stop chan struct{} // closed to end the watch early, keeping the version
	done chan struct{} // closed when the watch has ended
	prev Model         // the version it may restore
}

// sameModel reports whether a and b are the same model value. Values of
// types that cannot be compared are never the same.
func sameModel(a, b Model) (same bool) {
	if a == nil || b == nil || reflect.TypeOf(a) != reflect.TypeOf(b) || !reflect.TypeOf(a).Comparable() {
		return false
	}
	defer func() {
		if recover() != nil { // a struct holding an incomparable value
			same = false
		}
	}()
	return a == b
}

// settle ends the named tier's rollback watch, if any, keeping the
// version it watches, and waits for it.
func (r *Router) settle(name string) {
	h := r.healths[name]
	h.mu.Lock()
	w := h.watch
	h.watch = nil
	h.mu.Unlock()
	if w != nil {
		close(w.stop)
		<-w.done
	}
}

// watch judges next, swapped in for prev, by its own failures over the
// rollback window, and restores prev when they exceed the threshold. A
// request that entered prev before the swap counts against prev, however
// late it ends.
func (r *Router) watch(w *watch, h *tierHealth, prev, next Tier, rb Rollback) {
	defer r.bg.Done()
	defer close(w.done)
	defer next.v.counting.Store(false)
	tick := time.NewTicker(max(rb.Window/50, time.Millisecond))
	defer tick.Stop()
	end := time.NewTimer(rb.Window)
	defer end.Stop()
	accept := func() {
		h.mu.Lock()
		h.lastGood = next.v.label
		if h.watch == w {
			h.watch = nil
		}
		h.mu.Unlock()
		r.discard(prev.v)
	}
	for {
		select {
		case <-r.stop:
			r.discard(prev.v)
			return
		case <-w.stop:
			accept()
			return
		case <-end.C:
			accept()
			return
		case <-tick.C:
		}
		ok, failed := next.v.served.Load(), next.v.failed.Load()
		n := ok + failed
		if n < uint64(rb.MinRequests) || float64(failed) <= rb.FailureRate*float64(n) {
			continue
		}
		if err := r.replaceTier(prev); err != nil {
			r.discard(prev.v)
			return
		}
		rerr := &RollbackError{Tier: next.Name, Version: next.v.label, Restored: prev.v.label, Failed: failed, Requests: n}
		from, to := h.change(func() {
			h.rollbacks++
			h.reloadErr = rerr
			if h.watch == w {
				h.watch = nil
			}
		})
		r.discard(next.v)
		r.emit(Event{Kind: RolledBack, Tier: next.Name, Position: r.position(next.Name), Version: prev.v.label, Err: rerr})
		r.healthChanged(next.Name, from, to, rerr)
		return
	}
}

// placeholder reports whether v stands in for a model still loading.
func (v *version) placeholder() bool {
	_, ok := v.model.(unloaded)
	return ok
}
