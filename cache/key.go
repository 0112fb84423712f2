package cache

import (
	"math"

	"github.com/ladder-ml/ladder/models"
)

// keyVersion is the first byte hashed by Key. Bump it whenever the encoding
// changes, so keys of different encodings never meet in a shared cache.
const keyVersion = 1

// 64-bit FNV-1a parameters.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// Key returns the default cache key of a request's input tensors: the 64-bit
// FNV-1a hash of their names, element types, shapes and data, as 16
// lowercase hex digits. Tensor order matters.
//
// The key depends only on the tensors' values, never on the process, the
// machine or its byte order, so it can be shared across a fleet. The hashed
// encoding is a version byte (1), the tensor count, then for each tensor its
// name, its element type ([models.DType] as one byte), its rank and
// dimensions, its element count and its elements. Integers are 8 bytes
// little-endian, except 4-byte int32 and float32 elements; floats are hashed
// by their IEEE 754 bits (so 0 and -0 differ, and so do NaN payloads); bools
// are one byte; strings are their length then their bytes.
//
// Key returns "" if any tensor's Data is not a supported slice type
// ([models.Invalid]); [Store.Put] ignores and [Store.Get] misses the empty
// key, so such inputs are never cached. Key makes exactly one allocation,
// for the returned string, and is safe for concurrent use.
//
// Different inputs can in principle share a key (a 64-bit hash collides
// with probability about n²/2⁶⁵ among n distinct inputs).
func Key(inputs []models.Tensor) string {
	h := hashByte(fnvOffset, keyVersion)
	h = hashUint64(h, uint64(len(inputs)))
	for i := range inputs {
		t := &inputs[i]
		dt := t.DType()
		if dt == models.Invalid {
			return ""
		}
		h = hashString(h, t.Name)
		h = hashByte(h, byte(dt))
		h = hashUint64(h, uint64(len(t.Shape)))
		for _, d := range t.Shape {
			h = hashUint64(h, uint64(d))
		}
		h = hashUint64(h, uint64(t.Len()))
		switch d := t.Data.(type) {
		case []float32:
			for _, v := range d {
				h = hashUint32(h, math.Float32bits(v))
			}
		case []float64:
			for _, v := range d {
				h = hashUint64(h, math.Float64bits(v))
			}
		case []int32:
			for _, v := range d {
				h = hashUint32(h, uint32(v))
			}
		case []int64:
			for _, v := range d {
				h = hashUint64(h, uint64(v))
			}
		case []bool:
			for _, v := range d {
				var b byte
				if v {
					b = 1
				}
				h = hashByte(h, b)
			}
		case []string:
			for _, v := range d {
				h = hashString(h, v)
			}
		}
	}
	return hex64(h)
}

func hashByte(h uint64, b byte) uint64 {
	return (h ^ uint64(b)) * fnvPrime
}

func hashUint32(h uint64, v uint32) uint64 {
	h = (h ^ uint64(v&0xff)) * fnvPrime
	h = (h ^ uint64(v>>8&0xff)) * fnvPrime
	h = (h ^ uint64(v>>16&0xff)) * fnvPrime
	h = (h ^ uint64(v>>24)) * fnvPrime
	return h
}

func hashUint64(h uint64, v uint64) uint64 {
	h = hashUint32(h, uint32(v))
	return hashUint32(h, uint32(v>>32))
}

func hashString(h uint64, s string) uint64 {
	h = hashUint64(h, uint64(len(s)))
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

// hex64 formats h as 16 lowercase hex digits, allocating only the result.
func hex64(h uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = digits[h&0xf]
		h >>= 4
	}
	return string(b[:])
}
