package policy_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// A composite rung guards each member as a tier is guarded, and reads
// each attempt's verdict instead of judging its error again.
func ExampleGuard() {
	g, err := policy.New(policy.Config{MaxAttempts: 1}, policy.Options{
		Name:   "replica-1",
		OnDone: func(d policy.Done) { fmt.Println(d.Member, d.Attempt, d.Outcome, d.Counted) },
	})
	if err != nil {
		panic(err)
	}
	member := func(ctx context.Context, timeout time.Duration, in []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("connection reset")
	}
	res := g.Do(context.Background(), policy.Call{}, member)
	fmt.Println(res.Outcome, res.Attempts, res.Err)
	// Output:
	// replica-1 1 error true
	// error 1 connection reset
}

// A composite rung (replicas, a hedged pair, an ensemble) calls each
// member through a guard of its own, and reads the verdict.
func ExampleGuard_member() {
	guard, err := policy.New(policy.Config{}, policy.Options{Name: "replica-2"})
	if err != nil {
		panic(err)
	}
	member := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		var zero float32
		return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{zero / zero})}, nil
	})
	req := router.Request{Inputs: []tensor.Tensor{tensor.New("x", []int64{1, 1}, []float32{1})}}
	version, ctx := "v2", context.Background()

	res := guard.Do(ctx, policy.Call{
		Inputs:   req.Inputs,
		Version:  version,
		Reserve:  0.2,          // leave time to the rungs below
		Validate: req.Validate, // an invalid answer counts against this member
	}, func(ctx context.Context, timeout time.Duration, in []tensor.Tensor) ([]tensor.Tensor, error) {
		return router.PredictTimeout(ctx, member, timeout, in)
	})
	// res.Outcome is the member's verdict: served, timeout, invalid_output,
	// breaker_open, ... — read it, don't re-judge res.Err.
	fmt.Println(res.Outcome, res.Attempts)
	// Output: invalid_output 1
}
