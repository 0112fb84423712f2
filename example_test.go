package ladder_test

import (
	"context"
	"fmt"
	"log"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// row is the first held-out row of testdata/heldout.csv, a malignant case.
var row = []float32{13.73, 22.61, 93.6, 578.3, 0.1131, 0.2293, 0.2128, 0.08025, 0.2069, 0.07682,
	0.2121, 1.169, 2.061, 19.21, 0.006429, 0.05936, 0.05501, 0.01628, 0.01961, 0.008093,
	15.03, 32.01, 108.8, 697.7, 0.1651, 0.7725, 0.6943, 0.2208, 0.3596, 0.1431}

// The README's usage: two ONNX models and a base-rate heuristic. While the
// primary is healthy, it serves; an input that does not fit the ladder is
// refused at once, whatever the models' state.
func Example() {
	ctx := context.Background()
	if err := models.InitRuntime(""); err != nil { // once per process: finds the copy `make ort` installed
		log.Fatal(err)
	}
	primary, err := models.Load("testdata/primary.onnx", models.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer primary.Close()
	backup, err := models.Load("testdata/backup.onnx", models.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer backup.Close()

	baseRate := []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{0.63})}
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: primary}, {Name: "backup", Model: backup}},
		Heuristic: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return baseRate, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close() // before the models: deferred calls run last-in, first-out

	a, err := r.Predict(ctx, []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)})
	fmt.Println(a.Tier, a.Degraded, err)

	_, err = r.Predict(ctx, []tensor.Tensor{tensor.New("features", []int64{1, 2}, row[:2])})
	fmt.Println(err)
	// Output:
	// primary false <nil>
	// tensor: invalid input to ladder: input "features": wrong size of dimension 1: expected float32[?,30], got float32[1,2]
}

// When the primary fails, the backup serves, the answer says it is
// degraded, and Fell says why the primary fell.
func Example_failover() {
	ctx := context.Background()
	if err := models.InitRuntime(""); err != nil {
		fmt.Println(err)
		return
	}
	m, err := models.Load("testdata/primary.onnx", models.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	backup, err := models.Load("testdata/backup.onnx", models.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer backup.Close()

	// A primary whose every call fails, as after a bad deploy.
	primary := chaos.Wrap(m, chaos.Fault{ErrorRate: 1})
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: primary}, {Name: "backup", Model: backup}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	a, err := r.Predict(ctx, []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)})
	p, _ := tensor.Data[float32](a.Outputs[0])
	fmt.Printf("%s served %.2f, degraded %v, err %v\n", a.Tier, p[0], a.Degraded, err)
	for _, f := range a.Fell {
		fmt.Printf("%s fell after %d attempts: %v\n", f.Tier, f.Attempts, f.Err)
	}
	// Output:
	// backup served 0.03, degraded true, err <nil>
	// primary fell after 2 attempts: chaos: injected failure: error rate
}
