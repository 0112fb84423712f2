// Package routertest checks that implementations of the router's
// interfaces behave as the router expects, as testing/slogtest does for
// slog handlers. A [router.Model] of your own, a wrapper around one (a
// metrics decorator, a fault injector) or a [router.Rung] runs the suite
// in its own tests:
//
//	func TestMyModel(t *testing.T) {
//		routertest.TestModel(t, func(t *testing.T) router.Model { return newMyModel(t) },
//			routertest.Options{Inputs: inputs})
//	}
//
// [TestModel] checks that a model answers, ends a call whose ctx is done
// with ctx's error, refuses bad inputs with an error matching
// [tensor.ErrInvalidInput] instead of panicking, is safe for concurrent
// use, keeps the promises of the optional capabilities it has
// ([router.TimeoutPredictor], [router.Warmer], [io.Closer], ...) and, when
// it wraps another model, forwards that model's capabilities. [TestWrapper]
// checks a wrapper around models of the suite's own, so that it can see
// what reaches the inner model. [TestRung] checks a rung, alone and inside
// a router.
//
// Each suite has two forms: TestModel, TestWrapper and TestRung run the
// checks as subtests of t, each on a fresh implementation; [CheckModel],
// [CheckWrapper] and [CheckRung] run them on one and return every problem,
// each a [*Failure], joined into one error, for callers without a
// *testing.T.
//
// The suites call the implementation from many goroutines at once: run
// them with -race. A call whose ctx is done, or whose timeout has passed,
// must return within a few seconds; one that has not fails its check and
// is left running. The suites do not sleep, and take well under a second
// on a model that answers in a millisecond.
package routertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// Options says how the suites call the implementation under test. The
// suites only read it, and copy the inputs before each call.
type Options struct {
	// Inputs are inputs that the implementation answers, the same way
	// every time, with an answer the router serves (at least one
	// output, finite values). Required by [TestModel] and [TestRung].
	// The suite derives bad inputs from them.
	Inputs []tensor.Tensor

	// Inner, for [TestModel], is a model like the one that the model
	// under test wraps: the same file loaded again, say. Every optional
	// capability that Inner has must be forwarded, and [router.SignatureOf]
	// and [router.VersionOf] must see Inner's signature and version
	// through the wrapper. The default, for a model that is a
	// [router.Unwrapper], is what its Unwrap returns; without either, the
	// model is taken to wrap nothing.
	Inner router.Model
}

// Failure is one problem a check found. [CheckModel], [CheckWrapper] and
// [CheckRung] return every Failure, joined; find them with errors.As, or
// through the joined error's Unwrap() []error.
type Failure struct {
	// Check names the check, as the subtest that [TestModel],
	// [TestWrapper] or [TestRung] runs it in is named.
	Check string
	// Problem says what the implementation did and what it must do.
	Problem string
}

// Error returns "routertest: ", the check's name and the problem.
func (f *Failure) Error() string { return "routertest: " + f.Check + ": " + f.Problem }

// TestModel runs the checks of a [router.Model] as subtests of t, each on
// a fresh model from newModel, which closes it (with t.Cleanup) when the
// subtest ends. opts.Inputs is required.
func TestModel(t *testing.T, newModel func(t *testing.T) router.Model, opts Options) {
	t.Helper()
	runWithInputs(t, modelChecks, opts, newModel)
}

// CheckModel runs the checks of [TestModel] on m, and returns every
// [*Failure] joined, or nil. The last check closes m when it is an
// [io.Closer].
func CheckModel(m router.Model, opts Options) error { return checkWithInputs(modelChecks, opts, m) }

// TestRung runs the checks of a [router.Rung] as subtests of t, each on a
// fresh rung from newRung. opts.Inputs is required.
func TestRung(t *testing.T, newRung func(t *testing.T) router.Rung, opts Options) {
	t.Helper()
	runWithInputs(t, rungChecks, opts, newRung)
}

// CheckRung runs the checks of [TestRung] on r, and returns every
// [*Failure] joined, or nil.
func CheckRung(r router.Rung, opts Options) error { return checkWithInputs(rungChecks, opts, r) }

// TestWrapper runs the checks of a wrapper as subtests of t. wrap wraps
// inner, a model of the suite's own, in the wrapper under test, as it
// would wrap a real model; each subtest wraps a fresh one. The inner
// models take one input, "x" float32[?,3], and answer "y" float32[?,1];
// one has every optional capability, one none, one reports itself only
// through [router.Unwrapper], and one ignores ctx. The checks are
// [TestModel]'s on the wrapped models, and that the wrapper passes ctx
// on, forwards Warmup, Close and PredictTimeout to the inner model, and
// claims no capability it cannot keep.
func TestWrapper(t *testing.T, wrap func(t *testing.T, inner router.Model) router.Model) {
	t.Helper()
	run(t, wrapperChecks, Options{}, func(t *testing.T) wrapFunc {
		return func(inner router.Model) router.Model { return wrap(t, inner) }
	})
}

// CheckWrapper runs the checks of [TestWrapper] on what wrap makes, and
// returns every [*Failure] joined, or nil.
func CheckWrapper(wrap func(inner router.Model) router.Model) error {
	return check(wrapperChecks, Options{}, wrap)
}

// check reports options a suite cannot run with.
func (o Options) check() error {
	if len(o.Inputs) == 0 {
		return &Failure{Check: "Options", Problem: "Inputs is empty; the suite needs inputs that the implementation answers"}
	}
	return nil
}

// wrapFunc wraps a model of the suite's in the wrapper under test.
type wrapFunc = func(inner router.Model) router.Model

// A named check of implementations of type T.
type namedCheck[T any] struct {
	name string
	run  func(c *checker, x T)
}

// runWithInputs is run for checks that need opts.Inputs.
func runWithInputs[T any](t *testing.T, checks []namedCheck[T], opts Options, newX func(t *testing.T) T) {
	t.Helper()
	if err := opts.check(); err != nil {
		t.Fatal(err)
	}
	run(t, checks, opts, newX)
}

// checkWithInputs is check for checks that need opts.Inputs.
func checkWithInputs[T any](checks []namedCheck[T], opts Options, x T) error {
	if err := opts.check(); err != nil {
		return err
	}
	return check(checks, opts, x)
}

// run runs each check in a subtest of its own, on a fresh x.
func run[T any](t *testing.T, checks []namedCheck[T], opts Options, newX func(t *testing.T) T) {
	t.Helper()
	for _, ch := range checks {
		t.Run(ch.name, func(t *testing.T) {
			c := &checker{opts: opts}
			ch.run(c, newX(t))
			for _, p := range c.problems {
				t.Error(p)
			}
		})
	}
}

// check runs every check on x, and returns their problems as Failures.
func check[T any](checks []namedCheck[T], opts Options, x T) error {
	var errs []error
	for _, ch := range checks {
		c := &checker{opts: opts}
		ch.run(c, x)
		for _, p := range c.problems {
			errs = append(errs, &Failure{Check: ch.name, Problem: p})
		}
	}
	return errors.Join(errs...)
}

// How long the suite waits for a call.
const (
	// prompt bounds a call that has nothing to do: its ctx is done, or
	// its timeout has passed.
	prompt = 2 * time.Second
	// patient bounds every other call, only so that a hang fails the
	// check rather than the test binary.
	patient = time.Minute
)

// A checker collects the problems of one check. It is safe for
// concurrent use.
type checker struct {
	opts Options

	mu       sync.Mutex
	problems []string
}

// errorf records a problem.
func (c *checker) errorf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// inputs returns a deep copy of the options' inputs, which a call may be
// given and the suite then compares with the originals.
func (c *checker) inputs() []tensor.Tensor { return tensor.CloneAll(c.opts.Inputs) }

// leftAlone reports a call that changed its inputs.
func (c *checker) leftAlone(what string, in []tensor.Tensor) {
	if d := differ(in, c.opts.Inputs); d != "" {
		c.errorf("%s changed its inputs (%s); it must not write to them: the router hands the same inputs to the next rung and keys the cache on them", what, d)
	}
}

// call runs fn on a goroutine of its own, so that a call that hangs fails
// the check instead of the whole test binary, and waits for it for at
// most limit. It reports a panic or a hang as a problem of what and
// returns false then; a call still running is left running.
func (c *checker) call(what string, limit time.Duration, fn func()) bool {
	return c.wait(what, limit, c.start(what, fn), "")
}

// A running call, from [checker.start].
type running struct {
	done     chan struct{} // closed when the call has returned or panicked
	panicked bool          // set before done is closed
}

// start runs fn on a goroutine of its own. It reports a panic in fn as a
// problem of what.
func (c *checker) start(what string, fn func()) *running {
	r := &running{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		returned := false
		defer func() {
			if !returned {
				r.panicked = true
				c.errorf("%s panicked: %v; it must return an error instead", what, recover())
			}
		}()
		fn()
		returned = true
	}()
	return r
}

// wait waits for at most limit for a call from start to end, and reports
// whether it returned without panicking. It reports a hang as a problem
// of what, saying why the call must end in time; an empty why gives the
// reason for the limit.
func (c *checker) wait(what string, limit time.Duration, r *running, why string) bool {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-r.done:
		return !r.panicked
	case <-timer.C:
	}
	switch {
	case why != "":
	case limit == prompt:
		why = "it must return promptly once its ctx is done or its timeout has passed"
	default:
		why = "the suite stops waiting for it"
	}
	c.errorf("%s has not returned after %v; %s", what, limit, why)
	return false
}

// reference is the implementation's answer to the options' inputs, from
// call, which the checks compare other answers with. It reports a problem
// and returns false when there is none. what names the call, and who the
// implementation, in a failure message.
func reference[A any](c *checker, what, who string, call func() (A, error)) (A, bool) {
	var (
		a   A
		err error
	)
	if !c.call(what, patient, func() { a, err = call() }) {
		return a, false
	}
	if err != nil {
		c.errorf("%s = %v; the suite needs inputs that the %s answers", what, err, who)
		return a, false
	}
	return a, true
}

// predict calls m.Predict through [checker.call].
func (c *checker) predict(what string, limit time.Duration, m router.Model, ctx context.Context, in []tensor.Tensor) (out []tensor.Tensor, err error, ok bool) {
	ok = c.call(what, limit, func() { out, err = m.Predict(ctx, in) })
	return out, err, ok
}

// cancelled returns a context that is already cancelled.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// expired returns a context whose deadline has passed.
func expired() context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	cancel() // its Err stays context.DeadlineExceeded
	return ctx
}

// doneCtx is a context that is done before the call, and the error the
// call must return.
type doneCtx struct {
	name string
	ctx  context.Context
	want error
	says string // want, as Go names it
}

func doneCtxs() []doneCtx {
	return []doneCtx{
		{"a cancelled ctx", cancelled(), context.Canceled, "context.Canceled"},
		{"a ctx past its deadline", expired(), context.DeadlineExceeded, "context.DeadlineExceeded"},
	}
}

// endedByCtx reports a call with a done ctx that did not return ctx's
// error.
func (c *checker) endedByCtx(what string, d doneCtx, err error) {
	switch {
	case err == nil:
		c.errorf("%s with %s answered; it must return ctx's error (one matching %s) once ctx is done, so that the router can tell the caller giving up from a failure", what, d.name, d.says)
	case !errors.Is(err, d.want):
		c.errorf("%s with %s = %v; want an error matching %s, so that the router can tell the caller giving up from a failure", what, d.name, err, d.says)
	}
}
