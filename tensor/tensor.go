package tensor

import (
	"fmt"
	"slices"
)

// DType is the element type of a [Tensor].
type DType int

// The element types a [Tensor] can hold, with the Go slice type of each.
const (
	Invalid DType = iota // not a supported element type
	Float32              // []float32
	Float64              // []float64
	Int32                // []int32
	Int64                // []int64
	Bool                 // []bool
	String               // []string
)

var dtypeNames = [...]string{"invalid", "float32", "float64", "int32", "int64", "bool", "string"}

// String returns the Go name of the element type, such as "float32".
func (d DType) String() string {
	if d < 0 || int(d) >= len(dtypeNames) {
		return fmt.Sprintf("DType(%d)", int(d))
	}
	return dtypeNames[d]
}

// Element is the set of Go element types a [Tensor] can hold.
type Element interface {
	~float32 | ~float64 | ~int32 | ~int64 | ~bool | ~string
}

// Tensor is a named, shaped array of one element type: an input to or an
// output of a model.
//
// Data holds the elements in row-major order as one of []float32, []float64,
// []int32, []int64, []bool or []string, and its length is the product of
// Shape. Build one with [New]; read one with [Data]. A Tensor is a
// value, but its slices are shared: use [Tensor.Clone] for a copy that
// owns its memory.
type Tensor struct {
	Name  string
	Shape []int64
	Data  any
}

// New returns a tensor named name with the given shape and data. It
// does not copy shape or data.
func New[T Element](name string, shape []int64, data []T) Tensor {
	return Tensor{Name: name, Shape: shape, Data: data}
}

// Data returns t's elements as a []T, and false if t does not hold T.
func Data[T Element](t Tensor) ([]T, bool) {
	d, ok := t.Data.([]T)
	return d, ok
}

// DType reports the element type of t's data, or [Invalid] when Data is not
// one of the supported slice types.
func (t Tensor) DType() DType {
	switch t.Data.(type) {
	case []float32:
		return Float32
	case []float64:
		return Float64
	case []int32:
		return Int32
	case []int64:
		return Int64
	case []bool:
		return Bool
	case []string:
		return String
	}
	return Invalid
}

// Len returns the number of elements in t's data.
func (t Tensor) Len() int {
	switch d := t.Data.(type) {
	case []float32:
		return len(d)
	case []float64:
		return len(d)
	case []int32:
		return len(d)
	case []int64:
		return len(d)
	case []bool:
		return len(d)
	case []string:
		return len(d)
	}
	return 0
}

// Clone returns a deep copy of t that shares no memory with it.
func (t Tensor) Clone() Tensor {
	c := Tensor{Name: t.Name, Shape: slices.Clone(t.Shape)}
	switch d := t.Data.(type) {
	case []float32:
		c.Data = slices.Clone(d)
	case []float64:
		c.Data = slices.Clone(d)
	case []int32:
		c.Data = slices.Clone(d)
	case []int64:
		c.Data = slices.Clone(d)
	case []bool:
		c.Data = slices.Clone(d)
	case []string:
		c.Data = slices.Clone(d)
	default:
		c.Data = t.Data
	}
	return c
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
// negative.
func NumElements(shape []int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		n *= d
	}
	return n, true
}
