package router

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
)

// Rung is one step of the ladder: something that may answer a request.
// The router builds its model tiers, the last-good cache, the heuristic
// and the default as rungs itself. [Config].Rungs adds rungs of other
// kinds, such as an ensemble, a set of replicas or a hedged pair, which
// may live in packages of their own; they take part in [Config].Order,
// [LowestTier], the deadline budget and provenance like the built-in ones.
//
// The router reads Name and Kind once, in [New]. It calls Serve
// concurrently from many requests, so a Rung must be safe for concurrent
// use. Serve answers req or says why it cannot:
//   - its answer's Outputs are validated like every rung's ([Config].Check,
//     the output contract, finite values) before they are served; the router
//     fills in the provenance (Tier, Position, Kind, Degraded, Fell,
//     Latency) itself, and keeps the Version, Origin, Age and Attempts the
//     rung sets;
//   - an error makes the rung fall, and the request moves to the next rung,
//     with the error in [Fall]; a rung that gives up because ctx is done
//     returns ctx's error;
//   - a panic is recovered into a [*PanicError], and the rung falls.
//
// Answers of a rung of [KindModel] are stored as last-good answers in the
// cache; answers of any other kind never are.
type Rung interface {
	// Name labels the rung in answers, falls, events, [Config].Order and
	// [LowestTier]. It must be unique in the ladder and not one of the
	// built-in names RungCache, RungHeuristic and RungDefault.
	Name() string
	// Kind says what the rung is, for [Answer].Kind.
	Kind() Kind
	// Serve answers req, bounded by ctx.
	Serve(ctx context.Context, req Request) (Answer, error)
}

// Request is one prediction as a [Rung] sees it. It is passed by value,
// and its methods only read it, so it is safe to use from several
// goroutines, such as a hedged pair's; a Rung must not modify the Inputs.
// A Request outside the router (the zero value, in a rung's own tests)
// has no cache key, no deadline reserve, and validation without a
// contract or Check.
type Request struct {
	// Inputs are the request's inputs. When the ladder has an input
	// contract ([Config].Inputs) they fit it.
	Inputs []tensor.Tensor
	// MaxStaleness is the oldest cached answer the request accepts; zero
	// or less accepts none.
	MaxStaleness time.Duration

	l     *ladder
	rung  string // the name of the rung being asked
	below bool   // a rung follows the one being asked
	at    int64  // a recent reading of the ladder's clock
	// values are the call's [CallValue]s.
	values []callValue
	key    string
	keyed  bool
}

// Key returns the cache key of the request's inputs, by [Config].Key:
// "" when they have none, which means "do not cache". The router computes
// it at most once per request for its own rungs; a custom rung that calls
// Key pays for computing it.
func (q Request) Key() string {
	if q.keyed || q.l == nil {
		return q.key
	}
	return q.l.safeKey(q.Inputs)
}

// Value returns the value the call attached under key with [CallValue],
// or nil. When key was attached twice, the last value wins.
func (q Request) Value(key any) any {
	for i := len(q.values) - 1; i >= 0; i-- {
		if q.values[i].key == key {
			return q.values[i].value
		}
	}
	return nil
}

// Validate checks outputs as the router checks every answer before it is
// served: at least one output, the ladder's output contract, finite
// values and [Config].Check. It returns an error matching
// [ErrInvalidOutput], or nil. A rung that wants a bad output counted
// against a breaker of its own calls it before the router does.
func (q Request) Validate(outputs []tensor.Tensor) error {
	if q.l == nil {
		return (&ladder{}).validate(q.rung, outputs)
	}
	return q.l.validate(q.rung, outputs)
}

// Budget returns how long an attempt of the rung may take: timeout,
// shortened when ctx has a deadline to the remaining time less the
// ladder's reserve ([Config].Reserve) for the rungs below. It is zero or
// less when no time is left.
func (q Request) Budget(ctx context.Context, timeout time.Duration) time.Duration {
	reserve := 0.0
	if q.l != nil && q.below {
		reserve = q.l.reserve
	}
	return policy.Budget(ctx, timeout, reserve)
}

// placed is a rung at its place in a ladder.
type placed struct {
	rung Rung
	name string // rung.Name(), read once
	kind Kind   // rung.Kind(), read once
	// builtin: one of the router's own rungs, which recover their panics
	// and validate their answers themselves.
	builtin bool
	// needsKey: the rung reads the request's cache key, which the router
	// then computes before asking it, when the request accepts cached
	// answers.
	needsKey bool
	// tier is a model tier, which the request path asks for its verdict
	// as well as its answer; nil for other rungs.
	tier *tierRung
	// hs is a model tier's health, counted by the request path; nil for
	// other rungs.
	hs *tierHealth
	// note is what the router knows of a rung other than a model tier,
	// by name across ladders; nil for model tiers.
	note *rungNote
	// v is a model tier's version in this ladder, which the request path
	// counts each request against; nil for other rungs.
	v *version
}

// serveCustom asks a rung from [Config].Rungs, recovering its panic and
// validating its answer.
func (l *ladder) serveCustom(ctx context.Context, p *placed, req Request) (a Answer, err error) {
	defer func() {
		if v := recover(); v != nil {
			a, err = Answer{Attempts: a.Attempts}, &PanicError{Tier: p.name, Value: v, Stack: debug.Stack()}
		}
	}()
	a, err = p.rung.Serve(ctx, req)
	if err == nil {
		if err = l.validate(p.name, a.Outputs); err != nil {
			a = Answer{Attempts: a.Attempts}
		}
	}
	return a, err
}

// funcRung is the heuristic or the default: a Go function of the inputs.
type funcRung struct {
	l    *ladder
	name string
	kind Kind
	fn   func(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error)
}

func (f *funcRung) Name() string { return f.name }
func (f *funcRung) Kind() Kind   { return f.kind }

// Serve answers from the function, recovering its panic and validating
// its answer.
func (f *funcRung) Serve(ctx context.Context, req Request) (a Answer, err error) {
	defer func() {
		if v := recover(); v != nil {
			a, err = Answer{Attempts: 1}, &PanicError{Tier: f.name, Value: v, Stack: debug.Stack()}
		}
	}()
	out, err := f.fn(ctx, req.Inputs)
	if err == nil {
		err = f.l.validate(f.name, out)
	}
	if err != nil {
		if (errors.Is(err, tensor.ErrInvalidInput) && f.l.inputs == nil) || ctx.Err() != nil {
			return Answer{Attempts: 1}, err
		}
		// A failing heuristic is the heuristic's fault, whatever it returned.
		return Answer{Attempts: 1}, policy.Permanent(err)
	}
	return Answer{Outputs: out, Attempts: 1}, nil
}

// validate is the one check every answer of every rung passes before it
// is served: at least one output, the ladder's output contract, finite
// values, and the user's Check.
func (l *ladder) validate(tier string, out []tensor.Tensor) error {
	if len(out) == 0 {
		return &OutputError{Tier: tier, Problem: "no outputs"}
	}
	if l.outputs != nil {
		if len(out) != len(l.outputs) {
			return &OutputError{Tier: tier, Problem: fmt.Sprintf("%d outputs, expected %d", len(out), len(l.outputs))}
		}
		for i, info := range l.outputs {
			if err := checkShape(tier, out[i], info); err != nil {
				return err
			}
		}
	}
	for _, t := range out {
		if i := tensor.FirstNonFinite(t); i >= 0 {
			return &OutputError{Tier: tier, Output: t.Name, Problem: fmt.Sprintf("NaN or Inf at element %d", i)}
		}
	}
	if l.check != nil {
		return l.safeCheck(tier, out)
	}
	return nil
}

// safeCheck runs the user's Check. A panic is reported and does not
// refuse the answer: a broken hook never changes which answer is served.
func (l *ladder) safeCheck(tier string, out []tensor.Tensor) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = nil
			l.r.hookPanicked("Check", tier, v)
		}
	}()
	if err := l.check(out); err != nil {
		return &OutputError{Tier: tier, Problem: err.Error()}
	}
	return nil
}

func checkShape(tier string, t tensor.Tensor, info tensor.Info) error {
	bad := func(problem string) error { return &OutputError{Tier: tier, Output: info.Name, Problem: problem} }
	if t.Name != info.Name || t.DType() != info.DType {
		return bad(fmt.Sprintf("got %s %s, expected %s", t.Name, t.DType(), info))
	}
	if len(t.Shape) != len(info.Shape) && !info.AnyRank {
		return bad(fmt.Sprintf("shape %v, expected %s", t.Shape, info))
	}
	for d, size := range t.Shape {
		if size < 0 || (!info.AnyRank && info.Shape[d] >= 0 && size != info.Shape[d]) {
			return bad(fmt.Sprintf("shape %v, expected %s", t.Shape, info))
		}
	}
	n, ok := tensor.NumElements(t.Shape)
	if !ok {
		return bad(fmt.Sprintf("shape %v: its element count overflows int64", t.Shape))
	}
	if int64(t.Len()) != n {
		return bad(fmt.Sprintf("%d elements for shape %v", t.Len(), t.Shape))
	}
	return nil
}
