package models

import (
	"slices"
	"unsafe"

	"github.com/ladder-ml/ladder/tensor"
	ort "github.com/yalue/onnxruntime_go"
)

// A run's result is the tensors handed to the caller, and in a typical run
// one allocation backs all of it: the tensor list, the slice headers
// their Data interfaces point to, their shapes and, when they are small,
// their elements. A later run allocates afresh, so nothing a caller keeps
// is ever written again by the package.

// result1 and result2 back the result of a run with one or two outputs.
// They are sized to the smallest allocation that holds a typical result,
// such as a classifier's [1,1] or [1,2] float32 output: every byte
// allocated per run is a byte of cold memory to touch and, later, to
// collect. Shapes and elements that do not fit allocate apart.
type result1 struct {
	tensors [1]tensor.Tensor
	headers [1]sliceHeader
	dims    [2]int64
	elems   [2]uint64
}

type result2 struct {
	tensors [2]tensor.Tensor
	headers [2]sliceHeader
	dims    [4]int64
	elems   [2]uint64
}

// sliceHeader has the layout of every slice type. It holds the header an
// output's Data interface points to, which any(d) would allocate on its
// own.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// outBuf is the room left for a run's result as its outputs are read.
// Empty fields mean no room: the data allocates as usual.
type outBuf struct {
	headers []sliceHeader // one per output still to read
	dims    []int64       // spare room for shapes, appended to
	elems   []uint64      // spare room for elements, taken from the front
}

// newResult returns the tensor list for n outputs and the room for the
// rest of the result.
func newResult(n int) ([]tensor.Tensor, outBuf) {
	switch n {
	case 1:
		r := &result1{}
		return r.tensors[:], outBuf{headers: r.headers[:], dims: r.dims[:0], elems: r.elems[:]}
	case 2:
		r := &result2{}
		return r.tensors[:], outBuf{headers: r.headers[:], dims: r.dims[:0], elems: r.elems[:]}
	}
	return make([]tensor.Tensor, n), outBuf{headers: make([]sliceHeader, n)}
}

// makeElems returns room for n elements of type T: from b's spare room
// when they fit, else a new slice. Its capacity is n, so a caller's
// append never reaches the room of another output.
func makeElems[T ort.TensorData](b *outBuf, n int) []T {
	words := (n*int(unsafe.Sizeof(*new(T))) + 7) / 8
	if n == 0 || words > len(b.elems) {
		return make([]T, n)
	}
	p := unsafe.Pointer(&b.elems[0])
	b.elems = b.elems[words:]
	return unsafe.Slice((*T)(p), n)
}

// cloneElems returns a copy of d, made as makeElems says.
func cloneElems[T ort.TensorData](b *outBuf, d []T) []T {
	out := makeElems[T](b, len(d))
	copy(out, d)
	return out
}

// box returns d as an any, its slice header kept in b's room for the next
// output when b has one instead of in an allocation of its own.
//
// This builds the interface that any(d) builds, type word and pointer to
// a header, with the header stored in the result's allocation. The header
// is written here, once, and never again, as the runtime expects of the
// value an interface points to.
func box[T any](b *outBuf, d []T) any {
	if len(b.headers) == 0 {
		return d
	}
	h := (*[]T)(unsafe.Pointer(&b.headers[0]))
	b.headers = b.headers[1:]
	*h = d
	x := any([]T(nil)) // the type word of []T; a nil slice allocates nothing
	(*iface)(unsafe.Pointer(&x)).data = unsafe.Pointer(h)
	return x
}

// iface is the layout of an any.
type iface struct {
	typ, data unsafe.Pointer
}

// cloneShape copies shape into the spare room of b when it fits, and into
// a new slice otherwise.
func cloneShape(b *outBuf, shape []int64) []int64 {
	d := b.dims
	if len(d)+len(shape) > cap(d) {
		return slices.Clone(shape)
	}
	start := len(d)
	d = append(d, shape...)
	b.dims = d
	return d[start:len(d):len(d)]
}
