package routertest

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ladder-ml/ladder/tensor"
)

// A variant is a set of inputs derived from the valid ones, named for a
// failure message.
type variant struct {
	name string
	in   []tensor.Tensor
}

// badInputs returns inputs derived from valid that a model cannot be
// expected to answer: none, an empty tensor, and the first input with no
// data, data of another type, a shape that does not fit, a negative or
// overflowing dimension, another name, or a NaN; and an unknown input
// beside the valid ones. Each variant is a fresh copy.
func badInputs(valid []tensor.Tensor) []variant {
	first := valid[0]
	with := func(change func(t *tensor.Tensor)) []tensor.Tensor {
		in := tensor.CloneAll(valid)
		change(&in[0])
		return in
	}
	n := first.Len()
	vs := []variant{
		{"nil inputs", nil},
		{"no inputs", []tensor.Tensor{}},
		{"a zero Tensor", []tensor.Tensor{{}}},
		{fmt.Sprintf("input %q with no data", first.Name), with(func(t *tensor.Tensor) { t.Data = nil })},
		{fmt.Sprintf("input %q with data of another element type", first.Name), with(func(t *tensor.Tensor) { t.Data = otherType(*t) })},
		{fmt.Sprintf("input %q holding %T, which is no element type", first.Name, []complex64(nil)),
			with(func(t *tensor.Tensor) { t.Data = make([]complex64, n) })},
		{fmt.Sprintf("input %q with a shape its data does not fit", first.Name),
			with(func(t *tensor.Tensor) { t.Shape = append(t.Shape, 2) })},
		{fmt.Sprintf("input %q with a negative dimension", first.Name), with(func(t *tensor.Tensor) {
			if len(t.Shape) == 0 {
				t.Shape = []int64{-1}
			} else {
				t.Shape[0] = -t.Shape[0] - 1
			}
		})},
		{fmt.Sprintf("input %q with more elements than int64 counts", first.Name),
			with(func(t *tensor.Tensor) { t.Shape = []int64{1 << 40, 1 << 40} })},
		{fmt.Sprintf("input %q renamed", first.Name), with(func(t *tensor.Tensor) { t.Name += ".renamed" })},
		{"an unknown input beside them", append(tensor.CloneAll(valid), tensor.New("routertest.unknown", []int64{1}, []float32{1}))},
	}
	switch d := first.Data.(type) {
	case []float32:
		if len(d) > 0 {
			vs = append(vs, variant{fmt.Sprintf("input %q holding NaN", first.Name),
				with(func(t *tensor.Tensor) { t.Data.([]float32)[0] = float32(math.NaN()) })})
		}
	case []float64:
		if len(d) > 0 {
			vs = append(vs, variant{fmt.Sprintf("input %q holding NaN", first.Name),
				with(func(t *tensor.Tensor) { t.Data.([]float64)[0] = math.NaN() })})
		}
	}
	return vs
}

// otherType returns data of as many elements as t's, of another element
// type: int64 for floats, float32 for the rest.
func otherType(t tensor.Tensor) any {
	switch t.DType() {
	case tensor.Float32, tensor.Float64, tensor.Float16, tensor.BFloat16:
		return make([]int64, t.Len())
	}
	return make([]float32, t.Len())
}

// malformed says what is wrong with outputs as an answer the router
// serves, or "".
func malformed(outputs []tensor.Tensor) string {
	if len(outputs) == 0 {
		return "no outputs, which the router refuses"
	}
	for i, t := range outputs {
		if t.DType() == tensor.Invalid {
			return fmt.Sprintf("output %d (%q) holding %T, which is no element type", i, t.Name, t.Data)
		}
		if n, ok := tensor.NumElements(t.Shape); !ok || n != int64(t.Len()) {
			return fmt.Sprintf("output %d (%q) with %d elements for shape %v", i, t.Name, t.Len(), t.Shape)
		}
		if j := tensor.FirstNonFinite(t); j >= 0 {
			return fmt.Sprintf("output %d (%q) with NaN or Inf at element %d, which the router refuses", i, t.Name, j)
		}
	}
	return ""
}

// differ says how got differs from want, or "". Elements are compared
// as they print, so NaN equals NaN.
func differ(got, want []tensor.Tensor) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d tensors, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.Name || !slices.Equal(g.Shape, w.Shape) || g.DType() != w.DType() || fmt.Sprint(g.Data) != fmt.Sprint(w.Data) {
			return fmt.Sprintf("tensor %d is %s, want %s", i, describe(g), describe(w))
		}
	}
	return ""
}

// describe formats t briefly, for a failure message.
func describe(t tensor.Tensor) string {
	data := fmt.Sprint(t.Data)
	if len(data) > 60 {
		data = data[:57] + "..."
	}
	return fmt.Sprintf("%q %s%v %s", t.Name, t.DType(), t.Shape, strings.TrimSpace(data))
}
