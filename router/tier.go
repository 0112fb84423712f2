package router

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
)

// tierState is what a model tier keeps across ladders: when a new ladder
// replaces the current one, a tier of the same name, Policy and version
// carries its guard (breaker, bulkhead, retry budget, poison inputs) and
// its abandoned calls over. A version swapped in starts a tierState of its
// own.
type tierState struct {
	name  string
	guard *policy.Guard

	// Calls on a helper goroutine that the router stopped waiting for and
	// that have not returned yet; at most maxAbandoned.
	abandoned    atomic.Int64
	maxAbandoned int64
}

// newTierState builds a tier's guard. Breaker changes are reported as
// events of the tier at its position in the ladder current at the time.
func (r *Router) newTierState(name string, cfg policy.Config) (*tierState, error) {
	st := &tierState{name: name}
	opts := policy.Options{
		Name:  name,
		Clock: r.clock,
		OnStateChange: func(c policy.StateChange) {
			if cur := r.ladder.Load(); cur != nil && cur.tiers[name] != nil && cur.tiers[name] != st {
				return // the guard of a version replaced: not the tier's breaker any more
			}
			r.emit(Event{Kind: BreakerChanged, Tier: name, Position: r.position(name), Breaker: c})
		},
	}
	if r.onDone != nil {
		opts.OnDone = r.done
	}
	g, err := policy.New(cfg, opts)
	if err != nil {
		return nil, err
	}
	st.guard = g
	st.maxAbandoned = int64(g.Config().MaxConcurrent)
	return st, nil
}

// tierRung is a model tier in one ladder.
type tierRung struct {
	*tierState
	hs       *tierHealth // by name, across ladders and versions
	v        *version    // the model's version, counting the calls on it
	l        *ladder
	model    Model
	timed    TimeoutPredictor // model, when it can bound its own runs
	adapt    func([]tensor.Tensor) ([]tensor.Tensor, error)
	version  string
	timeout  time.Duration  // the tier's per-attempt timeout
	below    bool           // a rung follows, so an attempt keeps a reserve
	attempt  policy.Attempt // bound once, so Do allocates nothing
	validate func([]tensor.Tensor) error
}

func (t *tierRung) Name() string { return t.name }
func (t *tierRung) Kind() Kind   { return KindModel }

// Serve runs the tier's model under its guard.
func (t *tierRung) Serve(ctx context.Context, req Request) (Answer, error) {
	a, _, err := t.serve(ctx, req)
	return a, err
}

// serve runs the tier's model under its guard, and returns the verdict
// with the answer. A tier that is loading or unhealthy is skipped without
// an attempt. A request that loaded its ladder before the tier's model was
// replaced and retired is served by the tier of the current ladder.
func (t *tierRung) serve(ctx context.Context, req Request) (Answer, policy.Outcome, error) {
	if down := t.hs.down.Load(); down != nil {
		return Answer{Version: t.version}, Unavailable, down
	}
	if t.guard.Skips(req.at) {
		return Answer{Version: t.version}, policy.BreakerOpen, policy.ErrOpen
	}
	if !t.v.enter() {
		if cur := t.l.r.ladder.Load().byTier[t.name]; cur != nil && cur != t && cur.v != t.v {
			return cur.serve(ctx, req)
		}
		return Answer{Version: t.version}, policy.Failed, ErrClosed
	}
	defer t.v.leave()
	in := req.Inputs
	if t.timed == nil && t.abandoned.Load() >= t.maxAbandoned {
		return Answer{Version: t.version}, policy.Abandoned, &AbandonedError{Tier: t.name, Running: t.abandoned.Load()}
	}
	if t.adapt != nil {
		var err error
		if in, err = t.adaptInputs(in); err != nil {
			return Answer{Version: t.version}, policy.Judge(ctx, err), err
		}
	}
	reserve := 0.0
	if t.below {
		reserve = t.l.reserve
	}
	res := t.guard.Do(ctx, policy.Call{Inputs: in, Version: t.version, Reserve: reserve, Validate: t.validate, At: req.at}, t.attempt)
	return Answer{Outputs: res.Outputs, Attempts: res.Attempts, Version: t.version}, res.Outcome, res.Err
}

// adaptInputs runs the tier's input adapter, recovering its panic.
func (t *tierRung) adaptInputs(inputs []tensor.Tensor) (out []tensor.Tensor, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, &PanicError{Tier: t.name, Hook: "Inputs", Value: v, Stack: debug.Stack()}
		}
	}()
	out, err = t.adapt(inputs)
	if err != nil {
		err = &AdaptError{Tier: t.name, Err: err}
	}
	return out, err
}

// run is one attempt at a model tier, within timeout: on the request's
// goroutine for a [TimeoutPredictor], on a helper goroutine otherwise.
// The guard recovers its panic and validates its answer.
func (t *tierRung) run(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) (out []tensor.Tensor, err error) {
	if t.timed != nil {
		out, err = t.timed.PredictTimeout(ctx, timeout, inputs)
		// A run that ended on its own timeout reports a deadline while the
		// caller's ctx is still live.
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w after %v: %w", policy.ErrTimeout, timeout, err)
		}
	} else {
		out, err = t.predictAside(ctx, timeout, inputs)
	}
	if err != nil && t.l.inputs != nil && errors.Is(err, tensor.ErrInvalidInput) {
		// The input fits the ladder's contract: refusing it is the tier's
		// failure, not the caller's.
		err = policy.Permanent(err)
	}
	return out, err
}

// The states of a call on a helper goroutine.
const (
	callRunning int32 = iota
	callFinished
	callAbandoned
)

// predictAside runs a Model that may ignore ctx on a helper goroutine and
// stops waiting for it at the timeout. Calls it stopped waiting for are
// counted until they return; while maxAbandoned of them are still running,
// the tier is skipped as if its bulkhead were full.
func (t *tierRung) predictAside(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if n := t.abandoned.Load(); n >= t.maxAbandoned {
		return nil, &AbandonedError{Tier: t.name, Running: n}
	}
	st, model := t.tierState, t.model
	t.v.hold() // the call may outlive Serve: its version must not close under it
	return t.v.aside(ctx, timeout, t.name, &st.abandoned, func(ctx context.Context) ([]tensor.Tensor, error) {
		return model.Predict(ctx, inputs)
	})
}
