package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/ladder-ml/ladder/tensor"
)

// keyVersion is the first byte hashed by Key. Bump it whenever the encoding
// changes, so keys of different encodings never meet in a shared cache.
// Version 1 hashed the encoding with FNV-1a and version 2 with xxHash64:
// 64 bits, few enough that a birthday search on a laptop found two
// realistic inputs with the same key, so one was served the other's
// answer. Version 3 uses SHA-256.
const keyVersion = 3

// Key returns the default cache key of a request's input tensors: the
// first 128 bits of the SHA-256 of their names, element types, shapes and
// data, as 32 lowercase hex digits. At 128 bits, two different inputs
// sharing a key (and one being served the other's cached answer) is
// practically impossible, in one process or across a fleet, even for
// inputs chosen to collide. Tensor order matters. It returns "" when a
// tensor holds an unsupported data type; [Store] never caches under "".
//
// The key depends only on the tensors' values, never on the process, the
// machine or its byte order, so it can be shared across a fleet. The hashed
// encoding is a version byte (3), the tensor count, then for each tensor its
// name, its element type ([tensor.DType] as one byte), its rank and
// dimensions, its element count and its elements. Counts, dimensions and
// lengths are 8 bytes little-endian. Elements are little-endian at their
// own size (one byte for int8, uint8 and bools), except uint32 elements,
// which take 8 bytes; floats are hashed by their IEEE 754 bits (so 0 and
// -0 differ, and so do NaN payloads), float16 and bfloat16 by their 16;
// strings are their length then their bytes.
//
// Key remembers the keys of recently repeated inputs of up to 1 KiB
// encoded, about 1,000 of them, so keying an input again costs about
// 50ns and no allocation instead of a SHA-256 (about 250ns for 30
// float32 features). The remembered key is used only for a byte-for-byte
// equal encoding.
func Key(inputs []tensor.Tensor) string {
	e := newEncoder()
	e.byte(keyVersion)
	e.u64(uint64(len(inputs)))
	for i := range inputs {
		t := &inputs[i]
		dt := t.DType()
		if dt == tensor.Invalid {
			e.release()
			return ""
		}
		e.str(t.Name)
		e.byte(byte(dt))
		e.u64(uint64(len(t.Shape)))
		for _, d := range t.Shape {
			e.u64(uint64(d))
		}
		e.u64(uint64(t.Len()))
		b, plain := tensor.Bytes(*t)
		if plain && littleEndian && dt != tensor.Uint32 {
			*e.b = append(*e.b, b...) // the elements' memory is their encoding
			continue
		}
		e.elements(*t, dt, b)
	}
	return e.key()
}

// elements encodes the elements of t, of type dt, whose memory is b
// unless they are strings: strings by length and bytes, uint32 as 8
// bytes, and every other type little-endian at its own size.
func (e encoder) elements(t tensor.Tensor, dt tensor.DType, b []byte) {
	switch dt {
	case tensor.String:
		d, _ := tensor.Data[string](t)
		for _, v := range d {
			e.str(v)
		}
	case tensor.Uint32:
		d, _ := tensor.Data[uint32](t)
		for _, v := range d {
			e.u64(uint64(v))
		}
	default: // on a big-endian host
		size := dt.Size()
		for i := 0; i < len(b); i += size {
			for j := i + size - 1; j >= i; j-- {
				e.byte(b[j])
			}
		}
	}
}

// encoder writes the encoding into a pooled buffer, hashed in one call at
// the end. Hashing a request allocates nothing but the key itself.
type encoder struct {
	b *[]byte
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func newEncoder() encoder {
	b := buffers.Get().(*[]byte)
	*b = (*b)[:0]
	return encoder{b}
}

func (e encoder) byte(b byte) { *e.b = append(*e.b, b) }

func (e encoder) u64(v uint64) { *e.b = binary.LittleEndian.AppendUint64(*e.b, v) }

func (e encoder) str(s string) {
	e.u64(uint64(len(s)))
	*e.b = append(*e.b, s...)
}

// littleEndian reports whether numbers are stored in memory exactly as the
// encoding writes them, so their memory can be hashed as it is.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// key returns the first 128 bits of the encoding's SHA-256, in hex, and
// gives the buffer back. The key of an input seen recently comes from
// [known] without hashing it again.
func (e encoder) key() string {
	enc := *e.b
	h := maphash.Bytes(memo.seed, enc)
	slot := h % memoSize
	if k := memo.known[slot].Load(); k != nil && bytes.Equal(k.enc, enc) {
		e.release()
		return k.key
	}
	sum := sha256.Sum256(enc)
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	key := string(out[:])
	if len(enc) <= memoMaxEncoding && memo.seen[slot].Swap(h) == h {
		// Seen twice: worth remembering.
		memo.known[slot].Store(&known{enc: bytes.Clone(enc), key: key})
	}
	e.release()
	return key
}

// memo remembers the keys of recently repeated inputs, so that a stream
// of requests for the same few inputs (a cache hit is always a repeat)
// hashes each of them with SHA-256 once, not on every request. An input
// is remembered the second time it is seen in a row of its slot, so a
// stream of inputs that never repeat costs one atomic swap each and no
// memory. A remembered key is used only for the exact same encoding,
// compared byte for byte: the memo never changes which key an input has.
// It holds at most memoSize encodings of at most memoMaxEncoding bytes,
// about 1 MiB.
var memo struct {
	seed  maphash.Seed
	seen  [memoSize]atomic.Uint64 // per slot, the hash of the last input keyed
	known [memoSize]atomic.Pointer[known]
}

func init() { memo.seed = maphash.MakeSeed() }

// known is a remembered key: an encoding and its key.
type known struct {
	enc []byte
	key string
}

const (
	memoSize        = 1024
	memoMaxEncoding = 1024 // bytes: about 250 float32 features
)

// release gives the buffer back to the pool, unless it grew large.
func (e encoder) release() {
	if cap(*e.b) <= 64<<10 {
		buffers.Put(e.b)
	}
}
