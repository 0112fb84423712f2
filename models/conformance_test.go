//go:build cgo

package models_test

import (
	"slices"
	"testing"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/router/routertest"
	"github.com/ladder-ml/ladder/tensor"
)

// TestModelsConformToTheRouter runs routertest's checks of a router.Model
// on bundled models of every input kind: one input and several, scalars,
// every element type, dynamic output sizes, any rank, and a model whose
// kernels crash on some inputs.
func TestModelsConformToTheRouter(t *testing.T) {
	halves := func(fs ...float32) []tensor.F16 {
		var h []tensor.F16
		for _, f := range fs {
			h = append(h, tensor.NewF16(f))
		}
		return h
	}
	for _, tt := range []struct {
		file   string
		inputs []tensor.Tensor
	}{
		{"primary.onnx", []tensor.Tensor{tensor.New("features", []int64{1, 30}, slices.Repeat([]float32{0.5}, 30))}},
		{"multi_io.onnx", []tensor.Tensor{
			tensor.New("a", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
			tensor.New("b", []int64{2, 2}, []int64{1, 2, 3, 4}),
		}},
		{"int64_input.onnx", []tensor.Tensor{tensor.New("ids", []int64{1, 4}, []int64{3, 1, 4, 1})}},
		{"scalars.onnx", []tensor.Tensor{
			tensor.New("x", []int64{1, 3}, []float32{1, 2, 3}),
			tensor.Scalar("rate", int64(2)),
		}},
		{"types.onnx", []tensor.Tensor{
			tensor.New("f64", []int64{2}, []float64{1.5, -2}),
			tensor.New("i32", []int64{2}, []int32{7, -7}),
			tensor.New("flag", []int64{2}, []bool{true, false}),
			tensor.New("text", []int64{2}, []string{"a", "bc"}),
		}},
		{"small_ints.onnx", []tensor.Tensor{
			tensor.New("i8", []int64{2}, []int8{-1, 1}),
			tensor.New("u8", []int64{2}, []uint8{1, 2}),
			tensor.New("i16", []int64{2}, []int16{-3, 3}),
			tensor.New("u16", []int64{2}, []uint16{4, 5}),
			tensor.New("u32", []int64{2}, []uint32{6, 7}),
			tensor.New("u64", []int64{2}, []uint64{8, 9}),
		}},
		{"half.onnx", []tensor.Tensor{
			tensor.New("h", []int64{1, 2}, halves(1, 2)),
			tensor.New("b", []int64{1, 2}, []tensor.BF16{tensor.NewBF16(3), tensor.NewBF16(4)}),
		}},
		{"dynamic.onnx", []tensor.Tensor{tensor.New("x", []int64{3}, []float32{1, -2, 3})}},
		{"string_scalar.onnx", []tensor.Tensor{tensor.New("text", []int64{2}, []string{"first", "second"})}},
		{"reshape.onnx", []tensor.Tensor{
			tensor.New("x", []int64{6}, []float32{1, 2, 3, 4, 5, 6}),
			tensor.New("shape", []int64{2}, []int64{2, 3}),
		}},
		{"any_rank.onnx", []tensor.Tensor{
			tensor.New("x", []int64{6}, []float32{1, 2, 3, 4, 5, 6}),
			tensor.New("shape", []int64{2}, []int64{2, 3}),
			tensor.New("h", []int64{4}, halves(1, 2, 3, 4)),
			tensor.New("hshape", []int64{2}, []int64{2, 2}),
			tensor.New("a", []int64{2}, []int32{1, 2}),
			tensor.New("text", []int64{1}, []string{"x"}),
		}},
		{"int_div.onnx", []tensor.Tensor{
			tensor.New("a", []int64{2}, []int32{6, 9}),
			tensor.New("b", []int64{2}, []int32{3, 2}),
		}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			routertest.TestModel(t, func(t *testing.T) router.Model { return testenv.Load(t, tt.file) },
				routertest.Options{Inputs: tt.inputs})
		})
	}
}
