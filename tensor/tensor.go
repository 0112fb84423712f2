package tensor

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// DType is the element type of a [Tensor].
type DType int

// The element types a [Tensor] can hold, with the Go slice type of each.
// The values are stable: new types are added at the end.
const (
	Invalid  DType = iota // not a supported element type
	Float32               // []float32
	Float64               // []float64
	Int32                 // []int32
	Int64                 // []int64
	Bool                  // []bool
	String                // []string
	Int8                  // []int8
	Uint8                 // []uint8
	Int16                 // []int16
	Uint16                // []uint16
	Uint32                // []uint32
	Uint64                // []uint64
	Float16               // [][F16], IEEE 754 half precision
	BFloat16              // [][BF16], bfloat16
)

var dtypeNames = [...]string{"invalid", "float32", "float64", "int32", "int64", "bool", "string",
	"int8", "uint8", "int16", "uint16", "uint32", "uint64", "float16", "bfloat16"}

// String returns the name of the element type, such as "float32" or
// "bfloat16".
func (d DType) String() string {
	if d < 0 || int(d) >= len(dtypeNames) {
		return fmt.Sprintf("DType(%d)", int(d))
	}
	return dtypeNames[d]
}

// Size returns the size in bytes of one element, or 0 for [String] and
// [Invalid].
func (d DType) Size() int {
	switch d {
	case Bool, Int8, Uint8:
		return 1
	case Int16, Uint16, Float16, BFloat16:
		return 2
	case Float32, Int32, Uint32:
		return 4
	case Float64, Int64, Uint64:
		return 8
	}
	return 0
}

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
	case []int8:
		return Int8
	case []uint8:
		return Uint8
	case []int16:
		return Int16
	case []uint16:
		return Uint16
	case []uint32:
		return Uint32
	case []uint64:
		return Uint64
	case []F16:
		return Float16
	case []BF16:
		return BFloat16
	}
	return Invalid
}

// kind returns the element type and the number of elements of data, as
// [Tensor.DType] and [Tensor.Len] do, with one type switch.
func kind(data any) (DType, int) {
	switch d := data.(type) {
	case []float32:
		return Float32, len(d)
	case []float64:
		return Float64, len(d)
	case []int32:
		return Int32, len(d)
	case []int64:
		return Int64, len(d)
	case []bool:
		return Bool, len(d)
	case []string:
		return String, len(d)
	case []int8:
		return Int8, len(d)
	case []uint8:
		return Uint8, len(d)
	case []int16:
		return Int16, len(d)
	case []uint16:
		return Uint16, len(d)
	case []uint32:
		return Uint32, len(d)
	case []uint64:
		return Uint64, len(d)
	case []F16:
		return Float16, len(d)
	case []BF16:
		return BFloat16, len(d)
	}
	return Invalid, 0
}

// Len returns the number of elements in t's data, or 0 when Data is not
// one of the supported slice types.
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
	case []int8:
		return len(d)
	case []uint8:
		return len(d)
	case []int16:
		return len(d)
	case []uint16:
		return len(d)
	case []uint32:
		return len(d)
	case []uint64:
		return len(d)
	case []F16:
		return len(d)
	case []BF16:
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
	case []int8:
		c.Data = slices.Clone(d)
	case []uint8:
		c.Data = slices.Clone(d)
	case []int16:
		c.Data = slices.Clone(d)
	case []uint16:
		c.Data = slices.Clone(d)
	case []uint32:
		c.Data = slices.Clone(d)
	case []uint64:
		c.Data = slices.Clone(d)
	case []F16:
		c.Data = slices.Clone(d)
	case []BF16:
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
	switch d := t.Data.(type) {
	case []float32:
		for i, v := range d {
			if v != v || v > math.MaxFloat32 || v < -math.MaxFloat32 {
				return i
			}
		}
	case []float64:
		for i, v := range d {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return i
			}
		}
	case []F16:
		for i, v := range d {
			if v&0x7c00 == 0x7c00 {
				return i
			}
		}
	case []BF16:
		for i, v := range d {
			if v&0x7f80 == 0x7f80 {
				return i
			}
		}
	}
	return -1
}
