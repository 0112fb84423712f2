package routertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// The checks of a model, in order; the last one closes it.
var modelChecks = []namedCheck[router.Model]{
	{"it answers the inputs", answers},
	{"a done ctx ends the call with ctx's error", honoursCtx},
	{"bad inputs get an answer or an error matching tensor.ErrInvalidInput", refusesBadInputs},
	{"concurrent calls are safe and agree with a serial one", concurrentPredicts},
	{"it forwards the capabilities of the model it wraps", forwards},
	{"PredictTimeout honours its timeout and ctx", boundsItself},
	{"Warmup succeeds and leaves it answering", warmsUp},
	{"Signature and Version are stable and fit the inputs", describesItself},
	{"Close is idempotent and ends calls cleanly", closes},
}

// How many goroutines make how many calls each in the concurrency checks.
const (
	goroutines = 8
	callsEach  = 20
)

// answer is the model's answer to in, by [reference].
func (c *checker) answer(m router.Model, in []tensor.Tensor) ([]tensor.Tensor, bool) {
	return reference(c, "Predict(Options.Inputs)", "model", func() ([]tensor.Tensor, error) {
		return m.Predict(context.Background(), in)
	})
}

func answers(c *checker, m router.Model) {
	in := c.inputs()
	out, ok := c.answer(m, in)
	if !ok {
		return
	}
	if p := malformed(out); p != "" {
		c.errorf("Predict(Options.Inputs) answered %s; a model's answer needs at least one output, each a tensor whose data fits its shape, with finite values", p)
	}
	c.leftAlone("Predict", in)
}

func honoursCtx(c *checker, m router.Model) {
	for _, d := range doneCtxs() {
		what := "Predict with " + d.name
		if _, err, ok := c.predict(what, prompt, m, d.ctx, c.inputs()); ok {
			c.endedByCtx("Predict", d, err)
		}
	}
}

func refusesBadInputs(c *checker, m router.Model) {
	want, ok := c.answer(m, c.inputs())
	if !ok {
		return
	}
	for _, v := range badInputs(c.opts.Inputs) {
		what := fmt.Sprintf("Predict(%s)", v.name)
		if _, err, ok := c.predict(what, patient, m, context.Background(), v.in); ok {
			c.refused(what, err)
		}
	}
	// Then the model still answers as it did.
	if out, ok := c.answer(m, c.inputs()); ok {
		if d := differ(out, want); d != "" {
			c.errorf("after the bad inputs, Predict(Options.Inputs) answers differently (%s); a bad input must not leave the model unfit for the next call", d)
		}
	}
}

// refused reports an error for a bad input that does not match
// tensor.ErrInvalidInput.
func (c *checker) refused(what string, err error) {
	if err != nil && !errors.Is(err, tensor.ErrInvalidInput) {
		c.errorf("%s = %v; for inputs it cannot take a model must return an error matching tensor.ErrInvalidInput, which the router does not count against it or retry", what, err)
	}
}

// concurrently runs call from goroutines×callsEach calls at once, and
// reports a panic, or the first error call returns and how many did.
// what names the call in a failure message.
func (c *checker) concurrently(what string, call func() error) {
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		first  atomic.Pointer[string]
	)
	fail := func(msg string) {
		failed.Add(1)
		first.CompareAndSwap(nil, &msg)
	}
	all := func() {
		for range goroutines {
			wg.Go(func() {
				defer func() {
					if p := recover(); p != nil {
						fail(fmt.Sprintf("a call panicked: %v", p))
					}
				}()
				for range callsEach {
					if err := call(); err != nil {
						fail(err.Error())
					}
				}
			})
		}
		wg.Wait()
	}
	if !c.call(fmt.Sprintf("%d goroutines making %d calls each to %s", goroutines, callsEach, what), patient, all) {
		return
	}
	if n := failed.Load(); n > 0 {
		c.errorf("%d of %d concurrent calls to %s went wrong, the first: %s; it must be safe for concurrent use, and answer the same inputs the same way",
			n, goroutines*callsEach, what, *first.Load())
	}
}

func concurrentPredicts(c *checker, m router.Model) {
	want, ok := c.answer(m, c.inputs())
	if !ok {
		return
	}
	in := c.inputs() // shared by every call, as a request's are by a hedged pair's
	c.concurrently("Predict", func() error {
		out, err := m.Predict(context.Background(), in)
		if err != nil {
			return err
		}
		if d := differ(out, want); d != "" {
			return fmt.Errorf("an answer differs from a serial call's: %s", d)
		}
		return nil
	})
	c.leftAlone("Predict", in)
}

// A capability that a wrapper must forward itself: the router does not
// look for it through [router.Unwrapper].
type capability struct {
	name string
	has  func(router.Model) bool
	why  string
}

var forwarded = []capability{
	{"a router.TimeoutPredictor", is[router.TimeoutPredictor],
		"the router then runs it on a helper goroutine under a deadline instead of the inner model's own bounded run (for a models.Model, one that terminates the native run); implement PredictTimeout by calling the inner model's"},
	{"a router.Warmer", is[router.Warmer],
		"Router.Warmup then skips the inner model; implement Warmup by calling the inner model's"},
	{"an io.Closer", is[io.Closer],
		"closing the wrapper then leaves the inner model open; implement Close by calling the inner model's"},
}

func is[T any](m router.Model) bool { _, ok := m.(T); return ok }

func forwards(c *checker, m router.Model) {
	inner := c.opts.Inner
	if u, ok := m.(router.Unwrapper); ok {
		next, ok := c.unwrapChain(u)
		if !ok {
			return
		}
		if inner == nil {
			inner = next
		}
	}
	if inner == nil {
		return // it wraps nothing, as far as the suite can tell
	}
	for _, cp := range forwarded {
		if cp.has(inner) && !cp.has(m) {
			c.errorf("the model it wraps is %s and it is not: %s", cp.name, cp.why)
		}
	}
	var (
		wantSig, gotSig tensor.Signature
		wantV           string
		hasSig, sigOK   bool
		hasV, vOK       bool
	)
	if !c.call("router.SignatureOf and router.VersionOf", patient, func() {
		wantSig, hasSig = router.SignatureOf(inner)
		gotSig, sigOK = router.SignatureOf(m)
		wantV, hasV = router.VersionOf(inner)
		_, vOK = router.VersionOf(m)
	}) {
		return
	}
	switch {
	case hasSig && !sigOK:
		c.errorf("router.SignatureOf finds no signature through it, though the model it wraps reports %s; the router then checks no input contract and validates no outputs. Implement Signature by returning the inner model's, or router.Unwrapper", sigString(wantSig))
	case hasSig && sigString(gotSig) != sigString(wantSig):
		c.errorf("router.SignatureOf finds %s through it, but the model it wraps reports %s", sigString(gotSig), sigString(wantSig))
	}
	if hasV && !vOK {
		c.errorf("router.VersionOf finds no version through it, though the model it wraps reports %q; the router then labels its answers with none. Implement Version by returning the inner model's, or router.Unwrapper", wantV)
	}
}

// unwrapChain follows u's Unwrap to its end, and returns the model u
// wraps. It reports a chain that returns nil or does not end, on which
// [router.SignatureOf] would fail or loop.
func (c *checker) unwrapChain(u router.Unwrapper) (router.Model, bool) {
	const deepest = 64
	var first router.Model
	for depth := 0; ; depth++ {
		var next router.Model
		if !c.call("Unwrap", patient, func() { next = u.Unwrap() }) {
			return nil, false
		}
		if next == nil {
			c.errorf("Unwrap returned nil at depth %d; an Unwrapper must return the model it wraps", depth)
			return nil, false
		}
		if first == nil {
			first = next
		}
		var ok bool
		if u, ok = next.(router.Unwrapper); !ok {
			return first, true
		}
		if depth == deepest {
			c.errorf("Unwrap goes %d models deep without end (does it return itself?); router.SignatureOf would never return", deepest)
			return nil, false
		}
	}
}

// sigString formats what the router reads of a signature: its inputs and
// outputs.
func sigString(s tensor.Signature) string {
	return fmt.Sprintf("inputs %v, outputs %v", s.Inputs, s.Outputs)
}

func boundsItself(c *checker, m router.Model) {
	tp, ok := m.(router.TimeoutPredictor)
	if !ok {
		return
	}
	want, ok := c.answer(m, c.inputs())
	if !ok {
		return
	}
	bounded := func(what string, limit time.Duration, ctx context.Context, timeout time.Duration, in []tensor.Tensor) (out []tensor.Tensor, err error, ok bool) {
		ok = c.call(what, limit, func() { out, err = tp.PredictTimeout(ctx, timeout, in) })
		return out, err, ok
	}
	if out, err, ok := bounded("PredictTimeout(1m)", patient, context.Background(), time.Minute, c.inputs()); ok {
		if err != nil {
			c.errorf("PredictTimeout(1m) = %v, though Predict answers the inputs", err)
		} else if d := differ(out, want); d != "" {
			c.errorf("PredictTimeout(1m) answers otherwise than Predict: %s", d)
		}
	}
	for _, d := range doneCtxs() {
		if _, err, ok := bounded("PredictTimeout(1m) with "+d.name, prompt, d.ctx, time.Minute, c.inputs()); ok {
			c.endedByCtx("PredictTimeout(1m)", d, err)
		}
	}
	if _, err, ok := bounded("PredictTimeout(1ns)", prompt, context.Background(), time.Nanosecond, c.inputs()); ok {
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			c.errorf("PredictTimeout(1ns) = %v; a run its timeout cuts short must end with an error matching context.DeadlineExceeded, which the router counts as the tier's timeout", err)
		}
	}
	if _, err, ok := bounded("PredictTimeout(1m) of nil inputs", patient, context.Background(), time.Minute, nil); ok {
		c.refused("PredictTimeout(1m) of nil inputs", err)
	}
}

func warmsUp(c *checker, m router.Model) {
	w, ok := m.(router.Warmer)
	if !ok {
		return
	}
	var err error
	if c.call("Warmup", patient, func() { err = w.Warmup(context.Background()) }) && err != nil {
		c.errorf("Warmup = %v; a model that answers must warm up, or Router.Warmup fails", err)
	}
	for _, d := range doneCtxs() {
		if c.call("Warmup with "+d.name, prompt, func() { err = w.Warmup(d.ctx) }) && err != nil && !errors.Is(err, d.want) {
			c.errorf("Warmup with %s = %v; want nil or an error matching %s", d.name, err, d.says)
		}
	}
	if out, ok := c.answer(m, c.inputs()); ok {
		if p := malformed(out); p != "" {
			c.errorf("after Warmup, Predict(Options.Inputs) answered %s", p)
		}
	}
}

func describesItself(c *checker, m router.Model) {
	if v, ok := m.(router.Versioner); ok {
		var a, b string
		if c.call("Version", patient, func() { a, b = v.Version(), v.Version() }) && a != b {
			c.errorf("Version returned %q, then %q; a model's version must not change under the router, which labels answers with it", a, b)
		}
	}
	s, ok := m.(router.SignatureReporter)
	if !ok {
		return
	}
	var a, b tensor.Signature
	if !c.call("Signature", patient, func() { a, b = s.Signature(), s.Signature() }) {
		return
	}
	if sigString(a) != sigString(b) {
		c.errorf("Signature returned %s, then %s; it must not change, as the router reads it once", sigString(a), sigString(b))
	}
	if len(a.Inputs) > 0 {
		if err := tensor.CheckInputs("Signature", a.Inputs, c.opts.Inputs, make([]tensor.Tensor, len(a.Inputs))); err != nil {
			c.errorf("Options.Inputs do not fit the model's Signature (%v), though the model answers them; the router takes the ladder's input contract from the signature, and would refuse them", err)
		}
	}
}

func closes(c *checker, m router.Model) {
	cl, ok := m.(io.Closer)
	if !ok {
		return
	}
	// Calls race Close, as a reload's drain races requests.
	in := c.inputs()
	started := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	var panicked atomic.Pointer[string]
	for range goroutines / 2 {
		wg.Go(func() {
			defer func() {
				if p := recover(); p != nil {
					msg := fmt.Sprint(p)
					panicked.CompareAndSwap(nil, &msg)
				}
				once.Do(func() { close(started) })
			}()
			for i := range callsEach {
				_, _ = m.Predict(context.Background(), in)
				if i == 0 {
					once.Do(func() { close(started) })
				}
			}
		})
	}
	var first, second error
	closed := c.call("Close while calls are running", patient, func() {
		<-started
		first = cl.Close()
	})
	if !c.call("the calls running as Close ran", patient, wg.Wait) || !closed {
		return
	}
	if p := panicked.Load(); p != nil {
		c.errorf("a call running as Close ran panicked: %s; calls that race Close must answer or return an error", *p)
	}
	if first != nil {
		c.errorf("Close = %v; a model that answered must close cleanly", first)
	}
	if c.call("a second Close", prompt, func() { second = cl.Close() }) && fmt.Sprint(second) != fmt.Sprint(first) {
		c.errorf("a second Close = %v, after the first returned %v; Close must be idempotent", second, first)
	}
	// A call after Close answers or fails at once; predict reports a
	// panic or a hang.
	c.predict("Predict after Close", prompt, m, context.Background(), c.inputs())
}
