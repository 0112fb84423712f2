package tensor

import (
	"math"
	"math/bits"
	"slices"
)

// Element is the set of Go element types a [Tensor] can hold.
type Element interface {
	~float32 | ~float64 | ~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 |
		~int64 | ~uint64 | ~bool | ~string
}

// Tensor is a named, shaped array of one element type: an input to or an
// output of a model.
//
// Data holds the elements in row-major order as a slice of one of the
// element types listed with [DType] ([]float32, []uint8, [][F16], ...), and
// its length is the product of Shape. A scalar has an empty Shape and one
// element. Build one with [New]; read one with [Data]. A Tensor is a
// value, but its slices are shared: use [Tensor.Clone] for a copy that
// owns its memory.
type Tensor struct {
	Name  string  // the model input or output it stands for
	Shape []int64 // one size per dimension; empty for a scalar
	Data  any     // the elements, a slice of one supported element type
}

// New returns a tensor named name with the given shape and data. It
// does not copy shape or data.
func New[T Element](name string, shape []int64, data []T) Tensor {
	return Tensor{Name: name, Shape: shape, Data: data}
}

// Scalar returns a rank-0 tensor named name holding v.
func Scalar[T Element](name string, v T) Tensor {
	return Tensor{Name: name, Shape: []int64{}, Data: []T{v}}
}

// Data returns t's elements as a []T, and false if t does not hold T.
func Data[T Element](t Tensor) ([]T, bool) {
	d, ok := t.Data.([]T)
	return d, ok
}

// DType reports the element type of t's data, or [Invalid] when Data is not
// one of the supported slice types.
func (t Tensor) DType() DType {
	dt, _ := kind(t.Data)
	return dt
}

// Len returns the number of elements in t's data, or 0 when Data is not
// one of the supported slice types.
func (t Tensor) Len() int {
	_, n := kind(t.Data)
	return n
}

// Clone returns a deep copy of t that shares no memory with it. Data of
// a type the package does not support is shared, not copied.
func (t Tensor) Clone() Tensor {
	return Tensor{Name: t.Name, Shape: slices.Clone(t.Shape), Data: opsOf(t.Data).clone(t.Data)}
}

// CloneAll returns a deep copy of every tensor in ts.
func CloneAll(ts []Tensor) []Tensor {
	if ts == nil {
		return nil
	}
	out := make([]Tensor, len(ts))
	for i, t := range ts {
		out[i] = t.Clone()
	}
	return out
}

// Find returns the tensor named name in ts, and false if there is none.
func Find(ts []Tensor, name string) (Tensor, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// NumElements returns the product of shape, and false when a dimension is
// negative or the product overflows int64. The empty shape of a scalar
// has one element.
func NumElements(shape []int64) (int64, bool) {
	n := uint64(1)
	zero := false
	overflow := false
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d == 0 {
			zero = true
			continue
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			overflow = true
		}
		n = lo
	}
	switch {
	case zero:
		return 0, true
	case overflow:
		return 0, false
	}
	return int64(n), true
}

// FirstNonFinite returns the index of the first NaN or infinite element of
// t, or -1 when every element is finite or t does not hold floating-point
// elements. It covers float32, float64, float16 and bfloat16.
func FirstNonFinite(t Tensor) int {
	if d, ok := t.Data.([]float32); ok { // every answer is checked: float32 without a dynamic call
		return floats[float32]{}.firstNonFinite(d)
	}
	return opsOf(t.Data).firstNonFinite(t.Data)
}
