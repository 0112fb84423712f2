package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// ErrInjected is wrapped by every error a [Faulty] injects, and matched by
// [ErrPanic].
var ErrInjected = errors.New("chaos: injected failure")

// ErrPanic is the value a [Faulty] panics with when [Fault].PanicRate
// fires. errors.Is(ErrPanic, ErrInjected) is true, so a router that
// recovers the panic into an error wrapping the recovered value keeps it
// recognisable.
var ErrPanic error = panicError{}

type panicError struct{}

func (panicError) Error() string        { return "chaos: injected panic" }
func (panicError) Is(target error) bool { return target == ErrInjected }

// The errors a Faulty returns, built once so that failing is cheap.
var (
	errRate = fmt.Errorf("%w: error rate", ErrInjected)
	errDown = fmt.Errorf("%w: model down", ErrInjected)
)

// Model is anything that predicts: every [router.Model] is a Model, and
// every Model a router.Model.
type Model interface {
	Predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error)
}

// Func adapts a plain function to a [Model].
type Func func(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error)

// Predict returns f(ctx, inputs).
func (f Func) Predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	return f(ctx, inputs)
}

// An Option configures a [Faulty] in [Wrap].
type Option func(*config)

type config struct {
	seed  uint64
	clock clock.Clock
}

// WithSeed seeds the random draws, so that a run can be repeated. Without
// it, each [Faulty] picks a random seed.
func WithSeed(seed uint64) Option {
	return func(c *config) { c.seed = seed }
}

// WithClock makes the [Faulty] tell the time by c instead of the system
// clock. The clock times outages ([Fault].DownFor, UpFor and Start) and
// every wait the Faulty injects: Latency and SlowLatency, and the bound
// of [Faulty.PredictTimeout] on a hang or a delay. A test that gives a
// [clock.Fake] then steps through a flap, or ends an injected delay, by
// advancing it; a wait still ends as soon as the call's context is done.
// The inner model's own call under PredictTimeout is bounded by a
// context deadline, which is real time whatever the clock. nil means
// [clock.Real].
func WithClock(c clock.Clock) Option {
	return func(cfg *config) { cfg.clock = clock.Or(c) }
}

// Faulty is a [Model] that injects the faults of a [Fault] into the calls it
// passes to an inner model. Make one with [Wrap].
//
// A Faulty forwards the inner model's optional capabilities, so a wrapped
// model keeps what the router gets from it: PredictTimeout (the inner
// model's own bounded run, so a wrapped ONNX model still has its native
// run terminated), Signature (output validation and the input contract),
// Version (the answers' label), Warmup and Close. These are the router's
// TimeoutPredictor, SignatureReporter, Versioner, Warmer and io.Closer. A
// Faulty is also a [router.Unwrapper], so that [router.SignatureOf] and
// [router.VersionOf] see through it to an inner model that reports its
// signature and version only through an Unwrap of its own.
//
// A Faulty is safe for concurrent use. Its hot path takes no lock: it loads
// the current fault with one atomic read and bumps atomic counters.
type Faulty struct {
	m     Model
	seed  uint64
	clock clock.Clock
	state atomic.Pointer[state]

	calls    atomic.Int64
	injected atomic.Int64
	reached  atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

// state is an installed fault. It is never changed once stored.
type state struct {
	fault Fault
	start time.Time // when the fault was installed
}

// Wrap returns a [Faulty] that passes calls to m, injecting fault. m must
// not be nil: Wrap panics if it is, as [net/http.Handle] does for a nil
// handler.
func Wrap(m Model, fault Fault, opts ...Option) *Faulty {
	if m == nil {
		panic("chaos: Wrap of nil Model")
	}
	c := config{seed: rand.Uint64(), clock: clock.Real}
	for _, o := range opts {
		o(&c)
	}
	f := &Faulty{m: m, seed: c.seed, clock: c.clock}
	f.Set(fault)
	return f
}

// Set replaces the fault injected from now on. Calls already past the point
// where they read the fault finish under the old one. Set restarts the
// outage cycle when fault.Start is zero.
func (f *Faulty) Set(fault Fault) {
	f.state.Store(&state{fault: fault, start: f.clock.Now()})
}

// Fault returns the fault being injected, as last given to [Wrap] or
// [Faulty.Set].
func (f *Faulty) Fault() Fault {
	return f.state.Load().fault
}

// Calls returns how many calls to Predict have begun.
func (f *Faulty) Calls() int64 { return f.calls.Load() }

// Injected returns how many calls have had at least one fault injected,
// added latency included. A call counts once however many faults it gets,
// and only once the fault has been applied, so during a call it may lag
// [Faulty.Calls].
func (f *Faulty) Injected() int64 { return f.injected.Load() }

// Reached returns how many calls have been passed to the inner model.
func (f *Faulty) Reached() int64 { return f.reached.Load() }

// Predict injects the current fault into a call to the inner model. An
// injected failure returns an error wrapping [ErrInjected]; an injected hang
// or sleep cut short by ctx returns ctx.Err(); an injected panic panics with
// [ErrPanic]. Otherwise it returns what the inner model returns, with its
// floats replaced by NaN when [Fault].NaNRate fires.
func (f *Faulty) Predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	return f.predict(ctx, 0, inputs)
}

// PredictTimeout is [Faulty.Predict] bounded by timeout, for callers such
// as ladder's router that use a model's own timeout when it has one. An
// injected hang or delay that outlasts timeout ends at the timeout with an
// error matching context.DeadlineExceeded. The inner model is called through its
// own PredictTimeout when it has one, so a wrapped ONNX model still has its
// native run terminated. One without it runs on a goroutine of its own,
// which PredictTimeout stops waiting for at the timeout, as the router does
// for a model that may ignore ctx: so a Faulty around any model returns by
// its timeout. A timeout of zero or less means none.
func (f *Faulty) PredictTimeout(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	return f.predict(ctx, timeout, inputs)
}

// Signature returns the inner model's signature when it has one, and the
// zero Signature otherwise.
func (f *Faulty) Signature() tensor.Signature {
	if s, ok := f.m.(interface{ Signature() tensor.Signature }); ok {
		return s.Signature()
	}
	return tensor.Signature{}
}

// Version returns the inner model's version when it has one, and ""
// otherwise.
func (f *Faulty) Version() string {
	if v, ok := f.m.(interface{ Version() string }); ok {
		return v.Version()
	}
	return ""
}

// Warmup warms the inner model up when it has a Warmup(ctx) error method,
// without injecting faults, and is a no-op otherwise.
func (f *Faulty) Warmup(ctx context.Context) error {
	if w, ok := f.m.(interface{ Warmup(context.Context) error }); ok {
		return w.Warmup(ctx)
	}
	return nil
}

// Unwrap returns the inner model.
func (f *Faulty) Unwrap() router.Model { return f.m }

func (f *Faulty) predict(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	n := uint64(f.calls.Add(1)) // this call's place in the sequence keys its draws
	s := f.state.Load()
	ft := &s.fault

	if fires(ft.HangRate, f.seed, n, drawHang) {
		f.injected.Add(1)
		if timeout > 0 {
			if err := f.sleep(ctx, timeout); err != nil {
				return nil, err
			}
			return nil, timedOut(timeout)
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if ft.DownFor > 0 && ft.down(f.clock.Now(), s.start) {
		f.injected.Add(1)
		return nil, errDown
	}
	if fires(ft.ErrorRate, f.seed, n, drawError) {
		f.injected.Add(1)
		return nil, errRate
	}
	if fires(ft.PanicRate, f.seed, n, drawPanic) {
		f.injected.Add(1)
		panic(ErrPanic)
	}

	injected := false
	delay := max(ft.Latency, 0)
	if fires(ft.SlowRate, f.seed, n, drawSlow) {
		delay += max(ft.SlowLatency, 0)
	}
	if delay > 0 {
		injected = true
		if timeout > 0 && delay >= timeout {
			f.injected.Add(1)
			if err := f.sleep(ctx, timeout); err != nil {
				return nil, err
			}
			return nil, timedOut(timeout)
		}
		if err := f.sleep(ctx, delay); err != nil {
			f.injected.Add(1)
			return nil, err
		}
		timeout -= delay
	}

	f.reached.Add(1)
	out, err := f.call(ctx, timeout, inputs)
	if err == nil && fires(ft.NaNRate, f.seed, n, drawNaN) {
		out = nanify(out)
		injected = true
	}
	if injected {
		f.injected.Add(1)
	}
	return out, err
}

// call runs the inner model, bounded by timeout when it is positive, as
// router.PredictTimeout does: by its own PredictTimeout when it has one,
// else on a goroutine of its own that call stops waiting for at the
// timeout, so that an inner model that ignores ctx cannot hold the caller
// past it.
func (f *Faulty) call(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if timeout <= 0 {
		return f.m.Predict(ctx, inputs)
	}
	return router.PredictTimeout(ctx, f.m, timeout, inputs)
}

func timedOut(timeout time.Duration) error {
	return fmt.Errorf("chaos: timed out after %v: %w", timeout, context.DeadlineExceeded)
}

// Close closes the inner model if it implements [io.Closer], and is a no-op
// otherwise. It does not stop calls in flight. Close is idempotent: the
// inner model is closed once, and later calls return the first call's
// error.
func (f *Faulty) Close() error {
	f.closeOnce.Do(func() {
		if c, ok := f.m.(io.Closer); ok {
			f.closeErr = c.Close()
		}
	})
	return f.closeErr
}

// sleep waits for d on f's clock, or returns ctx.Err() as soon as ctx is
// done.
func (f *Faulty) sleep(ctx context.Context, d time.Duration) error {
	t := f.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// nanify returns a copy of ts in which every float tensor is replaced by a
// new tensor of the same name and shape filled with NaN. The other tensors
// are shared with ts, and ts itself is not touched.
func nanify(ts []tensor.Tensor) []tensor.Tensor {
	if ts == nil {
		return nil
	}
	out := slices.Clone(ts)
	for i, t := range out {
		dt := t.DType()
		if dt.Kind() != tensor.KindFloat {
			continue
		}
		n := t.Len()
		nan := tensor.Tensor{Name: t.Name, Shape: slices.Clone(t.Shape), Data: tensor.Make(dt, n)}
		for j := range n {
			tensor.SetFloat64At(nan, j, math.NaN())
		}
		out[i] = nan
	}
	return out
}
