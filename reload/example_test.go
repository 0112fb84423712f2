package reload_test

import (
	"context"
	"fmt"
	"math"

	"github.com/ladder-ml/ladder/probe"
	"github.com/ladder-ml/ladder/reload"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// A reload is checked before it serves: a version whose canary answers NaN
// is rejected and the old one keeps serving; a good one is swapped in.
func ExampleReloader_Reload() {
	constant := func(p float32) router.Model {
		return router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{p})}, nil
		})
	}
	version := func(m router.Model, v string) reload.Loader {
		return reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
			return reload.Loaded{Model: m, Version: v, Source: "registry/" + v}, nil
		})
	}
	in := []tensor.Tensor{tensor.New("features", []int64{1, 2}, []float32{14.1, 0.09})}
	rl := reload.New(reload.Config{
		Load:     version(constant(0.6), "v1"),
		Canaries: []probe.Canary{{Inputs: in}}, // any valid answer passes
	})
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: constant(0.6), Version: "v1", Manage: []router.Manager{rl}}},
	})
	if err != nil {
		panic(err)
	}
	defer r.Close()

	err = rl.Reload(context.Background(), version(constant(float32(math.NaN())), "v2"))
	fmt.Println(err)
	fmt.Println(r.Health()["primary"].Condition, r.Health()["primary"].Version)

	err = rl.Reload(context.Background(), version(constant(0.7), "v3"))
	a, _ := r.Predict(context.Background(), in)
	h := r.Health()["primary"]
	fmt.Println(err, h.Condition, h.Version, h.Source, a.Outputs[0].Data)
	// Output:
	// reload: reload failed: primary v2 failed its canary check: probe: canary failed: primary v2 canary 0: router: invalid model output from primary: output "probability": NaN or Inf at element 0; serving v1
	// reload-failed v1
	// <nil> healthy v3 registry/v3 [0.7]
}
