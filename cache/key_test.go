package cache_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/tensor"
)

// row returns a primary-model input: one row of 30 float32 features.
func row() []tensor.Tensor {
	f := make([]float32, 30)
	for i := range f {
		f[i] = float32(i) * 1.5
	}
	return []tensor.Tensor{tensor.New("features", []int64{1, 30}, f)}
}

// mixed returns inputs of every element type.
func mixed() []tensor.Tensor {
	return []tensor.Tensor{
		tensor.New("f32", []int64{2}, []float32{1, 2}),
		tensor.New("f64", []int64{1}, []float64{3}),
		tensor.New("i32", []int64{1}, []int32{4}),
		tensor.New("i64", []int64{1}, []int64{5}),
		tensor.New("flag", []int64{2}, []bool{true, false}),
		tensor.New("text", []int64{2}, []string{"ab", "c"}),
	}
}

func TestKeyGolden(t *testing.T) {
	// These values pin the encoding: keys are shared across processes and
	// machines, so changing them breaks every shared cache. If the encoding
	// must change, bump keyVersion and update the values. The first is
	// checked against SHA-256 of the documented encoding written out by
	// hand, in TestKeyEncodingByHand.
	tests := []struct {
		name   string
		inputs []tensor.Tensor
		want   string
	}{
		{"no inputs", nil, "dc4c8669df128318c5790c414c870cc7"},
		{"primary row", row(), "29030698d1bc4c1d14da7dc8fe70399d"},
		{"every dtype", mixed(), "be1785d124f8e004d14664b38d5e438b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cache.Key(tt.inputs); got != tt.want {
				t.Errorf("Key = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKeyGoldenEveryElementType(t *testing.T) {
	// One tensor of each element type, with values whose bytes all
	// differ, pins every byte of each element's encoding: sizes, byte
	// order, bools as one byte, uint32 as 8 bytes, strings by length.
	tests := []struct {
		name string
		t    tensor.Tensor
		want string
	}{
		{"float32", tensor.New("x", []int64{2}, []float32{1.5, float32(math.Inf(-1))}), "b9c8567c8dc0c2268fa528572d301ac0"},
		{"float64", tensor.New("x", []int64{2}, []float64{math.Pi, math.Copysign(0, -1)}), "56d95c736f5ee4fbf75e577f538200fd"},
		{"int32", tensor.New("x", []int64{2}, []int32{-2, 0x01020304}), "3eb8e9ce4d660aa7923313ab050b8460"},
		{"int64", tensor.New("x", []int64{2}, []int64{-2, 0x0102030405060708}), "598302a1a1d669d59b59df83b9420d61"},
		{"bool", tensor.New("x", []int64{2}, []bool{true, false}), "bd977125cbc0ee6cb26f02be85c0d076"},
		{"string", tensor.New("x", []int64{2}, []string{"ab", ""}), "93b719f5220ad027a3da6b75239acebe"},
		{"int8", tensor.New("x", []int64{2}, []int8{-2, 0x7f}), "967ce5b67f67bff9dc89ddfcb186182b"},
		{"uint8", tensor.New("x", []int64{2}, []uint8{0xfe, 1}), "1a8cc77d706ec7b7cd4d8fab09332df6"},
		{"int16", tensor.New("x", []int64{2}, []int16{-2, 0x0102}), "c71a1fc846789e611a608afbb4240e76"},
		{"uint16", tensor.New("x", []int64{2}, []uint16{0xfffe, 0x0102}), "905f3fa0901c22441f7a77a660e9ea8a"},
		{"uint32", tensor.New("x", []int64{2}, []uint32{0xfffffffe, 0x01020304}), "f6e94f595487c6e0fc7ebc4a697410e5"},
		{"uint64", tensor.New("x", []int64{2}, []uint64{math.MaxUint64 - 1, 0x0102030405060708}), "a392c5e57229eddb83b71945b1f43761"},
		{"float16", tensor.New("x", []int64{2}, []tensor.F16{tensor.NewF16(-1.5), 0x7e01}), "cdf3a388957bd4e84a930379118f10e4"},
		{"bfloat16", tensor.New("x", []int64{1, 2}, []tensor.BF16{tensor.NewBF16(3.140625), 0x7fc1}), "70e7888fd8e4a355579e9381613a125d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.t.DType().String() != tt.name {
				t.Fatalf("case %s holds %s", tt.name, tt.t.DType())
			}
			if got := cache.Key([]tensor.Tensor{tt.t}); got != tt.want {
				t.Errorf("Key = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKeyDeterministic(t *testing.T) {
	for name, build := range map[string]func() []tensor.Tensor{"row": row, "mixed": mixed} {
		a, b := cache.Key(build()), cache.Key(build())
		if a != b {
			t.Errorf("%s: Key of equal inputs differs: %q and %q", name, a, b)
		}
		if len(a) != 32 {
			t.Errorf("%s: Key = %q, want 32 hex digits", name, a)
		}
	}
}

func TestKeyChangesWithInput(t *testing.T) {
	base := cache.Key(mixed())
	tests := []struct {
		name   string
		change func(ts []tensor.Tensor) []tensor.Tensor
	}{
		{"tensor name", func(ts []tensor.Tensor) []tensor.Tensor { ts[0].Name = "g32"; return ts }},
		{"shape", func(ts []tensor.Tensor) []tensor.Tensor { ts[0].Shape = []int64{1, 2}; return ts }},
		{"shape dimension", func(ts []tensor.Tensor) []tensor.Tensor { ts[1].Shape[0] = 2; return ts }},
		{"dtype, same bits", func(ts []tensor.Tensor) []tensor.Tensor {
			ts[0].Data = []int32{int32(math.Float32bits(1)), int32(math.Float32bits(2))}
			return ts
		}},
		{"float32 element", func(ts []tensor.Tensor) []tensor.Tensor { ts[0].Data.([]float32)[1] = 2.0000002; return ts }},
		{"float64 element", func(ts []tensor.Tensor) []tensor.Tensor { ts[1].Data.([]float64)[0] = 3.0000001; return ts }},
		{"int32 element", func(ts []tensor.Tensor) []tensor.Tensor { ts[2].Data.([]int32)[0] = -4; return ts }},
		{"int64 element", func(ts []tensor.Tensor) []tensor.Tensor { ts[3].Data.([]int64)[0] = 5 << 32; return ts }},
		{"bool element", func(ts []tensor.Tensor) []tensor.Tensor { ts[4].Data.([]bool)[1] = true; return ts }},
		{"string element", func(ts []tensor.Tensor) []tensor.Tensor { ts[5].Data.([]string)[1] = "d"; return ts }},
		{"string boundary", func(ts []tensor.Tensor) []tensor.Tensor { ts[5].Data = []string{"a", "bc"}; return ts }},
		{"element count", func(ts []tensor.Tensor) []tensor.Tensor { ts[0].Data = []float32{1, 2, 0}; return ts }},
		{"tensor order", func(ts []tensor.Tensor) []tensor.Tensor { ts[0], ts[1] = ts[1], ts[0]; return ts }},
		{"tensor dropped", func(ts []tensor.Tensor) []tensor.Tensor { return ts[:len(ts)-1] }},
		{"empty tensor added", func(ts []tensor.Tensor) []tensor.Tensor {
			return append(ts, tensor.New("", nil, []float32{}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cache.Key(tt.change(mixed())); got == base {
				t.Errorf("Key unchanged (%q) after changing the %s", got, tt.name)
			}
		})
	}
}

func TestKeyHashesFloatBits(t *testing.T) {
	f := func(v float32) string {
		return cache.Key([]tensor.Tensor{tensor.New("x", []int64{1}, []float32{v})})
	}
	negZero := float32(math.Copysign(0, -1))
	if f(0) == f(negZero) {
		t.Error("0 and -0 share a key, want them hashed by their bits")
	}
	nan := float32(math.NaN())
	if a, b := f(nan), f(nan); a != b {
		t.Error("the same NaN gives different keys")
	}
}

func TestKeyNameBoundaries(t *testing.T) {
	// Names are length-prefixed, so moving bytes between neighbours changes
	// the key.
	a := []tensor.Tensor{
		tensor.New("ab", nil, []int64{}),
		tensor.New("c", nil, []int64{}),
	}
	b := []tensor.Tensor{
		tensor.New("a", nil, []int64{}),
		tensor.New("bc", nil, []int64{}),
	}
	if cache.Key(a) == cache.Key(b) {
		t.Errorf("names ab,c and a,bc share key %q", cache.Key(a))
	}
}

func TestKeyUnsupportedData(t *testing.T) {
	tests := []struct {
		name string
		data any
	}{
		{"nil", nil},
		{"complex64 slice", []complex64{1}},
		{"scalar", float32(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append(row(), tensor.Tensor{Name: "bad", Shape: []int64{1}, Data: tt.data})
			if got := cache.Key(in); got != "" {
				t.Errorf("Key = %q, want \"\" for unsupported data", got)
			}
		})
	}
}

func TestKeyNewElementTypes(t *testing.T) {
	seen := map[string]string{}
	for _, d := range []any{
		[]int8{1}, []int8{2}, []uint8{1}, []uint8{2}, []int16{1}, []int16{2}, []uint16{1}, []uint16{2},
		[]uint32{1}, []uint32{2}, []uint64{1}, []uint64{2},
		[]tensor.F16{tensor.NewF16(1)}, []tensor.F16{tensor.NewF16(2)},
		[]tensor.BF16{tensor.NewBF16(1)}, []tensor.BF16{tensor.NewBF16(2)},
	} {
		k := cache.Key([]tensor.Tensor{{Name: "x", Shape: []int64{1}, Data: d}})
		desc := fmt.Sprintf("%T%v", d, d)
		if k == "" || seen[k] != "" {
			t.Errorf("%s: key %q (also %s)", desc, k, seen[k])
		}
		seen[k] = desc
	}
}

func TestKeyAllocatesOnlyANewKey(t *testing.T) {
	// A repeated input's key is remembered: no allocation, no hashing.
	in := row()
	if n := testing.AllocsPerRun(100, func() { cache.Key(in) }); n != 0 {
		t.Errorf("Key of a repeated input allocates %v times per call, want 0", n)
	}
	// An input never seen before allocates its key and nothing else.
	f := in[0].Data.([]float32)
	if n := testing.AllocsPerRun(100, func() { f[0] = float32(fresh.Add(1)); cache.Key(in) }); n != 1 {
		t.Errorf("Key of a new input allocates %v times per call, want 1", n)
	}
}

// fresh numbers inputs never keyed before in this process, whatever
// -count says.
var fresh atomic.Int64

// oneFloat returns the input "x" of shape [1] holding v, and its key
// computed by hand from the encoding.
func oneFloat(v float32) ([]tensor.Tensor, string) {
	enc := []byte{3}
	enc = binary.LittleEndian.AppendUint64(enc, 1)
	enc = binary.LittleEndian.AppendUint64(enc, 1)
	enc = append(enc, 'x', byte(tensor.Float32))
	enc = binary.LittleEndian.AppendUint64(enc, 1)
	enc = binary.LittleEndian.AppendUint64(enc, 1)
	enc = binary.LittleEndian.AppendUint64(enc, 1)
	enc = binary.LittleEndian.AppendUint32(enc, math.Float32bits(v))
	return []tensor.Tensor{tensor.New("x", []int64{1}, []float32{v})}, sha128(enc)
}

func TestKeyOfRepeatedInputsStaysExact(t *testing.T) {
	// Given more distinct inputs than the memo has places, each seen
	// several times, from several goroutines at once (run with -race),
	const inputs, workers = 5000, 4
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for round := range 3 {
				for i := range inputs {
					v := float32((i*7 + w*round) % inputs)
					in, want := oneFloat(v)
					// then every key is the SHA-256 of that input's own
					// encoding: a remembered key never goes to another input.
					if got := cache.Key(in); got != want {
						t.Errorf("Key(%v) = %s, want %s", v, got, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestKeyOfALargeInputIsNotRemembered(t *testing.T) {
	// An input whose encoding is over the memo's size limit is hashed on
	// every call and still gets its one key.
	in := []tensor.Tensor{tensor.New("big", []int64{1, 4096}, make([]float32, 4096))}
	first := cache.Key(in)
	for range 3 {
		if got := cache.Key(in); got != first {
			t.Fatalf("Key of the same large input changed: %s then %s", first, got)
		}
	}
	// Under the race detector the buffer pool drops buffers at random, so
	// only the key's allocation is certain.
	if n := testing.AllocsPerRun(20, func() { cache.Key(in) }); n < 1 {
		t.Errorf("Key of a repeated large input allocates %v times, want its key (not remembered)", n)
	}
}

func TestKeyEncodingByHand(t *testing.T) {
	// Version byte 3, then the tensor count 0 as 8 bytes little-endian.
	want := sha128([]byte{3, 0, 0, 0, 0, 0, 0, 0, 0})
	if got := cache.Key(nil); got != want {
		t.Fatalf("Key(nil) = %q, want %q", got, want)
	}
	// One float32 tensor "x" of shape [1]: count, name length and bytes,
	// dtype, rank, dimension, element count, element bits.
	enc := []byte{3}
	enc = binary.LittleEndian.AppendUint64(enc, 1)
	enc = binary.LittleEndian.AppendUint64(enc, 1)
	enc = append(enc, 'x', byte(tensor.Float32))
	enc = binary.LittleEndian.AppendUint64(enc, 1)
	enc = binary.LittleEndian.AppendUint64(enc, 1)
	enc = binary.LittleEndian.AppendUint64(enc, 1)
	enc = binary.LittleEndian.AppendUint32(enc, math.Float32bits(1.5))
	want = sha128(enc)
	if got := cache.Key([]tensor.Tensor{tensor.New("x", []int64{1}, []float32{1.5})}); got != want {
		t.Fatalf("Key(x) = %q, want %q", got, want)
	}
}

// sha128 is the first 128 bits of the SHA-256 of b, in hex.
func sha128(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func TestKeyIs128Bits(t *testing.T) {
	// Given two realistic rows that differ in one feature's last bit,
	a, b := row(), row()
	fb := slices.Clone(b[0].Data.([]float32))
	fb[29] = math.Nextafter32(fb[29], 1)
	b[0].Data = fb
	// when both are keyed,
	ka, kb := cache.Key(a), cache.Key(b)
	// then the keys carry 128 bits each and differ: a 64-bit key lets a
	// birthday search find two rows with the same key in minutes.
	if len(ka) != 32 || len(kb) != 32 || ka == kb {
		t.Fatalf("keys %q and %q; want two different 128-bit keys", ka, kb)
	}
	if _, err := hex.DecodeString(ka); err != nil {
		t.Fatalf("key %q is not hex: %v", ka, err)
	}
}
