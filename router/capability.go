package router

import (
	"context"
	"fmt"
	"time"

	"github.com/ladder-ml/ladder/tensor"
)

// TimeoutPredictor is a Model that bounds a run itself: PredictTimeout
// returns by the time timeout passes, with an error matching
// context.DeadlineExceeded when the timeout cut the run short, and stops
// the work. The router then runs the model on the request's goroutine with
// no context of its own. A Model without it is run on a helper goroutine,
// so that the router can stop waiting at the timeout even when the model
// ignores ctx.
type TimeoutPredictor interface {
	Model
	PredictTimeout(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error)
}

// boundsItsRuns returns m as a TimeoutPredictor when its bounded run can
// be trusted to stop the work: m has PredictTimeout, and so has every
// model it wraps ([Unwrapper]). A wrapper that forwards PredictTimeout to
// a model without one (through [PredictTimeout]) returns at the timeout
// but leaves the inner call running, untracked; such a model is run as a
// Model that may ignore ctx, on a helper goroutine whose call is counted
// until it returns. A panic in Unwrap counts as no bound.
func boundsItsRuns(m Model) (tp TimeoutPredictor) {
	defer func() {
		if recover() != nil {
			tp = nil
		}
	}()
	tp, ok := m.(TimeoutPredictor)
	if !ok {
		return nil
	}
	for inner := Model(tp); ; {
		u, ok := inner.(Unwrapper)
		if !ok {
			return tp
		}
		if inner = u.Unwrap(); inner == nil {
			return tp
		}
		if _, ok := inner.(TimeoutPredictor); !ok {
			return nil
		}
	}
}

// Versioner is a Model that reports its version, used to label answers
// when [Tier].Version is empty.
type Versioner interface {
	Version() string
}

// SignatureReporter is a Model that reports what it takes and returns.
// The router checks a tier's signature against the ladder's contract in
// [New], and validates every answer against the ladder's outputs. A zero
// Signature means none.
type SignatureReporter interface {
	Signature() tensor.Signature
}

// Warmer is a Model that can run once on dummy inputs before traffic
// arrives, so the first request does not pay for lazy initialisation.
// [Router.Warmup] calls it.
type Warmer interface {
	Warmup(ctx context.Context) error
}

// Unwrapper is a Model that wraps another. [SignatureOf] and [VersionOf]
// look through it.
type Unwrapper interface {
	Unwrap() Model
}

// SignatureOf returns m's signature: its own when it reports a non-zero
// one, else that of the model it wraps, through any [Unwrapper]s.
func SignatureOf(m Model) (tensor.Signature, bool) {
	for m != nil {
		if s, ok := m.(SignatureReporter); ok {
			if sig := s.Signature(); len(sig.Inputs)+len(sig.Outputs) > 0 {
				return sig, true
			}
		}
		u, ok := m.(Unwrapper)
		if !ok {
			break
		}
		m = u.Unwrap()
	}
	return tensor.Signature{}, false
}

// VersionOf returns m's version: its own when it reports a non-empty one,
// else that of the model it wraps, through any [Unwrapper]s.
func VersionOf(m Model) (string, bool) {
	for m != nil {
		if v, ok := m.(Versioner); ok {
			if s := v.Version(); s != "" {
				return s, true
			}
		}
		u, ok := m.(Unwrapper)
		if !ok {
			break
		}
		m = u.Unwrap()
	}
	return "", false
}

// PredictTimeout runs m bounded by timeout: through m's own PredictTimeout
// when m is a [TimeoutPredictor], else through Predict under a context
// that ends at the timeout, on a goroutine of its own that PredictTimeout
// stops waiting for then, so that a model that ignores ctx cannot hold
// the caller past the timeout (the call runs on until the model returns;
// a panic in it is raised again on the caller's goroutine while the
// caller still waits). It is what a wrapper's own PredictTimeout calls to
// forward the cheap timeout path. A timeout of zero or less calls Predict
// as it is.
func PredictTimeout(ctx context.Context, m Model, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if tp, ok := m.(TimeoutPredictor); ok {
		return tp.PredictTimeout(ctx, timeout, inputs)
	}
	if timeout <= 0 {
		return m.Predict(ctx, inputs)
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		out      []tensor.Tensor
		err      error
		panicked bool
		value    any
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if v := recover(); v != nil {
				r = result{panicked: true, value: v}
			}
			done <- r
		}()
		r.out, r.err = m.Predict(tctx, inputs)
	}()
	var r result
	select {
	case r = <-done:
	case <-tctx.Done():
		select {
		case r = <-done: // it finished as the time ran out
		default:
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("router: no answer within %v: %w", timeout, context.DeadlineExceeded)
		}
	}
	if r.panicked {
		panic(r.value)
	}
	return r.out, r.err
}
