package router_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ladder-ml/ladder/reload"
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

// majority is a rung of a new kind: it answers with the majority vote of
// its members. It uses only the router's public API, so it could live in a
// package of its own.
type majority struct{ members []router.Model }

func (m majority) Name() string      { return "vote" }
func (m majority) Kind() router.Kind { return "ensemble" }

func (m majority) Serve(ctx context.Context, req router.Request) (router.Answer, error) {
	yes := 0
	for _, member := range m.members {
		out, err := member.Predict(ctx, req.Inputs)
		if err != nil {
			return router.Answer{Attempts: 1}, err
		}
		if out[0].Data.([]float32)[0] >= 0.5 {
			yes++
		}
	}
	p := float32(0)
	if 2*yes > len(m.members) {
		p = 1
	}
	return router.Answer{Outputs: []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{p})}, Attempts: 1}, nil
}

// A rung of a kind the router does not know plugs in through Config.Rungs,
// and its answers carry its own name and kind.
func ExampleRung() {
	down := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("model file missing")
	})
	score := func(p float32) router.Model {
		return router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{p})}, nil
		})
	}
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: down}},
		Rungs: []router.Rung{majority{members: []router.Model{score(0.9), score(0.7), score(0.2)}}},
	})
	if err != nil {
		panic(err)
	}
	defer r.Close()

	in := []tensor.Tensor{tensor.New("features", []int64{1, 1}, []float32{1})}
	a, err := r.Predict(context.Background(), in)
	fmt.Println(r.Rungs())
	fmt.Println(a.Outputs[0].Data, a.Tier, a.Kind, a.Degraded, err)
	// Output:
	// [primary vote cache]
	// [1] vote ensemble true <nil>
}

// A tier whose model is still loading is skipped while the heuristic
// answers, and the router is ready all the same, unless that tier is
// required.
func ExampleRouter_Ready() {
	slow := reload.LoaderFunc(func(ctx context.Context) (reload.Loaded, error) {
		<-ctx.Done() // a download that never finishes
		return reload.Loaded{}, ctx.Err()
	})
	heuristic := func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{0.63})}, nil
	}
	for _, required := range []bool{false, true} {
		r, err := router.New(router.Config{
			Tiers: []router.Tier{{Name: "primary", Required: required,
				Manage: []router.Manager{reload.New(reload.Config{Load: slow})}}},
			Heuristic: heuristic,
		})
		if err != nil {
			panic(err)
		}
		a, _ := r.Predict(context.Background(), nil)
		fmt.Println(r.Health()["primary"].Condition, a.Tier, a.Fell[0].Err, "ready:", r.Ready())
		r.Close()
	}
	// Output:
	// loading heuristic router: tier unavailable: primary is loading ready: true
	// loading heuristic router: tier unavailable: primary is loading ready: false
}
