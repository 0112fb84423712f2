//go:build cgo

package models_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/tensor"
)

// Defects 1 and 3: scalar inputs and outputs.
func TestScalarsInAndOut(t *testing.T) {
	m := testenv.Load(t, "scalars.onnx")
	ctx := context.Background()
	x := tensor.New("x", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	// Given the same and then another sample rate: a scalar is rebuilt
	// when its value changes.
	for _, rate := range []int64{16000, 16000, 8000, 2} {
		out, err := m.Predict(ctx, []tensor.Tensor{x, tensor.Scalar("rate", rate)})
		if err != nil {
			t.Fatalf("rate %d: %v", rate, err)
		}
		scaled, _ := tensor.Data[float32](out[0])
		total, ok := tensor.Data[float32](out[1])
		if !ok || len(total) != 1 || out[1].Shape == nil || len(out[1].Shape) != 0 {
			t.Fatalf("rate %d: total = %#v, want a scalar float32", rate, out[1])
		}
		if scaled[5] != 6*float32(rate) || total[0] != 21*float32(rate) {
			t.Fatalf("rate %d: scaled %v, total %v", rate, scaled, total)
		}
	}
	sig := m.Signature()
	if got := sig.Inputs[1].String(); got != "rate int64[]" {
		t.Errorf("rate input = %q, want rate int64[]", got)
	}
	// A scalar sent as a one-element vector names the input.
	_, err := m.Predict(ctx, []tensor.Tensor{x, tensor.New("rate", []int64{1}, []int64{16000})})
	var ie *tensor.InputError
	if !errors.As(err, &ie) || ie.Input != "rate" || ie.Problem != "wrong rank" {
		t.Fatalf("rate as [1]: %v, want an InputError for rate's rank", err)
	}
}

// Defect 4: a model with no inputs is refused at Load with a typed error.
func TestNoInputModelIsRefusedAtLoad(t *testing.T) {
	testenv.MustHaveRuntime(t)
	m, err := models.Load(testenv.Testdata("no_input.onnx"), models.Options{})
	if err == nil {
		m.Close()
		t.Fatal("Load succeeded")
	}
	var le *models.LoadError
	if !errors.As(err, &le) || !errors.Is(err, models.ErrLoad) || !strings.Contains(err.Error(), "no inputs") {
		t.Fatalf("err = %v, want a *LoadError saying the model has no inputs", err)
	}
}

// Defect 5: an element count that overflows int64 is the caller's fault.
func TestShapeOverflowIsInvalidInput(t *testing.T) {
	m := testenv.Load(t, "primary.onnx")
	tests := []struct {
		name  string
		shape []int64
		n     int
	}{
		{"wraps to 14", []int64{614891469123651721, 30}, 14},
		{"wraps to 0", []int64{1 << 62, 30}, 0},
		{"max int64 rows", []int64{math.MaxInt64, 30}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Predict(context.Background(), []tensor.Tensor{tensor.New("features", tt.shape, make([]float32, tt.n))})
			if !errors.Is(err, tensor.ErrInvalidInput) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
		})
	}
}

// Defect 8: no model_version means no version.
func TestVersion(t *testing.T) {
	tests := []struct {
		file, want string
		sig        int64
	}{
		{"backup.onnx", "1", 1},
		{"unversioned.onnx", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m := testenv.Load(t, tt.file)
			if m.Version() != tt.want || m.Signature().Version != tt.sig {
				t.Fatalf("Version() = %q, Signature().Version = %d; want %q, %d", m.Version(), m.Signature().Version, tt.want, tt.sig)
			}
		})
	}
}

// Defect 10: Warmup on caller-supplied example inputs.
func TestWarmupWithExampleInputs(t *testing.T) {
	testenv.MustHaveRuntime(t)
	path := testenv.Testdata("reshape.onnx")
	examples := []tensor.Tensor{
		tensor.New("x", []int64{6}, []float32{1, 2, 3, 4, 5, 6}),
		tensor.New("shape", []int64{2}, []int64{2, 3}),
	}
	t.Run("the default ones fit", func(t *testing.T) {
		// x = [1], shape = [1, 1]: zeros would ask for a [0, 0] reshape.
		m := testenv.Load(t, "reshape.onnx")
		if err := m.Warmup(context.Background()); err != nil {
			t.Fatalf("Warmup on the default inputs: %v", err)
		}
	})
	t.Run("examples", func(t *testing.T) {
		m, err := models.Load(path, models.Options{WarmupInputs: examples})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		examples[0].Data.([]float32)[0] = float32(math.NaN()) // Load kept a copy
		if err := m.Warmup(context.Background()); err != nil {
			t.Fatalf("Warmup: %v", err)
		}
	})
	t.Run("examples that do not fit", func(t *testing.T) {
		bad := []tensor.Tensor{examples[0], tensor.New("shape", []int64{3}, []int64{1, 2, 3})}
		m, err := models.Load(path, models.Options{WarmupInputs: bad})
		if err == nil {
			m.Close()
			t.Fatal("Load succeeded")
		}
		if !errors.Is(err, models.ErrLoad) || !errors.Is(err, tensor.ErrInvalidInput) {
			t.Fatalf("err = %v, want ErrLoad wrapping ErrInvalidInput", err)
		}
	})
}

func TestSmallIntegerTypes(t *testing.T) {
	m := testenv.Load(t, "small_ints.onnx")
	in := []tensor.Tensor{
		tensor.New("i8", []int64{3}, []int8{-128, 0, 127}),
		tensor.New("u8", []int64{3}, []uint8{0, 1, 255}),
		tensor.New("i16", []int64{3}, []int16{-32768, 5, 32767}),
		tensor.New("u16", []int64{3}, []uint16{0, 7, 65535}),
		tensor.New("u32", []int64{3}, []uint32{0, 9, math.MaxUint32}),
		tensor.New("u64", []int64{3}, []uint64{0, 11, math.MaxUint64}),
	}
	for range 2 { // the second run reuses native tensors
		out, err := m.Predict(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range out {
			if o.Name != in[i].Name+"_out" || o.DType() != in[i].DType() {
				t.Fatalf("output %d = %s %s, want %s_out %s", i, o.Name, o.DType(), in[i].Name, in[i].DType())
			}
			want := in[i].Clone()
			reverse(want)
			if !equalData(o, want) {
				t.Fatalf("%s = %v, want %v", o.Name, o.Data, want.Data)
			}
		}
	}
}

func reverse(t tensor.Tensor) {
	switch d := t.Data.(type) {
	case []int8:
		slices.Reverse(d)
	case []uint8:
		slices.Reverse(d)
	case []int16:
		slices.Reverse(d)
	case []uint16:
		slices.Reverse(d)
	case []uint32:
		slices.Reverse(d)
	case []uint64:
		slices.Reverse(d)
	}
}

func equalData(a, b tensor.Tensor) bool {
	return a.DType() == b.DType() && a.Len() == b.Len() && strings.TrimSpace(sprint(a.Data)) == strings.TrimSpace(sprint(b.Data))
}

func TestHalfPrecision(t *testing.T) {
	m := testenv.Load(t, "half.onnx")
	sig := m.Signature()
	if got := infoStrings(sig.Outputs); !equal(got, []string{"h2 float16[?,2]", "b2 bfloat16[?,2]", "hs float16[2]", "sum float32[?]"}) {
		t.Fatalf("outputs = %q", got)
	}
	// Batches of 3, 1, 1 and 3 rows: the float16 outputs of dynamic shape
	// are allocated by ladder, and their shapes are learnt.
	for _, rows := range []int{3, 1, 1, 3, 0} {
		h := make([]tensor.F16, 2*rows)
		b := make([]tensor.BF16, 2*rows)
		for i := range h {
			h[i] = tensor.NewF16(float32(i) + 0.5)
			b[i] = tensor.NewBF16(-float32(i) * 2)
		}
		out, err := m.Predict(context.Background(), []tensor.Tensor{
			tensor.New("h", []int64{int64(rows), 2}, h),
			tensor.New("b", []int64{int64(rows), 2}, b),
		})
		if rows == 0 {
			// hs reads row 0, which an empty batch does not have.
			if err == nil {
				t.Fatalf("empty batch: hs = %v, want an error", out[2])
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d rows: %v", rows, err)
		}
		h2, _ := tensor.Data[tensor.F16](out[0])
		b2, _ := tensor.Data[tensor.BF16](out[1])
		hs, _ := tensor.Data[tensor.F16](out[2])
		sum, _ := tensor.Data[float32](out[3])
		if !slices.Equal(out[0].Shape, []int64{int64(rows), 2}) || !slices.Equal(out[1].Shape, []int64{int64(rows), 2}) ||
			len(h2) != 2*rows || len(b2) != 2*rows || len(sum) != rows {
			t.Fatalf("%d rows: shapes %v %v, lengths %d %d %d", rows, out[0].Shape, out[1].Shape, len(h2), len(b2), len(sum))
		}
		for i := range h2 {
			if h2[i].Float32() != 2*h[i].Float32() || b2[i].Float32() != 2*b[i].Float32() {
				t.Fatalf("%d rows: element %d: h2 %v b2 %v", rows, i, h2[i].Float32(), b2[i].Float32())
			}
		}
		if hs[0].Float32() != 1.5 || hs[1].Float32() != 2.5 {
			t.Fatalf("%d rows: hs = %v %v, want 1.5 2.5", rows, hs[0].Float32(), hs[1].Float32())
		}
		if want := h[0].Float32() + h[1].Float32() + b[0].Float32() + b[1].Float32(); sum[0] != want {
			t.Fatalf("%d rows: sum[0] = %v, want %v", rows, sum[0], want)
		}
	}
}

func TestZeroLengthBatch(t *testing.T) {
	ctx := context.Background()
	m := testenv.Load(t, "primary.onnx")
	for range 2 {
		out, err := m.Predict(ctx, []tensor.Tensor{tensor.New("features", []int64{0, 30}, []float32{})})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out[0].Shape, []int64{0, 1}) || out[0].Len() != 0 || out[0].DType() != tensor.Float32 {
			t.Fatalf("got %#v, want float32[0,1]", out[0])
		}
	}
	s := testenv.Load(t, "scalars.onnx")
	out, err := s.Predict(ctx, []tensor.Tensor{tensor.New("x", []int64{0, 3}, []float32{}), tensor.Scalar("rate", int64(3))})
	if err != nil {
		t.Fatal(err)
	}
	if total := out[1].Data.([]float32); total[0] != 0 || out[0].Len() != 0 {
		t.Fatalf("got %v", out)
	}
}

func TestDataDependentOutputShape(t *testing.T) {
	m := testenv.Load(t, "dynamic.onnx")
	tests := []struct {
		in, want []float32
	}{
		{[]float32{1, -1, 2}, []float32{1, 2}},
		{[]float32{1, -1, 2}, []float32{1, 2}},
		{[]float32{-1, -2, 5}, []float32{5}}, // same input shape, other output shape
		{[]float32{3, 4, 5}, []float32{3, 4, 5}},
		{[]float32{-3, -4, -5}, []float32{}},
		{[]float32{}, []float32{}},
	}
	for _, tt := range tests {
		out, err := m.Predict(context.Background(), []tensor.Tensor{tensor.New("x", []int64{int64(len(tt.in))}, tt.in)})
		if err != nil {
			t.Fatalf("%v: %v", tt.in, err)
		}
		got := out[0].Data.([]float32)
		if !slices.Equal(got, tt.want) || !slices.Equal(out[0].Shape, []int64{int64(len(tt.want))}) {
			t.Fatalf("%v: got %v shape %v, want %v", tt.in, got, out[0].Shape, tt.want)
		}
	}
}

func TestScalarStringOutput(t *testing.T) {
	m := testenv.Load(t, "string_scalar.onnx")
	for _, in := range [][]string{{"héllo", "x"}, {"", "y"}, {"z"}} {
		out, err := m.Predict(context.Background(), []tensor.Tensor{tensor.New("text", []int64{int64(len(in))}, in)})
		if err != nil {
			t.Fatal(err)
		}
		if got := out[0].Data.([]string); len(got) != 1 || got[0] != in[0] || len(out[0].Shape) != 0 {
			t.Fatalf("first = %q shape %v, want %q as a scalar", got, out[0].Shape, in[0])
		}
	}
}

func TestUnsupportedTypesAreRefusedAtLoad(t *testing.T) {
	testenv.MustHaveRuntime(t)
	tests := []struct {
		file string
		want []string
	}{
		{"half_scalar.onnx", []string{`output "total"`, "scalar float16"}},
		{"complex.onnx", []string{"complex64"}},
		{"sequence.onnx", []string{`output "seq" is a sequence, not a tensor`, "zipmap"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m, err := models.Load(testenv.Testdata(tt.file), models.Options{})
			if err == nil {
				m.Close()
				t.Fatal("Load succeeded")
			}
			var le *models.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v (%T), want *LoadError", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

func sprint(v any) string { return fmt.Sprint(v) }
