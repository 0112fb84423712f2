package router

import (
	"context"
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
// that ends at the timeout. It is what a wrapper's own PredictTimeout
// calls to forward the cheap timeout path. It does not return early when
// a Model ignores ctx; the router itself never waits past the timeout.
func PredictTimeout(ctx context.Context, m Model, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if tp, ok := m.(TimeoutPredictor); ok {
		return tp.PredictTimeout(ctx, timeout, inputs)
	}
	if timeout <= 0 {
		return m.Predict(ctx, inputs)
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return m.Predict(tctx, inputs)
}
