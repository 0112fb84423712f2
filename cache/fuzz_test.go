package cache_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/tensor"
)

// FuzzKey checks, for pairs of inputs of every element type, that a key
// never changes for the same input however often it is asked for (the
// remembered keys included), and that two inputs share a key exactly when
// their names, types, shapes and data are the same, bit for bit.
func FuzzKey(f *testing.F) {
	f.Add([]byte{0, 'x', 1, 2, 3, 4}, []byte{0, 'x', 1, 2, 3, 4})
	f.Add([]byte{0, 'x', 0, 0, 0, 0x80}, []byte{0, 'x', 0, 0, 0, 0}) // -0 and 0
	f.Add([]byte{1, 'y', 0, 0, 0, 0, 0, 0, 0xf8, 0x7f}, []byte{1, 'y', 1, 0, 0, 0, 0, 0, 0xf8, 0x7f})
	f.Add([]byte{13, 's', 'a', 'b'}, []byte{13, 's', 'a', 'b', 0})
	f.Add([]byte{5, 'b', 1, 0, 1}, []byte{5, 'b', 1, 0, 2})
	f.Fuzz(func(t *testing.T, x, y []byte) {
		a, b := fuzzInput(x), fuzzInput(y)
		ka := cache.Key(a)
		kb := cache.Key(b)
		for range 2 {
			if k := cache.Key(a); k != ka {
				t.Fatalf("the key of %v changed from %s to %s", a, ka, k)
			}
			if k := cache.Key(b); k != kb {
				t.Fatalf("the key of %v changed from %s to %s", b, kb, k)
			}
		}
		if same := bytes.Equal(fuzzBits(a), fuzzBits(b)); same != (ka == kb) {
			t.Fatalf("inputs %v and %v: same %v, but keys %s and %s", a, b, same, ka, kb)
		}
	})
}

// fuzzInput makes one tensor from data: the element type from its first
// byte, the name from its second, the elements from the rest.
func fuzzInput(data []byte) []tensor.Tensor {
	if len(data) < 2 {
		return nil
	}
	kind, name, rest := data[0]%14, string(data[1:2]), data[2:]
	le := binary.LittleEndian
	var d any
	switch kind {
	case 0:
		d = decodeEach(rest, 4, func(b []byte) float32 { return math.Float32frombits(le.Uint32(b)) })
	case 1:
		d = decodeEach(rest, 8, func(b []byte) float64 { return math.Float64frombits(le.Uint64(b)) })
	case 2:
		d = decodeEach(rest, 4, func(b []byte) int32 { return int32(le.Uint32(b)) })
	case 3:
		d = decodeEach(rest, 8, func(b []byte) int64 { return int64(le.Uint64(b)) })
	case 4:
		d = decodeEach(rest, 1, func(b []byte) uint8 { return b[0] })
	case 5:
		d = decodeEach(rest, 1, func(b []byte) bool { return b[0]&1 == 1 })
	case 6:
		d = decodeEach(rest, 1, func(b []byte) int8 { return int8(b[0]) })
	case 7:
		d = decodeEach(rest, 2, func(b []byte) int16 { return int16(le.Uint16(b)) })
	case 8:
		d = decodeEach(rest, 2, le.Uint16)
	case 9:
		d = decodeEach(rest, 4, le.Uint32)
	case 10:
		d = decodeEach(rest, 8, le.Uint64)
	case 11:
		d = decodeEach(rest, 2, func(b []byte) tensor.F16 { return tensor.F16(le.Uint16(b)) })
	case 12:
		d = decodeEach(rest, 2, func(b []byte) tensor.BF16 { return tensor.BF16(le.Uint16(b)) })
	default:
		v := make([]string, 0, 2)
		for s := range bytes.SplitSeq(rest, []byte{0}) {
			v = append(v, string(s))
		}
		d = v
	}
	t := tensor.Tensor{Name: name, Data: d}
	t.Shape = []int64{int64(t.Len())}
	return []tensor.Tensor{t}
}

// decodeEach decodes every whole size-byte element of b with one.
func decodeEach[T any](b []byte, size int, one func([]byte) T) []T {
	out := make([]T, len(b)/size)
	for i := range out {
		out[i] = one(b[size*i:])
	}
	return out
}

// fuzzBits is what identifies an input from fuzzInput: its type, name,
// shape and elements, bit for bit.
func fuzzBits(in []tensor.Tensor) []byte {
	var b bytes.Buffer
	for _, t := range in {
		b.WriteString(t.DType().String())
		b.WriteByte(0)
		b.WriteString(t.Name)
		binary.Write(&b, binary.LittleEndian, t.Shape)
		if s, ok := t.Data.([]string); ok {
			for _, v := range s {
				binary.Write(&b, binary.LittleEndian, int64(len(v)))
				b.WriteString(v)
			}
			continue
		}
		binary.Write(&b, binary.LittleEndian, t.Data)
	}
	return b.Bytes()
}
