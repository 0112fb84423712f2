//go:build cgo

package models_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/tensor"
)

// fuzzModels are the models FuzzPredict drives, with a valid call for each.
var fuzzModels = []struct {
	file  string
	valid []tensor.Tensor
}{
	{"primary.onnx", []tensor.Tensor{tensor.New("features", []int64{1, 30}, make([]float32, 30))}},
	{"scalars.onnx", []tensor.Tensor{tensor.New("x", []int64{1, 3}, []float32{1, 2, 3}), tensor.Scalar("rate", int64(2))}},
	{"types.onnx", []tensor.Tensor{tensor.New("f64", []int64{1}, []float64{1}), tensor.New("i32", []int64{1}, []int32{1}),
		tensor.New("flag", []int64{1}, []bool{true}), tensor.New("text", []int64{1}, []string{"a"})}},
	{"small_ints.onnx", []tensor.Tensor{tensor.New("i8", []int64{1}, []int8{1}), tensor.New("u8", []int64{1}, []uint8{1}),
		tensor.New("i16", []int64{1}, []int16{1}), tensor.New("u16", []int64{1}, []uint16{1}),
		tensor.New("u32", []int64{1}, []uint32{1}), tensor.New("u64", []int64{1}, []uint64{1})}},
	{"half.onnx", []tensor.Tensor{tensor.New("h", []int64{1, 2}, make([]tensor.F16, 2)), tensor.New("b", []int64{1, 2}, make([]tensor.BF16, 2))}},
	{"dynamic.onnx", []tensor.Tensor{tensor.New("x", []int64{2}, []float32{1, -1})}},
	{"reshape.onnx", []tensor.Tensor{tensor.New("x", []int64{4}, make([]float32, 4)), tensor.New("shape", []int64{2}, []int64{2, 2})}},
	{"string_scalar.onnx", []tensor.Tensor{tensor.New("text", []int64{1}, []string{"a"})}},
	{"multi_io.onnx", []tensor.Tensor{tensor.New("a", []int64{1, 3}, make([]float32, 3)), tensor.New("b", []int64{1, 2}, make([]int64, 2))}},
}

// FuzzPredict sends random names, element types, shapes (huge, negative,
// zero, rank 0 to 8) and data to several models. Every call returns an
// answer that fits the signature or a typed error, and a valid call right
// after it succeeds.
//
// Run it for longer with
//
//	go test -run '^$' -fuzz FuzzPredict -fuzztime 10m ./models/
func FuzzPredict(f *testing.F) {
	testenv.MustHaveRuntime(f)
	loaded := make([]*models.Model, len(fuzzModels))
	for i, fm := range fuzzModels {
		m, err := models.Load(testenv.Testdata(fm.file), models.Options{})
		if err != nil {
			f.Fatal(err)
		}
		loaded[i] = m
	}
	f.Cleanup(func() {
		for _, m := range loaded {
			if err := m.Close(); err != nil {
				f.Errorf("Close: %v", err)
			}
		}
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := reader(data)
		k := int(r.byte()) % len(loaded)
		m, sig := loaded[k], loaded[k].Signature()
		inputs := decodeInputs(&r, sig.Inputs)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		out, err := m.Predict(ctx, inputs)
		switch {
		case err == nil:
			if len(out) != len(sig.Outputs) {
				t.Fatalf("%d outputs, want %d", len(out), len(sig.Outputs))
			}
			for i, o := range out {
				n, ok := tensor.NumElements(o.Shape)
				if o.Name != sig.Outputs[i].Name || o.DType() != sig.Outputs[i].DType || !ok || n != int64(o.Len()) {
					t.Fatalf("output %d = %s %s%v with %d elements, want %s", i, o.Name, o.DType(), o.Shape, o.Len(), sig.Outputs[i])
				}
			}
		case errors.Is(err, tensor.ErrInvalidInput), errors.Is(err, models.ErrRun), errors.Is(err, context.DeadlineExceeded):
		default:
			t.Fatalf("%s: untyped error %T: %v", fuzzModels[k].file, err, err)
		}
		if _, err := m.Predict(context.Background(), fuzzModels[k].valid); err != nil {
			t.Fatalf("%s: valid call after %v: %v", fuzzModels[k].file, inputs, err)
		}
	})
}

// reader hands out the fuzzer's bytes, and zeros once they run out.
type reader []byte

func (r *reader) byte() byte {
	if len(*r) == 0 {
		return 0
	}
	b := (*r)[0]
	*r = (*r)[1:]
	return b
}

func (r *reader) u64() uint64 {
	var b [8]byte
	for i := range b {
		b[i] = r.byte()
	}
	return binary.LittleEndian.Uint64(b[:])
}

// decodeInputs builds tensors from r: mostly the model's own input names
// and types with random shapes, sometimes other names, types and lengths.
func decodeInputs(r *reader, want []tensor.Info) []tensor.Tensor {
	n := int(r.byte() % 8)
	ts := make([]tensor.Tensor, n)
	for i := range ts {
		t := &ts[i]
		c := r.byte()
		var info tensor.Info
		if len(want) > 0 {
			info = want[int(c)%len(want)]
		}
		t.Name = info.Name
		if c >= 240 {
			t.Name = string([]byte{r.byte(), r.byte()})
		}
		dt := info.DType
		if c2 := r.byte(); c2 >= 200 {
			dt = tensor.DType(c2 % 16) // every DType, Invalid and one beyond
		}
		rank := len(info.Shape)
		if c3 := r.byte(); c3 >= 200 {
			rank = int(c3 % 9)
		}
		t.Shape = make([]int64, rank)
		for d := range t.Shape {
			switch c := r.byte(); {
			case c < 100:
				t.Shape[d] = int64(c % 5)
			case c < 110:
				t.Shape[d] = -1 - int64(c%3)
			case c < 120:
				t.Shape[d] = math.MaxInt64
			case c < 130:
				t.Shape[d] = 614891469123651721
			case c < 140:
				t.Shape[d] = int64(r.u64())
			default:
				if d < len(info.Shape) && info.Shape[d] >= 0 {
					t.Shape[d] = info.Shape[d]
				} else {
					t.Shape[d] = int64(c % 4)
				}
			}
		}
		length, ok := tensor.NumElements(t.Shape)
		switch lb := r.byte(); {
		case lb >= 230:
			length = int64(lb % 8) // most likely the wrong length
		case !ok || length > 1024:
			length = int64(lb % 16)
		}
		// The values come from a generator seeded by one byte, so the
		// layout of the next tensor does not depend on this one's size.
		values := rand.New(rand.NewPCG(uint64(r.byte()), 7))
		t.Data = makeData(values, dt, int(length))
	}
	return ts
}

func makeData(r *rand.Rand, dt tensor.DType, n int) any {
	switch dt {
	case tensor.Float32:
		d := make([]float32, n)
		for i := range d {
			d[i] = math.Float32frombits(uint32(r.Uint64()))
		}
		return d
	case tensor.Float64:
		d := make([]float64, n)
		for i := range d {
			d[i] = math.Float64frombits(r.Uint64())
		}
		return d
	case tensor.Int32:
		d := make([]int32, n)
		for i := range d {
			d[i] = int32(r.Uint64())
		}
		return d
	case tensor.Int64:
		d := make([]int64, n)
		for i := range d {
			d[i] = int64(r.Uint64())
		}
		return d
	case tensor.Bool:
		d := make([]bool, n)
		for i := range d {
			d[i] = byte(r.Uint32())&1 == 1
		}
		return d
	case tensor.String:
		d := make([]string, n)
		for i := range d {
			d[i] = string([]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		}
		return d
	case tensor.Int8:
		d := make([]int8, n)
		for i := range d {
			d[i] = int8(byte(r.Uint32()))
		}
		return d
	case tensor.Uint8:
		d := make([]uint8, n)
		for i := range d {
			d[i] = byte(r.Uint32())
		}
		return d
	case tensor.Int16:
		d := make([]int16, n)
		for i := range d {
			d[i] = int16(r.Uint64())
		}
		return d
	case tensor.Uint16:
		d := make([]uint16, n)
		for i := range d {
			d[i] = uint16(r.Uint64())
		}
		return d
	case tensor.Uint32:
		d := make([]uint32, n)
		for i := range d {
			d[i] = uint32(r.Uint64())
		}
		return d
	case tensor.Uint64:
		d := make([]uint64, n)
		for i := range d {
			d[i] = r.Uint64()
		}
		return d
	case tensor.Float16:
		d := make([]tensor.F16, n)
		for i := range d {
			d[i] = tensor.F16(r.Uint64())
		}
		return d
	case tensor.BFloat16:
		d := make([]tensor.BF16, n)
		for i := range d {
			d[i] = tensor.BF16(r.Uint64())
		}
		return d
	case tensor.Invalid:
		return nil
	}
	return make([]complex64, n) // a Go type no model takes
}

// FuzzLoadBytes loads mutated model files: each gives a *LoadError or a
// model that warms up or fails with a typed error, and closes cleanly.
//
// Run it for longer with
//
//	go test -run '^$' -fuzz FuzzLoadBytes -fuzztime 10m ./models/
func FuzzLoadBytes(f *testing.F) {
	testenv.MustHaveRuntime(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := models.LoadBytes(data, models.Options{})
		if err != nil {
			var le *models.LoadError
			if !errors.As(err, &le) || !errors.Is(err, models.ErrLoad) {
				t.Fatalf("LoadBytes: untyped error %T: %v", err, err)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err = m.Warmup(ctx)
		// A warm-up value that would crash a kernel is an InputError.
		if err != nil && !errors.Is(err, models.ErrRun) && !errors.Is(err, context.DeadlineExceeded) &&
			!errors.Is(err, tensor.ErrInvalidInput) {
			t.Fatalf("Warmup: untyped error %T: %v", err, err)
		}
		if err := m.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
}

// TestFuzzSeedsAreCommitted guards the seed corpora that CI runs.
func TestFuzzSeedsAreCommitted(t *testing.T) {
	for _, dir := range []string{"testdata/fuzz/FuzzPredict", "testdata/fuzz/FuzzLoadBytes"} {
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) < 5 {
			t.Errorf("%s: %d seeds (%v), want at least 5", dir, len(entries), err)
		}
	}
}
