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

// A tier's settings go in router.Tier.Policy. Here the primary is a model
// whose p99 is about 30 ms: its attempts get 150 ms, it is not retried, and
// its breaker re-probes after 5 s. Every field left zero keeps its default.
func ExampleConfig() {
	flaky := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("connection reset")
	})
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{
			Name:  "primary",
			Model: flaky,
			Policy: policy.Config{
				Timeout:     150 * time.Millisecond,
				MaxAttempts: 1,
				OpenFor:     5 * time.Second,
			},
		}},
		Default: []tensor.Tensor{tensor.New("probability", []int64{1}, []float32{0.5})},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	a, _ := r.Predict(context.Background(), []tensor.Tensor{tensor.New("x", []int64{1}, []float32{1})})
	fmt.Println(a.Tier, a.Fell[0].Attempts, "attempt:", a.Fell[0].Err)
	// Output:
	// default 1 attempt: connection reset
}

// A model whose failure is tied to its input marks it Permanent: the same
// input would fail again, so the request falls to the next rung at once
// instead of being retried.
func ExamplePermanent() {
	strict := router.ModelFunc(func(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, policy.Permanent(errors.New("no embedding for this vocabulary"))
	})
	r, err := router.New(router.Config{
		Tiers:   []router.Tier{{Name: "primary", Model: strict}},
		Default: []tensor.Tensor{tensor.New("probability", []int64{1}, []float32{0.5})},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	a, _ := r.Predict(context.Background(), []tensor.Tensor{tensor.New("x", []int64{1}, []float32{1})})
	fmt.Println(a.Tier, a.Fell[0].Attempts, "attempt:", a.Fell[0].Err)
	// Output:
	// default 1 attempt: no embedding for this vocabulary
}
