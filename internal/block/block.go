// Package block backs a small set of tensors with one allocation: the
// tensor list, the slice headers their Data interfaces point to, their
// shapes and, when they are small, their elements. The models package
// builds a run's result with it and the cache package a copy of a stored
// answer: a typical classifier's answer then costs one allocation
// instead of one per tensor, header and slice.
//
// What a block hands out is the caller's: nothing here writes it again,
// and elements are handed out with their capacity equal to their length,
// so an append never reaches another tensor's room.
package block

import (
	"slices"
	"unsafe"

	"github.com/ladder-ml/ladder/tensor"
)

// Plain is the element types a block can hold in its own room: those
// without pointers, which the collector need not scan.
type Plain interface {
	~float32 | ~float64 | ~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64 | ~bool
}

// block1 and block2 back one or two tensors. They are sized to the
// smallest allocation that holds a typical answer, such as a
// classifier's [1,1] or [1,2] float32 output: every byte allocated per
// request is a byte of cold memory to touch and, later, to collect.
// Shapes and elements that do not fit allocate apart.
type block1 struct {
	tensors [1]tensor.Tensor
	headers [1]sliceHeader
	dims    [2]int64
	elems   [2]uint64
}

type block2 struct {
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

// Room is the room left in a block as its tensors are filled in. Empty
// fields mean no room: the data allocates as usual. Fill tensors in order,
// one Box per tensor.
type Room struct {
	headers []sliceHeader // one per tensor still to fill in
	dims    []int64       // spare room for shapes, appended to
	elems   []uint64      // spare room for elements, taken from the front
}

// New returns a list of n tensors and the room for the rest of them. A
// list of one or two tensors and its room are one allocation.
func New(n int) ([]tensor.Tensor, Room) {
	switch n {
	case 1:
		r := &block1{}
		return r.tensors[:], Room{headers: r.headers[:], dims: r.dims[:0], elems: r.elems[:]}
	case 2:
		r := &block2{}
		return r.tensors[:], Room{headers: r.headers[:], dims: r.dims[:0], elems: r.elems[:]}
	}
	return make([]tensor.Tensor, n), Room{headers: make([]sliceHeader, n)}
}

// Make returns room for n elements of type T: from b's spare room
// when they fit, else a new slice. Its capacity is n, so a caller's
// append never reaches the room of another tensor.
func Make[T Plain](b *Room, n int) []T {
	m := room(b, n*int(unsafe.Sizeof(*new(T))))
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(m))), n)
}

// room returns n bytes, aligned for any element type without pointers:
// from b's spare room when they fit, else newly allocated.
func room(b *Room, n int) []byte {
	words := (n + 7) / 8
	var w []uint64
	if n == 0 || words > len(b.elems) {
		w = make([]uint64, words)
	} else {
		w, b.elems = b.elems[:words:words], b.elems[words:]
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), n)
}

// Clone returns a copy of d, made as Make says.
func Clone[T Plain](b *Room, d []T) []T {
	out := Make[T](b, len(d))
	copy(out, d)
	return out
}

// Box returns d as an any, its slice header kept in b's room for the next
// tensor when b has one instead of in an allocation of its own.
//
// This builds the interface that any(d) builds, type word and pointer to
// a header, with the header stored in the block's allocation. The header
// is written here, once, and never again, as the runtime expects of the
// value an interface points to.
func Box[T any](b *Room, d []T) any {
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

// Shape copies shape into the spare room of b when it fits, and into
// a new slice otherwise.
func Shape(b *Room, shape []int64) []int64 {
	d := b.dims
	if len(d)+len(shape) > cap(d) {
		return slices.Clone(shape)
	}
	start := len(d)
	d = append(d, shape...)
	b.dims = d
	return d[start:len(d):len(d)]
}

// CloneData returns a deep copy of a tensor's data, in b's room when it
// fits: the elements of the fixed-size types, and the header of every
// type. Data of a type the tensor package does not know is cloned by
// [tensor.Tensor.Clone].
//
// The elements are copied as bytes, by [tensor.Bytes], into room for
// them; the copy is given data's own type, which [Box] would have given
// it, by taking the type word of data itself.
func CloneData(b *Room, data any) any {
	t := tensor.Tensor{Data: data}
	raw, plain := tensor.Bytes(t)
	if !plain {
		if s, ok := tensor.Data[string](t); ok {
			return Box(b, slices.Clone(s))
		}
		return t.Clone().Data
	}
	out := room(b, len(raw))
	copy(out, raw)
	var h *sliceHeader
	if len(b.headers) > 0 {
		h = &b.headers[0]
		b.headers = b.headers[1:]
	} else {
		h = new(sliceHeader)
	}
	*h = sliceHeader{data: unsafe.Pointer(unsafe.SliceData(out)), len: t.Len(), cap: t.Len()}
	x := data // the type word of data's slice type
	(*iface)(unsafe.Pointer(&x)).data = unsafe.Pointer(h)
	return x
}
