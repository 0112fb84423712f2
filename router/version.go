package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
)

// version is one model of a tier, with the count of calls running on it,
// so that it is closed only once they have all returned. A request enters
// the version of the ladder it loaded; once the version is retired, no
// call enters it any more, and the last one out lets it close.
type version struct {
	model  Model
	label  string // the version that labels its answers
	source string // where it was loaded from; "" for the caller's model
	owned  bool   // loaded by the router, which closes it
	tier   string // the tier it was loaded for, naming a panic of its Close
	// pub is the version as managers see it, made once, so that a
	// manager can tell versions apart by pointer.
	pub atomic.Pointer[Version]

	// served and failed count the requests the version answered and those
	// it fell for, as its tier's health counts them, while its rollback
	// watch runs (counting): requests after the watch write nothing.
	served, failed atomic.Uint64
	counting       atomic.Bool

	n        atomic.Int64
	retired  atomic.Bool
	released atomic.Bool // discarded: a second discard does nothing
	once     sync.Once
	drained  chan struct{}

	// orphans counts the calls in n that the router stopped waiting for (a
	// Model that ignores ctx, run aside): retiring the version does not
	// wait for them, and its model is closed when the last returns.
	orphans atomic.Int64
	mu      sync.Mutex // guards changes of orphans and closeLater
	// closeLater: close was called while orphans ran; the last one out
	// closes the model.
	closeLater bool
}

func newVersion(m Model, label, source string, owned bool) *version {
	return &version{model: m, label: label, source: source, owned: owned, drained: make(chan struct{})}
}

// enter counts a call on the version, or reports false when it is retired.
// The count is taken before retired is read, and retire sets retired
// before it reads the count, so the two never both miss each other.
func (v *version) enter() bool {
	v.n.Add(1)
	if v.retired.Load() {
		v.leave()
		return false
	}
	return true
}

// hold counts one more call while the caller already holds one.
func (v *version) hold() { v.n.Add(1) }

// leave ends a call.
func (v *version) leave() {
	if n := v.n.Add(-1); v.retired.Load() && n == v.orphans.Load() {
		v.once.Do(func() { close(v.drained) })
	}
}

// orphan records that the router stopped waiting for a call it holds on
// v; the call must then end with leaveOrphan. It is called before the
// call is marked abandoned, and undone with unorphan when the call
// finished first.
func (v *version) orphan() {
	v.mu.Lock()
	v.orphans.Add(1)
	v.mu.Unlock()
	if v.retired.Load() && v.n.Load() == v.orphans.Load() {
		v.once.Do(func() { close(v.drained) })
	}
}

// unorphan undoes orphan for a call that finished before it was
// abandoned: its model call has returned.
func (v *version) unorphan() { v.endOrphan() }

// leaveOrphan ends an orphaned call whose model call has returned.
func (v *version) leaveOrphan() {
	v.endOrphan()
	v.leave()
}

// endOrphan removes one orphan, and closes the model when close was left
// to the last of them.
func (v *version) endOrphan() {
	v.mu.Lock()
	v.orphans.Add(-1)
	last := v.closeLater && v.orphans.Load() == 0
	if last {
		v.closeLater = false
	}
	v.mu.Unlock()
	if last {
		_ = v.closeNow() // nobody waits for it
	}
}

// aside runs call on a helper goroutine, under a context that ends after
// timeout, and stops waiting for it then, even when call ignores ctx. The
// caller holds a call on v for it (enter or hold); the goroutine leaves v
// when call returns. A call it stopped waiting for is an orphan of v:
// retiring v does not wait for it, and closing v leaves the model to the
// call, which closes it when it returns; abandoned, when not nil, counts
// such calls until they return. A panic in call is a *PanicError of tier.
func (v *version) aside(ctx context.Context, timeout time.Duration, tier string, abandoned *atomic.Int64, call func(ctx context.Context) ([]tensor.Tensor, error)) ([]tensor.Tensor, error) {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		out []tensor.Tensor
		err error
	}
	done := make(chan result, 1)
	var state atomic.Int32 // callRunning, callFinished or callAbandoned
	go func() {
		var res result
		defer func() {
			if p := recover(); p != nil {
				res = result{err: policy.Permanent(&PanicError{Tier: tier, Value: p, Stack: debug.Stack()})}
			}
			done <- res
			if state.CompareAndSwap(callRunning, callFinished) {
				v.leave()
				return
			}
			if abandoned != nil {
				abandoned.Add(-1)
			}
			v.leaveOrphan() // the version may have been closed, or be closed now
		}()
		res.out, res.err = call(tctx)
	}()
	var res result
	select {
	case res = <-done:
	case <-tctx.Done():
		v.orphan() // before the call can see itself abandoned and leave
		if state.CompareAndSwap(callRunning, callAbandoned) {
			if abandoned != nil {
				abandoned.Add(1)
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w after %v: %w", policy.ErrTimeout, timeout, tctx.Err())
		}
		v.unorphan()
		res = <-done // it has just finished
	}
	if res.err != nil && ctx.Err() == nil && (tctx.Err() != nil || errors.Is(res.err, context.DeadlineExceeded)) {
		return nil, fmt.Errorf("%w after %v: %w", policy.ErrTimeout, timeout, res.err)
	}
	return res.out, res.err
}

// retire stops new calls from entering and waits for the running ones to
// return, or for ctx. It does not wait for orphaned calls.
func (v *version) retire(ctx context.Context) error {
	v.retired.Store(true)
	if v.n.Load() == v.orphans.Load() {
		v.once.Do(func() { close(v.drained) })
	}
	select {
	case <-v.drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close closes the model when the router owns it; call it once the version
// has drained. While orphaned calls still run on it, the last of them
// closes it instead, and close returns nil. A panic in the model's Close
// is returned as a [*PanicError]: it runs on a goroutine of the router's,
// where it would end the process.
func (v *version) close() error {
	v.mu.Lock()
	if v.orphans.Load() > 0 {
		v.closeLater = true
		v.mu.Unlock()
		return nil
	}
	v.mu.Unlock()
	return v.closeNow()
}

// closeNow closes the model when the router owns it.
func (v *version) closeNow() (err error) {
	c, ok := v.model.(io.Closer)
	if !ok || !v.owned {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Tier: v.tier, Hook: "Close", Value: p, Stack: debug.Stack()}
		}
	}()
	return c.Close()
}

// discard retires v in the background, then closes it once drained, when
// the router owns it. The router's Close waits for it. Discarding v again
// does nothing.
func (r *Router) discard(v *version) {
	if v == nil || !v.released.CompareAndSwap(false, true) {
		return
	}
	if !v.owned {
		// The caller's model: no call enters it any more, and it is the
		// caller's to close, so nothing waits for a call that may hang.
		v.retired.Store(true)
		return
	}
	if !r.begin() {
		// The router is closing, and no longer waits for work it starts:
		// drain and close here. Only a version that does not serve is
		// discarded now; its calls are returning.
		_ = v.retire(context.Background())
		if err := v.close(); err != nil {
			r.closeErrs.add(err)
		}
		return
	}
	go func() {
		defer r.bg.Done()
		_ = v.retire(context.Background())
		if err := v.close(); err != nil {
			r.closeErrs.add(err)
		}
	}()
}

// unloaded stands in for the model of a tier that is still loading. The
// tier is skipped before it is asked, so it answers only a request that
// raced the load.
type unloaded struct{ name string }

func (u unloaded) Predict(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
	return nil, &UnavailableError{Tier: u.name, Condition: Loading}
}

// errList collects errors from background goroutines.
type errList struct {
	mu   sync.Mutex
	errs []error
}

func (e *errList) add(err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err)
	e.mu.Unlock()
}

func (e *errList) all() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.errs...)
}
