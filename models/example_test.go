//go:build cgo

package models_test

import (
	"context"
	"errors"
	"fmt"

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
