package router

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/internal/executor"
	"github.com/ladder-ml/ladder/internal/mono"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
)

// tierState is what a model tier keeps across ladders: when a new ladder
// replaces the current one, a tier of the same name and Policy carries its
// breaker, bulkhead, retry budget, abandoned calls and poison inputs over.
type tierState struct {
	name   string
	policy *executor.Tier

	// Calls on a helper goroutine that the router stopped waiting for and
	// that have not returned yet; at most maxAbandoned.
	abandoned    atomic.Int64
	maxAbandoned int64

	// Recent failures by input, for the poison-input rule.
	poison poisonSet
}

// newTierState builds a tier's policies. Breaker changes are reported as
// events of the tier at its position in the ladder current at the time.
func (r *Router) newTierState(name string, cfg policy.Config) (*tierState, error) {
	st := &tierState{name: name}
	p, err := executor.New(cfg, func(c policy.StateChange) {
		r.emit(Event{Kind: BreakerChanged, Tier: name, Position: r.position(name), Breaker: c})
	})
	if err != nil {
		return nil, err
	}
	st.policy = p
	st.maxAbandoned = int64(p.Config().MaxConcurrent)
	st.poison.window = int64(p.Config().OpenFor)
	return st, nil
}

// tierRung is a model tier in one ladder.
type tierRung struct {
	*tierState
	hs      *tierHealth // by name, across ladders and versions
	v       *version    // the model's version, counting the calls on it
	l       *ladder
	model   Model
	timed   TimeoutPredictor // model, when it can bound its own runs
	adapt   func([]tensor.Tensor) ([]tensor.Tensor, error)
	version string
	timeout time.Duration    // the tier's per-attempt timeout
	below   bool             // a rung follows, so an attempt keeps a reserve
	attempt executor.Attempt // bound once, so Do allocates nothing
}

func (t *tierRung) Name() string { return t.name }
func (t *tierRung) Kind() Kind   { return KindModel }

// Serve runs the tier's model under its policies. A tier that is loading
// or unhealthy is skipped without an attempt. A request that loaded its
// ladder before the tier's model was replaced and retired is served by
// the tier of the current ladder.
func (t *tierRung) Serve(ctx context.Context, req Request) (Answer, error) {
	if down := t.hs.down.Load(); down != nil {
		return Answer{Version: t.version}, down
	}
	now := req.at
	if !t.l.realClock {
		now = mono.Now()
	}
	if t.policy.Skips(now) {
		return Answer{Version: t.version}, policy.ErrOpen
	}
	if !t.v.enter() {
		if cur := t.l.r.ladder.Load().byTier[t.name]; cur != nil && cur != t && cur.v != t.v {
			return cur.Serve(ctx, req)
		}
		return Answer{Version: t.version}, ErrClosed
	}
	defer t.v.leave()
	in := req.Inputs
	var err error
	switch {
	case t.timed == nil && t.abandoned.Load() >= t.maxAbandoned:
		err = &AbandonedError{Tier: t.name, Running: t.abandoned.Load()}
	case t.adapt != nil:
		in, err = t.adaptInputs(in)
	}
	if err != nil {
		return Answer{Version: t.version}, err
	}
	out, attempts, err := t.policy.Do(ctx, now, in, t.attempt)
	return Answer{Outputs: out, Attempts: attempts, Version: t.version}, err
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

// try is one attempt at a model tier: bounded by the tier's timeout and
// the caller's deadline, with panics recovered and outputs validated.
func (t *tierRung) try(ctx context.Context, inputs []tensor.Tensor) (out []tensor.Tensor, err error) {
	defer func() {
		if v := recover(); v != nil {
			// A panic is not retried on the same tier.
			out, err = nil, policy.Permanent(&PanicError{Tier: t.name, Value: v, Stack: debug.Stack()})
		}
		if err != nil {
			err = t.poison.judge(t.l.r, ctx, inputs, err)
		}
	}()
	reserve := 0.0
	if t.below {
		reserve = t.l.reserve
	}
	timeout := budget(ctx, t.timeout, reserve)
	if timeout <= 0 {
		return nil, policy.Uncounted(fmt.Errorf("%w: no time left before the caller's deadline", policy.ErrTimeout))
	}
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
	if err != nil {
		if errors.Is(err, tensor.ErrInvalidInput) && t.l.inputs != nil {
			// The input fits the ladder's contract: refusing it is the
			// tier's failure, not the caller's.
			err = policy.Permanent(err)
		}
		return nil, err
	}
	if err := t.l.validate(t.name, out); err != nil {
		// The same input would give the same bad output: not retried.
		return nil, policy.Permanent(err)
	}
	return out, nil
}

// aside is one call run on a helper goroutine.
type aside struct {
	done  chan struct{}
	out   []tensor.Tensor
	err   error
	state atomic.Int32 // callRunning, callFinished or callAbandoned
}

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
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &aside{done: make(chan struct{})}
	st, model, v := t.tierState, t.model, t.v
	v.hold() // the call may outlive Serve: its version must not close under it
	go func() {
		defer func() {
			if p := recover(); p != nil {
				c.out, c.err = nil, policy.Permanent(&PanicError{Tier: st.name, Value: p, Stack: debug.Stack()})
			}
			close(c.done)
			if c.state.CompareAndSwap(callRunning, callFinished) {
				v.leave()
			} else {
				st.abandoned.Add(-1)
				v.leaveOrphan() // the version may have been closed, or be closed now
			}
		}()
		c.out, c.err = model.Predict(tctx, inputs)
	}()
	select {
	case <-c.done:
	case <-tctx.Done():
		v.orphan() // before the call can see itself abandoned and leave
		if !c.state.CompareAndSwap(callRunning, callAbandoned) {
			v.unorphan()
		} else {
			st.abandoned.Add(1)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w after %v: %w", policy.ErrTimeout, timeout, tctx.Err())
		}
		<-c.done // it has just finished
	}
	if c.err != nil && ctx.Err() == nil && tctx.Err() != nil {
		return nil, fmt.Errorf("%w after %v: %w", policy.ErrTimeout, timeout, c.err)
	}
	return c.out, c.err
}
