//go:build cgo

package models

import (
	"strings"
	"testing"

	"github.com/ladder-ml/ladder/tensor"
)

func TestNativesCoverEveryDType(t *testing.T) {
	// Given what onnxruntime_go can do with each element type,
	tests := []struct {
		dtype               tensor.DType
		scalarIn, scalarOut bool // it builds a scalar input, returns a scalar output
		allocated           bool // ladder allocates a non-scalar output
	}{
		{tensor.Float32, true, true, false},
		{tensor.Float64, true, true, false},
		{tensor.Int32, true, true, false},
		{tensor.Int64, true, true, false},
		{tensor.Bool, true, true, false},
		{tensor.String, false, true, false},
		{tensor.Int8, true, true, false},
		{tensor.Uint8, true, true, false},
		{tensor.Int16, true, true, false},
		{tensor.Uint16, true, true, false},
		{tensor.Uint32, true, true, false},
		{tensor.Uint64, true, true, false},
		{tensor.Float16, false, false, true},
		{tensor.BFloat16, false, false, true},
	}
	if len(tests) != int(tensor.BFloat16) || len(natives) != int(tensor.BFloat16)+1 {
		t.Fatalf("%d cases and %d natives for %d element types", len(tests), len(natives), tensor.BFloat16)
	}
	for _, tt := range tests {
		t.Run(tt.dtype.String(), func(t *testing.T) {
			// then each has its own entry, found again from its ONNX type,
			e := natives[tt.dtype]
			if _, none := e.ops.(unsupported); none || dtypeFromORT(e.ort) != tt.dtype {
				t.Fatalf("entry %T for ONNX type %v, which maps to %v", e.ops, e.ort, dtypeFromORT(e.ort))
			}
			name := strings.ToLower(strings.TrimPrefix(e.ort.String(), "ONNX_TENSOR_ELEMENT_DATA_TYPE_"))
			if want := map[string]string{"float": "float32", "double": "float64"}[name]; want != "" {
				name = want
			}
			if name != tt.dtype.String() {
				t.Errorf("ONNX type %s for %s", e.ort, tt.dtype)
			}
			// and the capabilities that Load and the outputs follow.
			scalar := tensor.Info{Name: "x", DType: tt.dtype, Shape: []int64{}}
			vector := tensor.Info{Name: "x", DType: tt.dtype, Shape: []int64{2}}
			if scalarOK("input", tt.dtype) != tt.scalarIn || scalarOK("output", tt.dtype) != tt.scalarOut {
				t.Errorf("scalarOK: input %v, output %v", scalarOK("input", tt.dtype), scalarOK("output", tt.dtype))
			}
			wantScalar := tt.allocated || tt.dtype.Kind() != tensor.KindString
			if allocated(scalar) != wantScalar || allocated(vector) != tt.allocated {
				t.Errorf("allocated: scalar %v, vector %v", allocated(scalar), allocated(vector))
			}
		})
	}
	if dtypeFromORT(natives[tensor.Invalid].ort) != tensor.Invalid || nativeOf(-1) != (unsupported{}) || nativeOf(99) != (unsupported{}) {
		t.Error("an element type ladder does not carry has an entry")
	}
}
