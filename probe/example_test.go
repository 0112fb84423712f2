package probe_test

import (
	"context"
	"fmt"
	"log"

	"github.com/ladder-ml/ladder/probe"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// A tier probed in the background with one canary: after FailAfter failed
// probes in a row it is skipped without an attempt, and PassAfter passed
// ones readmit it.
func Example() {
	m := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{0.9})}, nil
	})
	in := []tensor.Tensor{tensor.New("features", []int64{1, 1}, []float32{1})}
	out := []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{0.9})}

	canaries := []probe.Canary{{Inputs: in, Want: out}}
	tier := router.Tier{Name: "primary", Model: m,
		Manage: []router.Manager{probe.New(probe.Config{Canaries: canaries})}}
	r, err := router.New(router.Config{Tiers: []router.Tier{tier}})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	fmt.Println(r.Health()["primary"].Condition)
	// Output:
	// healthy
}
