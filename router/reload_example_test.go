package router_test

import (
	"context"
	"fmt"
	"math"

	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// A reload is checked before it serves: a version whose canary answers NaN
// is rejected and the old one keeps serving; a good one is swapped in.
func ExampleRouter_Reload() {
	constant := func(p float32) router.Model {
		return router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{p})}, nil
		})
	}
	version := func(m router.Model, v string) router.Loader {
		return router.LoaderFunc(func(context.Context) (router.Loaded, error) {
			return router.Loaded{Model: m, Version: v, Source: "registry/" + v}, nil
		})
	}
	in := []tensor.Tensor{tensor.New("features", []int64{1, 2}, []float32{14.1, 0.09})}
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{
			Name: "primary", Model: constant(0.6), Version: "v1",
			Canaries: []router.Canary{{Inputs: in}}, // any valid answer passes
		}},
	})
	if err != nil {
		panic(err)
	}
	defer r.Close()

	err = r.Reload(context.Background(), "primary", version(constant(float32(math.NaN())), "v2"))
	fmt.Println(err)
	fmt.Println(r.Health()["primary"].Condition, r.Health()["primary"].Version)

	err = r.Reload(context.Background(), "primary", version(constant(0.7), "v3"))
	a, _ := r.Predict(context.Background(), in)
	h := r.Health()["primary"]
	fmt.Println(err, h.Condition, h.Version, h.Source, a.Outputs[0].Data)
	// Output:
	// router: reload failed: primary v2 failed its canary check: router: canary failed: primary v2 canary 0: router: invalid model output from primary: output "probability": NaN or Inf at element 0; serving v1
	// reload-failed v1
	// <nil> healthy v3 registry/v3 [0.7]
}

// A tier whose model is still loading is skipped while the heuristic
// answers, and the router is ready all the same, unless that tier is
// required.
func ExampleRouter_Ready() {
	slow := router.LoaderFunc(func(ctx context.Context) (router.Loaded, error) {
		<-ctx.Done() // a download that never finishes
		return router.Loaded{}, ctx.Err()
	})
	heuristic := func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{0.63})}, nil
	}
	for _, required := range []bool{false, true} {
		r, err := router.New(router.Config{
			Tiers:     []router.Tier{{Name: "primary", Load: slow, Required: required}},
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
