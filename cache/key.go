package cache

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/ladder-ml/ladder/tensor"
)

// keyVersion is the first byte hashed by Key. Bump it whenever the encoding
// changes, so keys of different encodings never meet in a shared cache.
// Version 1 hashed the same encoding with FNV-1a; version 2 uses xxHash64,
// which is several times faster on the request path.
const keyVersion = 2

// Key returns the default cache key of a request's input tensors: the
// 64-bit xxHash (XXH64, seed 0) of their names, element types, shapes and
// data, as 16 lowercase hex digits. Tensor order matters. It returns ""
// when a tensor holds an unsupported data type; [Store] never caches
// under "".
//
// The key depends only on the tensors' values, never on the process, the
// machine or its byte order, so it can be shared across a fleet. The hashed
// encoding is a version byte (2), the tensor count, then for each tensor its
// name, its element type ([tensor.DType] as one byte), its rank and
// dimensions, its element count and its elements. Integers are 8 bytes
// little-endian, except 4-byte int32 and float32 elements; floats are hashed
// by their IEEE 754 bits (so 0 and -0 differ, and so do NaN payloads); bools
// are one byte; strings are their length then their bytes.
func Key(inputs []tensor.Tensor) string {
	var e encoder
	e.h.Reset()
	e.byte(keyVersion)
	e.u64(uint64(len(inputs)))
	for i := range inputs {
		t := &inputs[i]
		dt := t.DType()
		if dt == tensor.Invalid {
			return ""
		}
		e.str(t.Name)
		e.byte(byte(dt))
		e.u64(uint64(len(t.Shape)))
		for _, d := range t.Shape {
			e.u64(uint64(d))
		}
		e.u64(uint64(t.Len()))
		switch d := t.Data.(type) {
		case []float32:
			if littleEndian {
				e.raw(unsafe.Pointer(unsafe.SliceData(d)), 4*len(d))
				continue
			}
			for _, v := range d {
				e.u32(math.Float32bits(v))
			}
		case []float64:
			if littleEndian {
				e.raw(unsafe.Pointer(unsafe.SliceData(d)), 8*len(d))
				continue
			}
			for _, v := range d {
				e.u64(math.Float64bits(v))
			}
		case []int32:
			if littleEndian {
				e.raw(unsafe.Pointer(unsafe.SliceData(d)), 4*len(d))
				continue
			}
			for _, v := range d {
				e.u32(uint32(v))
			}
		case []int64:
			if littleEndian {
				e.raw(unsafe.Pointer(unsafe.SliceData(d)), 8*len(d))
				continue
			}
			for _, v := range d {
				e.u64(uint64(v))
			}
		case []bool:
			for _, v := range d {
				var b byte
				if v {
					b = 1
				}
				e.byte(b)
			}
		case []string:
			for _, v := range d {
				e.str(v)
			}
		default:
			e.elements(t.Data)
		}
	}
	return hex64(e.sum())
}

// elements encodes the element types added after keyVersion 2 was
// defined: 8-bit ones as one byte, 16-bit ones (float16 and bfloat16 by
// their bits) as 2 bytes little-endian and the others as 8 bytes.
func (e *encoder) elements(data any) {
	switch d := data.(type) {
	case []int8:
		for _, v := range d {
			e.byte(byte(v))
		}
	case []uint8:
		for _, v := range d {
			e.byte(v)
		}
	case []int16:
		for _, v := range d {
			e.u16(uint16(v))
		}
	case []uint16:
		for _, v := range d {
			e.u16(v)
		}
	case []tensor.F16:
		for _, v := range d {
			e.u16(uint16(v))
		}
	case []tensor.BF16:
		for _, v := range d {
			e.u16(uint16(v))
		}
	case []uint32:
		for _, v := range d {
			e.u64(uint64(v))
		}
	case []uint64:
		for _, v := range d {
			e.u64(v)
		}
	}
}

func (e *encoder) u16(v uint16) {
	e.room(2)
	binary.LittleEndian.PutUint16(e.buf[e.n:], v)
	e.n += 2
}

// encoder buffers the encoding on the stack and feeds it to xxHash in
// blocks, so hashing allocates nothing.
type encoder struct {
	h   xxhash.Digest
	buf [256]byte
	n   int
}

func (e *encoder) room(k int) {
	if e.n+k > len(e.buf) {
		e.h.Write(e.buf[:e.n])
		e.n = 0
	}
}

func (e *encoder) byte(b byte) {
	e.room(1)
	e.buf[e.n] = b
	e.n++
}

func (e *encoder) u32(v uint32) {
	e.room(4)
	binary.LittleEndian.PutUint32(e.buf[e.n:], v)
	e.n += 4
}

func (e *encoder) u64(v uint64) {
	e.room(8)
	binary.LittleEndian.PutUint64(e.buf[e.n:], v)
	e.n += 8
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	for len(s) > 0 {
		e.room(1)
		k := copy(e.buf[e.n:], s)
		e.n += k
		s = s[k:]
	}
}

// littleEndian reports whether numbers are stored in memory exactly as the
// encoding writes them, so numeric slices can be hashed in place.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// raw hashes n bytes of memory at p as they are: on little-endian hosts
// that is the encoding of a numeric slice, with no per-element work.
func (e *encoder) raw(p unsafe.Pointer, n int) {
	if n == 0 {
		return
	}
	e.h.Write(e.buf[:e.n])
	e.n = 0
	e.h.Write(unsafe.Slice((*byte)(p), n))
}

func (e *encoder) sum() uint64 {
	e.h.Write(e.buf[:e.n])
	return e.h.Sum64()
}

func hex64(h uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = digits[h&0xf]
		h >>= 4
	}
	return string(b[:])
}
