package router_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// A ladder whose only model is down still answers, from the heuristic, and
// says so.
func Example() {
	down := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("model file missing")
	})
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: down}},
		Heuristic: func(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{0.63})}, nil
		},
	})
	if err != nil {
		panic(err)
	}
	defer r.Close()

	in := []tensor.Tensor{tensor.New("features", []int64{1, 2}, []float32{14.1, 0.09})}
	a, err := r.Predict(context.Background(), in)
	fmt.Println(a.Outputs[0].Data, a.Tier, a.Degraded, err)
	for _, f := range a.Fell {
		fmt.Println("fell:", f.Tier, f.Err)
	}
	// Output:
	// [0.63] heuristic true <nil>
	// fell: primary model file missing
	// fell: cache router: no cached answer for this input
}

// A request that wants the right answer or none fails cleanly instead of
// taking a degraded one.
func ExampleLowestTier() {
	down := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("model file missing")
	})
	r, _ := router.New(router.Config{
		Tiers:   []router.Tier{{Name: "primary", Model: down}},
		Default: []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{0.5})},
	})
	defer r.Close()

	in := []tensor.Tensor{tensor.New("features", []int64{1, 1}, []float32{1})}
	_, err := r.Predict(context.Background(), in, router.LowestTier("primary"))
	fmt.Println(errors.Is(err, router.ErrNoAnswer))
	// Output:
	// true
}
