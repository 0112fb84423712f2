package routertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// The checks of a wrapper: the model checks around each of the suite's
// inner models, and the checks of what reaches the inner model.
var wrapperChecks = func() []namedCheck[wrapFunc] {
	var checks []namedCheck[wrapFunc]
	around := func(what string, newInner func() router.Model, mcs ...namedCheck[router.Model]) {
		for _, mc := range mcs {
			checks = append(checks, namedCheck[wrapFunc]{what + "/" + mc.name, func(c *checker, wrap wrapFunc) {
				inner := newInner()
				c.opts = Options{Inputs: innerInputs(), Inner: inner}
				mc.run(c, wrap(inner))
			}})
		}
	}
	around("around a model with every capability", func() router.Model { return newFull() }, modelChecks...)
	checks = append(checks,
		namedCheck[wrapFunc]{"around a model with every capability/it passes ctx on", passesCtx},
		namedCheck[wrapFunc]{"around a model with every capability/Warmup, Close and PredictTimeout reach the model", reachesInner},
	)
	around("around a model that reports itself through Unwrap", func() router.Model { return described{newFull()} },
		namedCheck[router.Model]{"router.SignatureOf and VersionOf see through it", forwards})
	around("around a plain model", func() router.Model { return newPlain() }, modelChecks...)
	checks = append(checks,
		namedCheck[wrapFunc]{"around a plain model/it claims no capability it cannot keep", keepsPromises},
		namedCheck[wrapFunc]{"around a model that ignores ctx/PredictTimeout returns at its timeout", timesOutAroundStuck},
	)
	return checks
}()

// The signature of the suite's inner models: y is the sum of each row of
// x.
var innerSig = tensor.Signature{
	Inputs:  []tensor.Info{{Name: "x", DType: tensor.Float32, Shape: []int64{-1, 3}}},
	Outputs: []tensor.Info{{Name: "y", DType: tensor.Float32, Shape: []int64{-1, 1}}},
}

// innerVersion is the version of the suite's inner models.
const innerVersion = "routertest-1"

func innerInputs() []tensor.Tensor {
	return []tensor.Tensor{tensor.New("x", []int64{2, 3}, []float32{1, 2, 3, 0.5, 0.25, 0.125})}
}

// ctxKey marks the contexts the checks pass to a wrapper, so that the
// inner model can tell whether it got the caller's ctx.
type ctxKey struct{}

// plain is a model with no optional capability. It answers y, checking
// ctx and its inputs, and records what reaches it. It is safe for
// concurrent use.
type plain struct {
	predicts atomic.Int64
	marked   atomic.Int64 // calls whose ctx carried ctxKey
	// hold makes Predict wait for ctx to be done, or release to be
	// closed, after saying so on entered.
	hold    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func newPlain() *plain { return &plain{entered: make(chan struct{}, 1), release: make(chan struct{})} }

func (p *plain) Predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	p.predicts.Add(1)
	return p.predict(ctx, inputs)
}

func (p *plain) predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if ctx.Value(ctxKey{}) != nil {
		p.marked.Add(1)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.hold.Load() {
		select {
		case p.entered <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.release:
			return nil, errors.New("routertest: released at the end of the check")
		}
	}
	return sumRows(inputs)
}

// sumRows answers y for inputs that fit innerSig.
func sumRows(inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	var x [1]tensor.Tensor
	if err := tensor.CheckInputs("routertest", innerSig.Inputs, inputs, x[:]); err != nil {
		return nil, err
	}
	rows := x[0].Shape[0]
	data := x[0].Data.([]float32)
	y := make([]float32, rows)
	for i := range y {
		y[i] = data[3*i] + data[3*i+1] + data[3*i+2]
	}
	return []tensor.Tensor{tensor.New("y", []int64{rows, 1}, y)}, nil
}

// full is a model with every optional capability.
type full struct {
	*plain
	timeouts, warmups, closes atomic.Int64
}

func newFull() *full { return &full{plain: newPlain()} }

func (f *full) PredictTimeout(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	f.timeouts.Add(1)
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return f.predict(ctx, inputs)
}

func (f *full) Signature() tensor.Signature { return innerSig.Clone() }
func (f *full) Version() string             { return innerVersion }

func (f *full) Warmup(ctx context.Context) error {
	f.warmups.Add(1)
	if ctx.Value(ctxKey{}) != nil {
		f.marked.Add(1)
	}
	return ctx.Err()
}

func (f *full) Close() error {
	f.closes.Add(1)
	return nil
}

// described wraps a model and reports its signature and version only
// through Unwrap, as router.Unwrapper allows.
type described struct{ m router.Model }

func (d described) Predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	return d.m.Predict(ctx, inputs)
}

func (d described) Unwrap() router.Model { return d.m }

// stuck is a model that ignores ctx: Predict blocks until release is
// closed.
type stuck struct{ release chan struct{} }

func (s stuck) Predict(_ context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	<-s.release
	return sumRows(inputs)
}

func marked() context.Context { return context.WithValue(context.Background(), ctxKey{}, true) }

func passesCtx(c *checker, wrap wrapFunc) {
	inner := newFull()
	m := wrap(inner)
	if _, err, ok := c.predict("Predict", patient, m, marked(), innerInputs()); ok && err != nil {
		c.errorf("Predict of inputs the inner model answers = %v", err)
		return
	}
	if inner.predicts.Load()+inner.timeouts.Load() == 0 {
		c.errorf("Predict did not call the inner model")
		return
	}
	if inner.marked.Load() == 0 {
		c.errorf("the inner model got a ctx without the caller's values; a wrapper must pass on the caller's ctx, or one made from it")
	}

	// A call cancelled while the inner model runs returns ctx's error.
	inner.hold.Store(true)
	defer close(inner.release) // for a wrapper that passes another ctx on
	ctx, cancel := context.WithCancel(marked())
	defer cancel()
	var err error
	returned := c.start("Predict", func() { _, err = m.Predict(ctx, innerInputs()) })
	timer := time.NewTimer(patient)
	defer timer.Stop()
	select {
	case <-inner.entered:
	case <-returned.done:
		if !returned.panicked {
			c.errorf("Predict returned (%v) before it reached the inner model", err)
		}
		return
	case <-timer.C:
		c.errorf("Predict has not reached the inner model after %v", patient)
		return
	}
	cancel()
	if c.wait("Predict after its ctx was cancelled as the inner model ran", prompt, returned, "") {
		c.endedByCtx("Predict", doneCtx{"a ctx cancelled as the inner model ran", ctx, context.Canceled, "context.Canceled"}, err)
	}
}

func reachesInner(c *checker, wrap wrapFunc) {
	inner := newFull()
	m := wrap(inner)
	// Each capability the wrapper has, called; has is false when it lacks
	// it, which the model checks report.
	for _, r := range []struct {
		what    string
		call    func() (has bool, err error)
		reached *atomic.Int64
		must    string
	}{
		{"PredictTimeout(1m)", func() (bool, error) {
			tp, ok := m.(router.TimeoutPredictor)
			if !ok {
				return false, nil
			}
			_, err := tp.PredictTimeout(marked(), time.Minute, innerInputs())
			return true, err
		}, &inner.timeouts, "it must pass on the inner model's own bounded run (router.PredictTimeout does)"},
		{"Warmup", func() (bool, error) {
			w, ok := m.(router.Warmer)
			if !ok {
				return false, nil
			}
			return true, w.Warmup(marked())
		}, &inner.warmups, "it must call the inner model's Warmup"},
		{"Close", func() (bool, error) {
			cl, ok := m.(io.Closer)
			if !ok {
				return false, nil
			}
			return true, cl.Close()
		}, &inner.closes, "it must call the inner model's Close"},
	} {
		var (
			has bool
			err error
		)
		if !c.call(r.what, patient, func() { has, err = r.call() }) || !has {
			continue
		}
		switch {
		case err != nil:
			c.errorf("%s = %v, though the inner model's succeeds", r.what, err)
		case r.reached.Load() == 0:
			c.errorf("%s did not reach the inner model; %s", r.what, r.must)
		}
	}
}

func keepsPromises(c *checker, wrap wrapFunc) {
	m := wrap(newPlain())
	if w, ok := m.(router.Warmer); ok {
		var err error
		if c.call("Warmup", patient, func() { err = w.Warmup(context.Background()) }) && err != nil {
			c.errorf("Warmup = %v around a model with nothing to warm up; it must then do nothing and return nil, or Router.Warmup fails", err)
		}
	}
	if cl, ok := m.(io.Closer); ok {
		var err error
		if c.call("Close", patient, func() { err = cl.Close() }) && err != nil {
			c.errorf("Close = %v around a model with nothing to close; it must then return nil", err)
		}
	}
}

func timesOutAroundStuck(c *checker, wrap wrapFunc) {
	inner := stuck{release: make(chan struct{})}
	defer close(inner.release)
	tp, ok := wrap(inner).(router.TimeoutPredictor)
	if !ok {
		return // the router runs it aside and stops waiting at the timeout
	}
	const timeout = 10 * time.Millisecond
	var err error
	what := fmt.Sprintf("PredictTimeout(%v) around a model that ignores ctx", timeout)
	returned := c.start(what, func() { _, err = tp.PredictTimeout(context.Background(), timeout, innerInputs()) })
	if !c.wait(what, prompt, returned, "the router runs a TimeoutPredictor on the request's goroutine and trusts it to return by its timeout; "+
		"around a model that is no TimeoutPredictor, run its Predict aside and stop waiting at the timeout, as the router does") {
		return
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		c.errorf("PredictTimeout(%v) around a model that ignores ctx = %v; want an error matching context.DeadlineExceeded", timeout, err)
	}
}
