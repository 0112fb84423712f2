//go:build cgo

package models_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/tensor"
)

// A model file is loaded once, shows what it takes and returns, and then
// serves concurrent predictions until it is closed.
func Example() {
	// Once per process: find and load ONNX Runtime. An empty path looks in
	// the documented places; a second call is a no-op.
	if err := models.InitRuntime(""); err != nil {
		fmt.Println(err)
		return
	}

	m, err := models.Load("../testdata/primary.onnx", models.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	sig := m.Signature()
	fmt.Println("takes", sig.Inputs[0], "returns", sig.Outputs[0])

	row := []float32{13.73, 22.61, 93.6, 578.3, 0.1131, 0.2293, 0.2128, 0.08025, 0.2069, 0.07682,
		0.2121, 1.169, 2.061, 19.21, 0.006429, 0.05936, 0.05501, 0.01628, 0.01961, 0.008093,
		15.03, 32.01, 108.8, 697.7, 0.1651, 0.7725, 0.6943, 0.2208, 0.3596, 0.1431}
	out, err := m.Predict(context.Background(), []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := tensor.Data[float32](out[0])
	fmt.Printf("P(benign) = %.2f\n", p[0])

	// Input that does not fit the signature never reaches ONNX Runtime.
	_, err = m.Predict(context.Background(), []tensor.Tensor{tensor.New("features", []int64{1, 3}, row[:3])})
	fmt.Println(errors.Is(err, tensor.ErrInvalidInput))
	// Output:
	// takes features float32[?,30] returns probability float32[?,1]
	// P(benign) = 0.00
	// true
}

// A scalar (rank-0) tensor has an empty shape and one element, in and out.
// scalars.onnx scales x by a scalar rate, as a voice-activity detector
// takes its sample rate, and returns the scaled rows and their scalar sum.
func Example_scalars() {
	ctx := context.Background()
	if err := models.InitRuntime(""); err != nil {
		log.Fatal(err)
	}
	m, err := models.Load("../testdata/scalars.onnx", models.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	out, err := m.Predict(ctx, []tensor.Tensor{
		tensor.New("x", []int64{1, 3}, []float32{1, 2, 3}),
		tensor.Scalar("rate", int64(10)),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out[1].Name, out[1].Shape, out[1].Data)
	// Output:
	// total [] [60]
}

// Warmup runs a model once before traffic arrives. By default it sends
// ones with every dynamic dimension set to 1; a model that needs real
// values, or whose first real requests are larger, gets example inputs at
// load time, which Load checks against the signature.
func ExampleModel_Warmup() {
	ctx := context.Background()
	if err := models.InitRuntime(""); err != nil {
		log.Fatal(err)
	}
	m, err := models.Load("../testdata/scalars.onnx", models.Options{
		WarmupInputs: []tensor.Tensor{
			tensor.New("x", []int64{512, 3}, make([]float32, 512*3)),
			tensor.Scalar("rate", int64(16000)),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	if err := m.Warmup(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("warmed up")
	// Output:
	// warmed up
}
