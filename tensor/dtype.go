package tensor

import (
	"fmt"
	"math"
	"slices"
	"unsafe"
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

// dtypes is what the package knows of each element type: its name, and
// the operations on its data. An element type is added here, with its
// constant above and its case in [kind]; every per-type operation of the
// package, and of the packages built on it, reads this table.
var dtypes = [...]struct {
	name string
	ops  elements
}{
	Invalid:  {"invalid", none{}},
	Float32:  {"float32", floats[float32]{}},
	Float64:  {"float64", floats[float64]{}},
	Int32:    {"int32", ints[int32]{}},
	Int64:    {"int64", ints[int64]{}},
	Bool:     {"bool", bools{}},
	String:   {"string", strs{}},
	Int8:     {"int8", ints[int8]{}},
	Uint8:    {"uint8", uints[uint8]{}},
	Int16:    {"int16", ints[int16]{}},
	Uint16:   {"uint16", uints[uint16]{}},
	Uint32:   {"uint32", uints[uint32]{}},
	Uint64:   {"uint64", uints[uint64]{}},
	Float16:  {"float16", halfs[F16]{from: NewF16}},
	BFloat16: {"bfloat16", halfs[BF16]{from: NewBF16}},
}

// kind returns the element type and the number of elements of data, with
// the package's one type switch over the element types.
func kind(data any) (DType, int) {
	// float32, nearly every model's element type, is one comparison of
	// type words, where the switch's search takes several: the request
	// path asks a few times per answer.
	if d, ok := data.([]float32); ok {
		return Float32, len(d)
	}
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

// ops returns the operations on the elements of type d; those of
// [Invalid] for a value that is no DType.
func (d DType) ops() elements {
	if d < 0 || int(d) >= len(dtypes) {
		return none{}
	}
	return dtypes[d].ops
}

// opsOf returns the operations on data's elements.
func opsOf(data any) elements {
	dt, _ := kind(data)
	return dtypes[dt].ops
}

// String returns the name of the element type, such as "float32" or
// "bfloat16".
func (d DType) String() string {
	if d < 0 || int(d) >= len(dtypes) {
		return fmt.Sprintf("DType(%d)", int(d))
	}
	return dtypes[d].name
}

// Size returns the size in bytes of one element, or 0 for [String] and
// [Invalid].
func (d DType) Size() int { return d.ops().size() }

// Kind returns the family of the element type: what [Float64At],
// [Int64At] and [Uint64At] read its elements as.
func (d DType) Kind() Kind { return d.ops().kind() }

// Kind is the family of an element type: the Go type that each of its
// elements converts to without loss.
type Kind uint8

// The kinds of element types.
const (
	KindInvalid Kind = iota // [Invalid]
	KindFloat               // float32, float64, float16, bfloat16: float64, read with [Float64At]
	KindInt                 // int8 to int64: int64, read with [Int64At]
	KindUint                // uint8 to uint64: uint64, read with [Uint64At]
	KindBool                // bool: read with [Data]
	KindString              // string: read with [Data]
)

var kindNames = [...]string{"invalid", "float", "int", "uint", "bool", "string"}

// String returns the name of the kind, such as "float" or "uint".
func (k Kind) String() string {
	if int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// Make returns data for n elements of type dt, each the zero value: a
// []float32 for [Float32], and so on. It returns nil for [Invalid], and
// panics when n is negative.
func Make(dt DType, n int) any { return dt.ops().make(n) }

// SameData reports whether a and b hold data of the same element type
// with the same elements, bit for bit (so a NaN equals the same NaN);
// shapes and names are not compared. Data of no element type is never
// the same.
func SameData(a, b Tensor) bool {
	dt, _ := kind(a.Data)
	return dtypes[dt].ops.same(a.Data, b.Data)
}

// Bytes returns the memory of t's elements as bytes, without copying: in
// the machine's byte order, float16 and bfloat16 by their bits, bools
// as one byte of 0 or 1. It returns false when t holds strings or data
// of no supported type. The bytes alias the data: writing them writes
// t's elements, and a bool must stay 0 or 1.
func Bytes(t Tensor) ([]byte, bool) { return opsOf(t.Data).bytes(t.Data) }

// Float64s returns t's numbers as float64s, in a new slice: floats
// exactly (float16 and bfloat16 by their value), integers rounded to the
// nearest float64 when beyond 2^53. It returns false when t holds bools,
// strings or data of no supported type.
func Float64s(t Tensor) ([]float64, bool) { return opsOf(t.Data).float64s(t.Data) }

// Float64At returns element i of t, which holds floats ([KindFloat]), as
// a float64, exactly. It panics when t holds another kind or i is out
// of range.
func Float64At(t Tensor, i int) float64 { return opsOf(t.Data).float64At(t.Data, i) }

// Int64At returns element i of t, which holds signed integers
// ([KindInt]), as an int64. It panics when t holds another kind or i is
// out of range.
func Int64At(t Tensor, i int) int64 { return opsOf(t.Data).int64At(t.Data, i) }

// Uint64At returns element i of t, which holds unsigned integers
// ([KindUint]), as a uint64. It panics when t holds another kind or i is
// out of range.
func Uint64At(t Tensor, i int) uint64 { return opsOf(t.Data).uint64At(t.Data, i) }

// SetFloat64At sets element i of t, which holds floats ([KindFloat]), to
// v rounded to the nearest value of the element type, ties to even
// (float16 and bfloat16 by way of float32); a value beyond the type's
// range becomes ±Inf. It panics when t holds another kind or i is out of
// range.
func SetFloat64At(t Tensor, i int, v float64) { opsOf(t.Data).setFloat64(t.Data, i, v) }

// SetInt64At sets element i of t, which holds signed integers
// ([KindInt]), to v, truncated to the element's size as a Go conversion
// truncates it. It panics when t holds another kind or i is out of range.
func SetInt64At(t Tensor, i int, v int64) { opsOf(t.Data).setInt64(t.Data, i, v) }

// SetUint64At sets element i of t, which holds unsigned integers
// ([KindUint]), to v, truncated to the element's size as a Go conversion
// truncates it. It panics when t holds another kind or i is out of range.
func SetUint64At(t Tensor, i int, v uint64) { opsOf(t.Data).setUint64(t.Data, i, v) }

// elements is what the package does with data of one element type, held
// in an any. Each method may assume that the data is of its type, as
// [kind] reported it; data of another kind reaches only the methods of
// [none], which report nothing or panic.
type elements interface {
	kind() Kind
	size() int
	clone(data any) any
	make(n int) any
	bytes(data any) ([]byte, bool)
	same(a, b any) bool // b is of the same type, with the same elements bit for bit
	float64s(data any) ([]float64, bool)
	firstNonFinite(data any) int // -1 when none is, or the data holds no floats
	float64At(data any, i int) float64
	int64At(data any, i int) int64
	uint64At(data any, i int) uint64
	setFloat64(data any, i int, v float64)
	setInt64(data any, i int, v int64)
	setUint64(data any, i int, v uint64)
}

// none is the operations of [Invalid], and of the methods a kind lacks:
// data it does not know is shared rather than copied, has no bytes and
// no numbers, and cannot be read or written by index.
type none struct{}

func (none) kind() Kind                            { return KindInvalid }
func (none) size() int                             { return 0 }
func (none) clone(data any) any                    { return data }
func (none) make(int) any                          { return nil }
func (none) bytes(any) ([]byte, bool)              { return nil, false }
func (none) same(any, any) bool                    { return false }
func (none) float64s(any) ([]float64, bool)        { return nil, false }
func (none) firstNonFinite(any) int                { return -1 }
func (none) float64At(data any, _ int) float64     { panic(kindPanic("Float64At", data)) }
func (none) int64At(data any, _ int) int64         { panic(kindPanic("Int64At", data)) }
func (none) uint64At(data any, _ int) uint64       { panic(kindPanic("Uint64At", data)) }
func (none) setFloat64(data any, _ int, _ float64) { panic(kindPanic("SetFloat64At", data)) }
func (none) setInt64(data any, _ int, _ int64)     { panic(kindPanic("SetInt64At", data)) }
func (none) setUint64(data any, _ int, _ uint64)   { panic(kindPanic("SetUint64At", data)) }

func kindPanic(fn string, data any) string {
	dt, _ := kind(data)
	if dt == Invalid {
		return fmt.Sprintf("tensor: %s of %T data", fn, data)
	}
	return fmt.Sprintf("tensor: %s of %s data, of kind %s", fn, dt, dt.Kind())
}

// slice is what every element type T shares: its data is a []T.
type slice[T Element] struct{ none }

func (slice[T]) clone(data any) any { return slices.Clone(data.([]T)) }
func (slice[T]) make(n int) any     { return make([]T, n) }

// fixed is the element types of a fixed size, without pointers.
type fixed interface {
	~float32 | ~float64 | ~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64 | ~bool
}

// plain is an element type of a fixed size, whose data is plain memory.
type plain[T fixed] struct{ slice[T] }

func (plain[T]) size() int { return int(unsafe.Sizeof(*new(T))) }

func (plain[T]) bytes(data any) ([]byte, bool) {
	d := data.([]T)
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), len(d)*int(unsafe.Sizeof(*new(T)))), true
}

func (plain[T]) same(a, b any) bool {
	y, ok := b.([]T)
	if !ok {
		return false
	}
	x := a.([]T)
	if len(x) != len(y) {
		return false
	}
	n := len(x) * int(unsafe.Sizeof(*new(T)))
	return string(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(x))), n)) ==
		string(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(y))), n))
}

type number interface {
	~float32 | ~float64 | ~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64
}

func toFloat64s[T number](data any) ([]float64, bool) {
	d := data.([]T)
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = float64(v)
	}
	return out, true
}

// floats is float32 or float64.
type floats[T float32 | float64] struct{ plain[T] }

func (floats[T]) kind() Kind                            { return KindFloat }
func (floats[T]) float64s(data any) ([]float64, bool)   { return toFloat64s[T](data) }
func (floats[T]) float64At(data any, i int) float64     { return float64(data.([]T)[i]) }
func (floats[T]) setFloat64(data any, i int, v float64) { data.([]T)[i] = T(v) }

func (floats[T]) firstNonFinite(data any) int {
	for i, v := range data.([]T) {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return i
		}
	}
	return -1
}

// halfs is float16 or bfloat16, stored as their bits; from rounds a
// float32 to one.
type halfs[T half] struct {
	plain[T]
	from func(float32) T
}

// half is the 16-bit float types.
type half interface {
	F16 | BF16
	Float32() float32
	nonFinite() bool
}

func (halfs[T]) kind() Kind { return KindFloat }

func (halfs[T]) float64s(data any) ([]float64, bool) {
	d := data.([]T)
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = float64(v.Float32())
	}
	return out, true
}

func (halfs[T]) float64At(data any, i int) float64 { return float64(data.([]T)[i].Float32()) }

func (h halfs[T]) setFloat64(data any, i int, v float64) { data.([]T)[i] = h.from(float32(v)) }

func (halfs[T]) firstNonFinite(data any) int {
	for i, v := range data.([]T) {
		if v.nonFinite() {
			return i
		}
	}
	return -1
}

// ints is a signed integer type.
type ints[T int8 | int16 | int32 | int64] struct{ plain[T] }

func (ints[T]) kind() Kind                          { return KindInt }
func (ints[T]) float64s(data any) ([]float64, bool) { return toFloat64s[T](data) }
func (ints[T]) int64At(data any, i int) int64       { return int64(data.([]T)[i]) }
func (ints[T]) setInt64(data any, i int, v int64)   { data.([]T)[i] = T(v) }

// uints is an unsigned integer type.
type uints[T uint8 | uint16 | uint32 | uint64] struct{ plain[T] }

func (uints[T]) kind() Kind                          { return KindUint }
func (uints[T]) float64s(data any) ([]float64, bool) { return toFloat64s[T](data) }
func (uints[T]) uint64At(data any, i int) uint64     { return uint64(data.([]T)[i]) }
func (uints[T]) setUint64(data any, i int, v uint64) { data.([]T)[i] = T(v) }

// bools is bool: plain memory, but no numbers.
type bools struct{ plain[bool] }

func (bools) kind() Kind { return KindBool }

// strs is string: neither plain memory nor numbers.
type strs struct{ slice[string] }

func (strs) kind() Kind { return KindString }

func (strs) same(a, b any) bool {
	y, ok := b.([]string)
	return ok && slices.Equal(a.([]string), y)
}
