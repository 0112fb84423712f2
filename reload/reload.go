// Package reload swaps new versions of a model tier in while it serves,
// and rolls them back when they fail. A [Reloader] is a router.Manager:
//
//  1. it loads a version with its [Loader], retried with backoff ([Retry]);
//  2. it checks it: the model must fit the ladder's input and output
//     contract, answer every canary (package probe) as expected, and pass
//     [Config].Validate, such as [AccuracyAtLeast] on a labelled sample;
//  3. it swaps it in atomically: requests in flight finish on the old
//     version, which is closed (when the router loaded it) only once they
//     have all returned, and kept loaded while [Rollback] watches the new
//     one under traffic.
//
// A Reloader also loads a tier's first version, so that router.New never
// blocks on a model unless [Config].MustLoad says so, and reloads the tier
// whenever a watched model file changes ([Watch]).
//
// When a check fails, the old version keeps serving, the tier's condition
// is router.ReloadFailed, a router.ReloadRejected event is emitted, and
// the reload returns a [*ReloadError] naming the check.
package reload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/internal/jitter"
	"github.com/ladder-ml/ladder/internal/mark"
	"github.com/ladder-ml/ladder/probe"
	"github.com/ladder-ml/ladder/router"
)

// Loader loads a version of a tier's model. A Reloader never calls its
// Loaders concurrently; Load should return promptly once ctx is done, but
// the Reloader stops waiting for one that does not (its next load waits
// for it). The router owns every model a Loader returns: it closes it
// (when it is an io.Closer) once it is replaced and every call on it has
// returned, once it is rejected, when it arrives after the Reloader
// stopped waiting, or when the router closes. Each call must return a new
// model: the model the tier already serves is rejected.
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
	Model router.Model
	// Version labels its answers; the default is router.VersionOf the
	// model.
	Version string
	// Source says where it came from, e.g. a path or URL, for
	// router.TierHealth.Source.
	Source string
}

// Retry is how a failed load is retried. A load error marked with
// policy.Permanent is not retried.
type Retry struct {
	// Attempts is the most loads one reload makes, counting the first.
	// Zero means 3. The load of a tier's first version goes on after
	// them, with the same backoff, until it loads or the router closes,
	// unless [Config].MustLoad.
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

// Rollback watches a version after it is swapped in: when more than
// FailureRate of the tier's requests fail within Window (once at least
// MinRequests have been tried), the previous version is restored, at once
// and with its breaker closed, and a router.RolledBack event says so. The
// previous version stays loaded during the window; after it, the new
// version is the last known-good one and the previous is closed. A later
// reload whose version passes its checks ends the window early, keeping
// the version watched; a rejected one leaves the watch running.
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

// Config configures a [Reloader]. Only Load is required; every other zero
// value means the default on its field.
type Config struct {
	// Load loads the tier's versions: its first version when the tier has
	// no Model, each change of Watch's file, and [Reloader.Reload] given
	// no Loader of its own. Required for a tier without a Model, with
	// MustLoad or with a Watch; a tier reloaded only by Reload calls that
	// name their Loader may leave it nil.
	Load Loader
	// MustLoad makes router.New wait for the tier's first version, and
	// fail with a [*ReloadError] when it fails after Retry's attempts.
	// Without it the first version loads in the background, retried
	// until it loads or the router closes.
	MustLoad bool
	// Retry is how loads are retried; the zero value means the defaults
	// documented on [Retry].
	Retry Retry
	// Canaries are inputs with known answers that every version must
	// answer before it is swapped in, each within CanaryTimeout.
	Canaries []probe.Canary
	// CanaryTimeout bounds each canary. Zero means the tier's
	// policy.Config Timeout, and at least 1s.
	CanaryTimeout time.Duration
	// Validate, when set, is a last check of a version before it is
	// swapped in, e.g. its accuracy on a labelled sample
	// ([AccuracyAtLeast]). An error or a panic rejects the version. One
	// that ignores ctx is left running when the reload returns, and its
	// version is closed when it returns.
	Validate func(ctx context.Context, m router.Model) error
	// Rollback watches a new version under traffic; the zero value means
	// the defaults documented on [Rollback].
	Rollback Rollback
	// Watch, when its Path is set, reloads the tier whenever that model
	// file changes.
	Watch Watch
}

// The checks of a reload, as [ReloadError].Check names them.
const (
	CheckLoad      = "load"      // the Loader failed, after its retries
	CheckSignature = "signature" // the model does not fit the ladder's contract
	CheckCanary    = "canary"    // a canary gave a wrong or invalid answer
	CheckValidate  = "validate"  // Config.Validate refused the model
)

// Sentinel errors of reloads. Their text is API.
var (
	// ErrReload matches every [*ReloadError].
	ErrReload = errors.New("reload: reload failed")
	// ErrRolledBack matches every [*RollbackError].
	ErrRolledBack = errors.New("reload: version rolled back")
	// ErrInvalidConfig matches every configuration error of a
	// [Reloader], returned by router.New when it starts the reloader. It
	// also matches router.ErrInvalidConfig, as every configuration error
	// of New does.
	ErrInvalidConfig error = configError("reload: invalid config")
	// ErrNotStarted is returned by [Reloader.Reload] before router.New
	// has started the reloader.
	ErrNotStarted = errors.New("reload: not started: give the Reloader to a router.Tier's Manage")
)

type configError string

func (e configError) Error() string { return string(e) }

// Is reports whether target is router.ErrInvalidConfig.
func (e configError) Is(target error) bool { return target == router.ErrInvalidConfig }

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

// Reloader reloads one tier; it is a router.Manager. Give each tier a
// Reloader of its own. It is safe for concurrent use.
type Reloader struct {
	cfg Config
	h   atomic.Pointer[router.Handle]

	reloading chan struct{} // holds a token while a load or reload runs
	loader    chan struct{} // holds a token while a Loader or Validate runs, even one a reload stopped waiting for

	// installed is when the Reloader last swapped a version in, by the
	// wall clock that file modification times are on, in Unix
	// nanoseconds; zero before the first.
	installed atomic.Int64

	mu    sync.Mutex
	watch *watch // the version under rollback watch
}

// New returns a reloader of cfg, checked when the router starts it.
func New(cfg Config) *Reloader {
	return &Reloader{cfg: cfg, reloading: make(chan struct{}, 1), loader: make(chan struct{}, 1)}
}

// Start checks the configuration, loads the tier's first version when it
// has none (in the background, unless MustLoad), and starts watching
// Watch's file.
func (rl *Reloader) Start(ctx context.Context, h *router.Handle) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("tier %q: %w: %s", h.Name(), ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case rl.cfg.Load == nil && (h.Loading() || rl.cfg.MustLoad || rl.cfg.Watch.Path != ""):
		return bad("no Load; expected a Loader of the tier's versions, which a tier without a Model, with MustLoad or with a Watch needs")
	case rl.cfg.Watch.Interval < 0 || (rl.cfg.Watch.Interval > 0 && rl.cfg.Watch.Interval < time.Millisecond):
		return bad("Watch.Interval is %v; expected at least 1ms, or 0 for the default 2s", rl.cfg.Watch.Interval)
	case !rl.h.CompareAndSwap(nil, h):
		return bad("the Reloader already manages tier %q; expected a Reloader of its own for each tier", rl.h.Load().Name())
	}
	if h.Loading() {
		if rl.cfg.MustLoad {
			if err := h.Run(ctx, func(ctx context.Context) error { return rl.reload(ctx, h, rl.cfg.Load) }); err != nil {
				return err
			}
		} else {
			h.Go(func(ctx context.Context) { rl.loadInBackground(ctx, h) })
		}
	}
	if rl.cfg.Watch.Path != "" {
		h.Go(func(ctx context.Context) { rl.poll(ctx, h, rl.cfg.Watch) })
	}
	return nil
}

// Reload loads a new version with from (nil means [Config].Load), checks
// it and swaps it in, as the package doc says. Reloads of one tier are
// serialised. It blocks until the swap or the failure, or until ctx is
// done or the router closes, even when the Loader or Validate ignores
// ctx.
func (rl *Reloader) Reload(ctx context.Context, from Loader) error {
	h := rl.h.Load()
	if h == nil {
		return ErrNotStarted
	}
	if from == nil {
		from = rl.cfg.Load
	}
	if from == nil {
		return fmt.Errorf("%w: Reload of tier %q has no Loader, and Config.Load is nil", ErrInvalidConfig, h.Name())
	}
	return h.Run(ctx, func(ctx context.Context) error { return rl.reload(ctx, h, from) })
}

// reload takes the tier's reload token and installs a version.
func (rl *Reloader) reload(ctx context.Context, h *router.Handle, from Loader) error {
	select {
	case rl.reloading <- struct{}{}:
		defer func() { <-rl.reloading }()
	case <-ctx.Done():
		return ctx.Err()
	}
	return rl.install(ctx, h, from)
}

// install loads, checks and swaps in a new version of the tier.
func (rl *Reloader) install(ctx context.Context, h *router.Handle, from Loader) error {
	rl.mu.Lock()
	var watched router.Model // the previous version, kept while a rollback watch runs
	if rl.watch != nil {
		watched = rl.watch.prev.Model()
	}
	rl.mu.Unlock()
	cur := h.Current()
	serving := ""
	var current router.Model
	if cur != nil {
		serving, current = cur.Label(), cur.Model()
	}
	reject := func(check, version string, err error) error {
		rerr := &ReloadError{Tier: h.Name(), Check: check, Version: version, Serving: serving, Err: err}
		h.Reject(version, rerr)
		return rerr
	}

	loaded, err := rl.load(ctx, h, from)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return reject(CheckLoad, "", err)
	}
	label := loaded.Version
	if label == "" {
		label, _ = router.VersionOf(loaded.Model)
	}
	if sameModel(loaded.Model, current) || sameModel(loaded.Model, watched) {
		// Swapping it in would close it under the requests it serves, once
		// the version it replaces drains.
		return reject(CheckLoad, label, errors.New("the Loader returned a model the tier already has; a Loader must return a new model each time"))
	}
	v, err := h.Prepare(loaded.Model, label, loaded.Source)
	if err != nil {
		return reject(CheckSignature, label, err)
	}
	v.Count(true) // for its rollback watch, from its first request
	if check, err := rl.check(ctx, h, v); err != nil {
		if !errors.Is(err, errStillValidating) {
			v.Release() // a canary the check stopped waiting for closes it when it returns
		} // else the Validate left running releases it when it returns
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return reject(check, label, err)
	}

	// Only a version that passed its checks ends the rollback watch of the
	// one before it, keeping that one.
	rl.settle()
	prev, err := h.Swap(v)
	if err == nil {
		rl.installed.Store(time.Now().UnixNano()) // the file system's clock, for Watch
	}
	if err != nil {
		v.Release()
		if errors.Is(err, router.ErrInvalidConfig) || errors.Is(err, router.ErrSignature) {
			return reject(CheckSignature, label, err)
		}
		return err
	}
	rb := rl.cfg.Rollback.resolve()
	if prev == nil || rb.Window < 0 {
		v.Count(false) // no watch
		if prev != nil {
			prev.Release()
		}
		h.SetKnownGood(label)
		return nil
	}
	w := &watch{stop: make(chan struct{}), done: make(chan struct{}), prev: prev}
	rl.mu.Lock()
	rl.watch = w
	rl.mu.Unlock()
	if !h.Go(func(ctx context.Context) { rl.watchRollback(ctx, h, w, prev, v, rb) }) { // the router is closing
		close(w.done)
		prev.Release()
	}
	return nil
}

// load runs from with retries.
func (rl *Reloader) load(ctx context.Context, h *router.Handle, from Loader) (Loaded, error) {
	rt := rl.cfg.Retry.resolve()
	delay := rt.Backoff
	for attempt := 1; ; attempt++ {
		loaded, err := rl.callLoader(ctx, h, from)
		if err == nil && isNil(loaded.Model) {
			err = errors.New("the Loader returned no Model")
		}
		if err == nil {
			return loaded, nil
		}
		if attempt >= rt.Attempts || mark.IsPermanent(err) {
			return Loaded{}, err
		}
		if !sleep(ctx, h, jitter.Of(delay, 0.2)) {
			return Loaded{}, err
		}
		delay = min(2*delay, rt.MaxBackoff)
	}
}

// sleep waits d on the router's clock, or until ctx ends, and reports
// whether d passed.
func sleep(ctx context.Context, h *router.Handle, d time.Duration) bool {
	t := h.Clock().NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// The states of a call on a helper goroutine.
const (
	callRunning int32 = iota
	callFinished
	callAbandoned
)

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
func (rl *Reloader) callLoader(ctx context.Context, h *router.Handle, from Loader) (Loaded, error) {
	select {
	case rl.loader <- struct{}{}:
	case <-ctx.Done():
		return Loaded{}, ctx.Err()
	}
	c := &loadCall{done: make(chan struct{})}
	go func() {
		defer func() { <-rl.loader }()
		c.loaded, c.err = safeLoad(ctx, from)
		close(c.done)
		if !c.state.CompareAndSwap(callRunning, callFinished) && c.err == nil && !isNil(c.loaded.Model) {
			closeModel(c.loaded.Model) // nobody waits for it
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
			l, err = Loaded{}, &router.PanicError{Hook: "Load", Value: v, Stack: debug.Stack()}
		}
	}()
	return from.Load(ctx)
}

// check runs a new version's canaries and Validate, and returns the
// failed check's name. (Prepare checked its signature.)
func (rl *Reloader) check(ctx context.Context, h *router.Handle, v *router.Version) (string, error) {
	if len(rl.cfg.Canaries) > 0 {
		timeout := rl.cfg.CanaryTimeout
		if timeout <= 0 {
			timeout = max(h.Timeout(), time.Second)
		}
		if err := probe.Check(ctx, v, rl.cfg.Canaries, timeout); err != nil {
			return CheckCanary, err
		}
	}
	if rl.cfg.Validate != nil {
		if err := rl.callValidate(ctx, h, v); err != nil {
			return CheckValidate, err
		}
	}
	return "", nil
}

// errStillValidating marks a check that stopped waiting for a Validate
// still running, which then owns the version and releases it.
var errStillValidating = errors.New("reload: Validate still running")

// validateCall is one call of a Validate, on a helper goroutine.
type validateCall struct {
	done  chan struct{}
	err   error
	state atomic.Int32 // callRunning, callFinished or callAbandoned
}

// callValidate runs Validate on v's model on a helper goroutine and stops
// waiting for it when ctx is done (or the router closes), so a Validate
// that ignores ctx holds up neither Reload nor Close. The Validate left
// running releases v when it returns; the error then matches
// errStillValidating and ctx's error. Like a Loader, it holds the
// loader token while it runs, so the tier's next load waits for a
// Validate left running: the tier's Loaders and Validates never run at
// once, and one left running holds one model at most.
func (rl *Reloader) callValidate(ctx context.Context, h *router.Handle, v *router.Version) error {
	select {
	case rl.loader <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	c := &validateCall{done: make(chan struct{})}
	go func() {
		defer func() { <-rl.loader }()
		c.err = safeValidate(ctx, h.Name(), rl.cfg.Validate, v.Model())
		close(c.done)
		if !c.state.CompareAndSwap(callRunning, callFinished) {
			v.Release() // nobody waits for it
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

func safeValidate(ctx context.Context, tier string, validate func(context.Context, router.Model) error, m router.Model) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &router.PanicError{Tier: tier, Hook: "Validate", Value: v, Stack: debug.Stack()}
		}
	}()
	return validate(ctx, m)
}

// watch is a version under rollback watch.
type watch struct {
	stop chan struct{} // closed to end the watch early, keeping the version
	done chan struct{} // closed when the watch has ended
	prev *router.Version
}

// settle ends the rollback watch, if any, keeping the version it watches,
// and waits for it.
func (rl *Reloader) settle() {
	rl.mu.Lock()
	w := rl.watch
	rl.watch = nil
	rl.mu.Unlock()
	if w != nil {
		close(w.stop)
		<-w.done
	}
}

// watchRollback judges next, swapped in for prev, by its own failures
// over the rollback window, and restores prev when they exceed the
// threshold. A request that entered prev before the swap counts against
// prev, however late it ends.
func (rl *Reloader) watchRollback(ctx context.Context, h *router.Handle, w *watch, prev, next *router.Version, rb Rollback) {
	defer close(w.done)
	defer next.Count(false)
	clk := h.Clock()
	every := max(rb.Window/50, time.Millisecond)
	tick := clk.NewTimer(every)
	defer tick.Stop()
	end := clk.NewTimer(rb.Window)
	defer end.Stop()
	accept := func() {
		h.SetKnownGood(next.Label())
		rl.mu.Lock()
		if rl.watch == w {
			rl.watch = nil
		}
		rl.mu.Unlock()
		prev.Release()
	}
	for {
		select {
		case <-ctx.Done():
			prev.Release()
			return
		case <-w.stop:
			accept()
			return
		case <-end.C():
			accept()
			return
		case <-tick.C():
			tick.Reset(every)
		}
		ok, failed := next.Counts()
		n := ok + failed
		if n < uint64(rb.MinRequests) || float64(failed) <= rb.FailureRate*float64(n) {
			continue
		}
		rerr := &RollbackError{Tier: h.Name(), Version: next.Label(), Restored: prev.Label(), Failed: failed, Requests: n}
		// The watch ends only once prev serves again: a reload that
		// passed its checks meanwhile waits in settle for this restore,
		// and then replaces prev, not the version rolled back.
		if err := h.Restore(prev, rerr); err != nil {
			prev.Release()
		}
		rl.mu.Lock()
		if rl.watch == w {
			rl.watch = nil
		}
		rl.mu.Unlock()
		return
	}
}

// loadInBackground installs the tier's first version, retrying until it
// loads and passes its checks, a Reload installs one, or the router
// closes.
func (rl *Reloader) loadInBackground(ctx context.Context, h *router.Handle) {
	rt := rl.cfg.Retry.resolve()
	delay := rt.Backoff
	for {
		select {
		case rl.reloading <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if !h.Loading() {
			<-rl.reloading
			return // a Reload installed a version meanwhile
		}
		err := rl.install(ctx, h, rl.cfg.Load)
		<-rl.reloading
		if err == nil || ctx.Err() != nil {
			return
		}
		if !sleep(ctx, h, jitter.Of(delay, 0.2)) {
			return
		}
		delay = min(2*delay, rt.MaxBackoff)
	}
}

// closeModel closes a model the Reloader stopped waiting for, recovering
// its panic: it runs on a goroutine of the Reloader's, where a panic
// would end the process.
func closeModel(m router.Model) {
	defer func() { _ = recover() }()
	if c, ok := m.(io.Closer); ok {
		_ = c.Close()
	}
}

// sameModel reports whether a and b are the same model value. Values of
// types that cannot be compared are never the same.
func sameModel(a, b router.Model) (same bool) {
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

// isNil reports whether m is nil, or an interface holding a nil pointer,
// map, func or chan, such as the *models.Model of a failed Load.
func isNil(m any) bool {
	if m == nil {
		return true
	}
	switch v := reflect.ValueOf(m); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface:
		return v.IsNil()
	}
	return false
}
