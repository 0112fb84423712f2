//go:build cgo

package models_test

import (
	"context"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/tensor"
)

// Given a model whose integer Div crashes ONNX Runtime on a zero divisor,
// when it is warmed up with the default inputs, then the process survives
// and the run answers 1/1 = 1: the default warm-up sends ones, not zeros.
func TestDefaultWarmupNeverDividesByZero(t *testing.T) {
	m := testenv.Load(t, "int_div.onnx")
	if err := m.Warmup(context.Background()); err != nil {
		t.Fatalf("Warmup: %v", err)
	}
	out, err := m.Predict(context.Background(), []tensor.Tensor{
		tensor.New("a", []int64{2}, []int32{7, -9}),
		tensor.New("b", []int64{2}, []int32{2, 3}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if q, _ := tensor.Data[int32](out[0]); !slices.Equal(q, []int32{3, -3}) {
		t.Fatalf("q = %v, want [3 -3]", q)
	}
}

// Given the nil *Model a failed Load returns, when a caller uses it anyway
// (a deferred Close, a Predict before the error was checked), then every
// method answers like a closed model instead of panicking.
func TestNilModelBehavesClosed(t *testing.T) {
	m, err := models.Load("no-such-file.onnx", models.Options{})
	if err == nil || m != nil {
		t.Fatalf("Load = %v, %v; want nil and an error", m, err)
	}
	ctx := context.Background()
	in := []tensor.Tensor{tensor.Scalar("x", float32(1))}
	if _, err := m.Predict(ctx, in); !errors.Is(err, models.ErrClosed) {
		t.Errorf("Predict: %v, want ErrClosed", err)
	}
	if _, err := m.PredictTimeout(ctx, 0, in); !errors.Is(err, models.ErrClosed) {
		t.Errorf("PredictTimeout: %v, want ErrClosed", err)
	}
	if err := m.Warmup(ctx); !errors.Is(err, models.ErrClosed) {
		t.Errorf("Warmup: %v, want ErrClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if sig := m.Signature(); len(sig.Inputs)+len(sig.Outputs) != 0 || m.Name() != "" || m.Version() != "" {
		t.Errorf("nil model reports %v %q %q", sig, m.Name(), m.Version())
	}
}

// A nil context is refused with an error, not a nil dereference.
func TestNilContextIsAnError(t *testing.T) {
	m := testenv.Load(t, "primary.onnx")
	//lint:ignore SA1012 a nil context is what this test sends
	_, err := m.Predict(nil, []tensor.Tensor{tensor.New("features", []int64{1, 30}, make([]float32, 30))}) //nolint:staticcheck
	if err == nil {
		t.Fatal("Predict(nil ctx) succeeded")
	}
}

// guardInputs are valid inputs of kernel_guards.onnx.
func guardInputs() []tensor.Tensor {
	return []tensor.Tensor{
		tensor.New("m", []int64{3, 4}, make([]float32, 12)),
		tensor.Scalar("k", int64(1)),
		tensor.New("X", []int64{2, 1, 4, 4}, make([]float32, 32)),
		tensor.New("rois", []int64{2, 4}, []float32{0, 0, 3, 3, 1, 1, 2, 2}),
		tensor.New("batch_indices", []int64{2}, []int64{0, 1}),
		tensor.New("s", []int64{3, 2}, []float32{1, 2, 3, 4, 5, 6}),
		tensor.New("lens", []int64{2}, []int64{3, 0}),
		tensor.New("u", []int64{1, 1, 2, 2}, []float32{1, 2, 3, 4}),
		tensor.New("ui", []int64{1, 1, 2, 2}, []int64{0, 3, 12, 15}),
	}
}

// Given models whose ONNX Runtime kernels kill the process on some values
// of an input (a zero integer divisor, MinInt / -1, Trilu's k near
// MinInt64, an out-of-range RoiAlign batch index, ReverseSequence length
// or MaxUnpool index), when a caller sends such a value, then Predict
// refuses it in Go with an InputError naming the input, the process
// survives, and the model answers the next valid request.
func TestValuesThatCrashKernelsAreRefused(t *testing.T) {
	div := testenv.Load(t, "int_div.onnx")
	guards := testenv.Load(t, "kernel_guards.onnx")
	divInputs := func(a, b []int32) []tensor.Tensor {
		return []tensor.Tensor{tensor.New("a", []int64{int64(len(a))}, a), tensor.New("b", []int64{int64(len(b))}, b)}
	}
	with := func(name string, data any) []tensor.Tensor {
		in := guardInputs()
		for i := range in {
			if in[i].Name == name {
				in[i].Data = data
			}
		}
		return in
	}
	tests := []struct {
		name    string
		m       *models.Model
		in      []tensor.Tensor
		input   string // "" when the input is valid
		problem string
	}{
		{"divisor 1", div, divInputs([]int32{7, 8}, []int32{1, 2}), "", ""},
		{"zero divisor", div, divInputs([]int32{7, 8}, []int32{1, 0}), "b", "zero integer divisor"},
		{"MinInt32 / -1", div, divInputs([]int32{-1 << 31, 8}, []int32{-1, 2}), "b", "integer division overflow"},
		{"-1 without MinInt32", div, divInputs([]int32{-7, 8}, []int32{-1, 2}), "", ""},
		{"valid kernel inputs", guards, guardInputs(), "", ""},
		{"Trilu k = MinInt64", guards, with("k", []int64{math.MinInt64}), "k", "k out of range"},
		{"Trilu k = MinInt64 + 1", guards, with("k", []int64{math.MinInt64 + 1}), "k", "k out of range"},
		{"RoiAlign batch index = batch size", guards, with("batch_indices", []int64{0, 2}), "batch_indices", "batch index out of range"},
		{"RoiAlign negative batch index", guards, with("batch_indices", []int64{-1, 0}), "batch_indices", "batch index out of range"},
		{"ReverseSequence length above T", guards, with("lens", []int64{4, 1}), "lens", "sequence length out of range"},
		{"ReverseSequence negative length", guards, with("lens", []int64{1, -1}), "lens", "sequence length out of range"},
		{"MaxUnpool index = output size", guards, with("ui", []int64{0, 3, 12, 16}), "ui", "index out of range"},
		{"MaxUnpool huge index", guards, with("ui", []int64{0, 3, 12, 1 << 40}), "ui", "index out of range"},
		{"MaxUnpool negative index", guards, with("ui", []int64{-1, 3, 12, 15}), "ui", "index out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.m.Predict(context.Background(), tt.in)
			if tt.input == "" {
				if err != nil {
					t.Fatalf("Predict: %v", err)
				}
				return
			}
			var ie *tensor.InputError
			if !errors.As(err, &ie) || ie.Input != tt.input || ie.Problem != tt.problem {
				t.Fatalf("err = %v; want an InputError on %q: %s", err, tt.input, tt.problem)
			}
		})
	}
	if _, err := guards.Predict(context.Background(), guardInputs()); err != nil {
		t.Fatalf("after the refusals: %v", err)
	}
}

// Given a model whose weights live in an external data file beside it, as
// exporters write models over 2 GB, when it is loaded from its path, then
// ONNX Runtime finds the weights; from bytes, the LoadError says to load
// it from its path.
func TestExternalData(t *testing.T) {
	m := testenv.Load(t, "external.onnx")
	out, err := m.Predict(context.Background(), []tensor.Tensor{tensor.New("x", []int64{1, 3}, []float32{10, 20, 30})})
	if err != nil {
		t.Fatal(err)
	}
	if y, _ := tensor.Data[float32](out[0]); !slices.Equal(y, []float32{11, 22, 33}) {
		t.Fatalf("y = %v, want [11 22 33]", y)
	}

	data, err := os.ReadFile(testenv.Testdata("external.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	m, err = models.LoadBytes(data, models.Options{})
	var le *models.LoadError
	if err == nil {
		m.Close()
		t.Fatal("LoadBytes succeeded without the external data")
	}
	if !errors.As(err, &le) || !strings.Contains(le.Hint, "models.Load") {
		t.Fatalf("err = %v; want a LoadError whose hint says to use models.Load", err)
	}
}

// Given a string input, when a string holds a NUL byte, which ONNX
// Runtime's C API would silently cut it at, then Predict refuses it with
// an InputError instead of answering for a shorter string; other strings,
// empty and invalid UTF-8 included, go through unchanged.
func TestStringWithNULIsRefused(t *testing.T) {
	m := testenv.Load(t, "types.onnx")
	in := func(texts ...string) []tensor.Tensor {
		n := int64(len(texts))
		return []tensor.Tensor{
			tensor.New("f64", []int64{n}, make([]float64, n)), tensor.New("i32", []int64{n}, make([]int32, n)),
			tensor.New("flag", []int64{n}, make([]bool, n)), tensor.New("text", []int64{n}, texts),
		}
	}
	texts := []string{"", "\xff\xfe", "é", "ok"}
	out, err := m.Predict(context.Background(), in(texts...))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tensor.Data[string](out[3]); !slices.Equal(got, texts) {
		t.Fatalf("text_out = %q, want %q", got, texts)
	}
	_, err = m.Predict(context.Background(), in("ok", "a\x00b"))
	var ie *tensor.InputError
	if !errors.As(err, &ie) || ie.Input != "text" || !strings.Contains(ie.Got, "element 1") {
		t.Fatalf("err = %v; want an InputError on element 1 of text", err)
	}
}

// Given a model whose file declares no rank for some inputs and outputs,
// which ONNX Runtime reports like scalars, then the signature says "any
// rank", inputs of every rank are taken, and outputs come back in the
// rank each run gives them, scalars included, one request after another.
func TestAnyRank(t *testing.T) {
	m := testenv.Load(t, "any_rank.onnx")
	if err := m.Warmup(context.Background()); err != nil {
		t.Fatalf("Warmup: %v", err) // a one-element text vector, not a scalar string
	}
	sig := m.Signature()
	for _, info := range append(sig.Inputs[4:], sig.Outputs...) {
		if !info.AnyRank {
			t.Errorf("%s: AnyRank is false", info)
		}
	}
	if in := sig.Inputs[0]; in.AnyRank || in.String() != "x float32[?]" {
		t.Errorf("x is %s, want float32[?]", in)
	}
	count := func(shape []int64) []float32 {
		n, _ := tensor.NumElements(shape)
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i + 1)
		}
		return x
	}
	tests := []struct {
		shape, hshape []int64 // y's and hy's
		a             tensor.Tensor
		text          tensor.Tensor
	}{
		{[]int64{2, 3}, []int64{3, 2}, tensor.New("a", []int64{2}, []int32{1, 2}), tensor.New("text", []int64{1, 2}, []string{"p", "q"})},
		{[]int64{}, []int64{2}, tensor.Scalar("a", int32(7)), tensor.New("text", []int64{1}, []string{"r"})},
		{[]int64{6}, []int64{1, 1, 4}, tensor.New("a", []int64{1, 1, 1}, []int32{3}), tensor.New("text", []int64{0}, []string{})},
		{[]int64{}, []int64{1}, tensor.Scalar("a", int32(8)), tensor.New("text", []int64{2, 1, 1}, []string{"s", "t"})},
		{[]int64{1, 2, 3}, []int64{5}, tensor.New("a", []int64{0, 4}, []int32{}), tensor.New("text", []int64{1}, []string{"u"})},
	}
	for _, tt := range tests {
		x, hx := count(tt.shape), count(tt.hshape)
		h := make([]tensor.F16, len(hx))
		for i, f := range hx {
			h[i] = tensor.NewF16(f)
		}
		out, err := m.Predict(context.Background(), []tensor.Tensor{
			tensor.New("x", []int64{int64(len(x))}, x), tensor.New("shape", []int64{int64(len(tt.shape))}, tt.shape),
			tensor.New("h", []int64{int64(len(h))}, h), tensor.New("hshape", []int64{int64(len(tt.hshape))}, tt.hshape),
			tt.a, tt.text,
		})
		if err != nil {
			t.Fatalf("shape %v, a %v: %v", tt.shape, tt.a.Shape, err)
		}
		y, hy, z, text := out[0], out[1], out[2], out[3]
		if yd, _ := tensor.Data[float32](y); !slices.Equal(y.Shape, tt.shape) || !slices.Equal(yd, x) {
			t.Errorf("y = %v %v, want %v %v", y.Shape, y.Data, tt.shape, x)
		}
		if hd, _ := tensor.Data[tensor.F16](hy); !slices.Equal(hy.Shape, tt.hshape) || len(hd) != len(h) || hd[len(hd)-1] != h[len(h)-1] {
			t.Errorf("hy = %v %v, want %v %v", hy.Shape, hy.Data, tt.hshape, h)
		}
		if !slices.Equal(z.Shape, tt.a.Shape) || !slices.Equal(z.Data.([]int32), tt.a.Data.([]int32)) {
			t.Errorf("z = %v %v, want a = %v %v", z.Shape, z.Data, tt.a.Shape, tt.a.Data)
		}
		if !slices.Equal(text.Shape, tt.text.Shape) || !slices.Equal(text.Data.([]string), tt.text.Data.([]string)) {
			t.Errorf("t = %v %q, want %v %q", text.Shape, text.Data, tt.text.Shape, tt.text.Data)
		}
	}

	// A scalar string cannot be built: refused as input, not failed as a run.
	_, err := m.Predict(context.Background(), []tensor.Tensor{
		tensor.New("x", []int64{1}, []float32{1}), tensor.New("shape", []int64{1}, []int64{1}),
		tensor.New("h", []int64{1}, []tensor.F16{0}), tensor.New("hshape", []int64{1}, []int64{1}),
		tensor.Scalar("a", int32(1)), tensor.Scalar("text", "s"),
	})
	var ie *tensor.InputError
	if !errors.As(err, &ie) || ie.Input != "text" {
		t.Fatalf("scalar text: err = %v, want an InputError on text", err)
	}
}

// Given float16 outputs, which ladder allocates before each run, when a
// file declares one of 32 GiB, then Load refuses it; when a request makes
// ONNX Runtime ask for one over the bound, then the run fails with a
// RunError instead of Go running out of memory, which no recover catches,
// and the model serves the next request.
func TestHugeHalfOutputsAreNotAllocated(t *testing.T) {
	testenv.MustHaveRuntime(t)
	m, err := models.Load(testenv.Testdata("half_huge.onnx"), models.Options{})
	var le *models.LoadError
	if err == nil {
		m.Close()
		t.Fatal("Load succeeded")
	}
	if !errors.As(err, &le) || !strings.Contains(err.Error(), `output "y" is declared float16[17179869184]`) {
		t.Fatalf("err = %v, want a LoadError naming the declared shape", err)
	}

	m = testenv.Load(t, "half_expand.onnx")
	expand := func(a, b int64) ([]tensor.Tensor, error) {
		return m.Predict(context.Background(), []tensor.Tensor{
			tensor.New("h", []int64{1}, []tensor.F16{tensor.NewF16(2)}),
			tensor.New("shape", []int64{2}, []int64{a, b}),
		})
	}
	if _, err := expand(1<<20, 1<<20); !errors.Is(err, models.ErrRun) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("a 2 TiB output: err = %v, want a RunError", err)
	}
	out, err := expand(2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := tensor.Data[tensor.F16](out[0]); !slices.Equal(out[0].Shape, []int64{2, 3}) || len(h) != 6 || h[5].Float32() != 2 {
		t.Fatalf("y = %v %v, want [2 3] of 2", out[0].Shape, out[0].Data)
	}
}

// Given options ONNX Runtime would crash on or silently ignore (more
// threads than it can create, an unknown optimisation level), when a
// model is loaded with them, then Load refuses them with a LoadError that
// names the field.
func TestLoadRefusesBadOptions(t *testing.T) {
	testenv.MustHaveRuntime(t)
	tests := []struct {
		opts  models.Options
		field string
	}{
		{models.Options{IntraOpThreads: 100000}, "IntraOpThreads"},
		{models.Options{InterOpThreads: models.MaxThreads + 1}, "InterOpThreads"},
		{models.Options{Optimization: models.OptimizeNone + 1}, "Optimization"},
		{models.Options{Optimization: -1}, "Optimization"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			m, err := models.Load(testenv.Testdata("primary.onnx"), tt.opts)
			if err == nil {
				m.Close()
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, models.ErrLoad) || !strings.Contains(err.Error(), "Options."+tt.field) {
				t.Fatalf("err = %v, want a LoadError naming Options.%s", err, tt.field)
			}
		})
	}
	m, err := models.Load(testenv.Testdata("primary.onnx"), models.Options{IntraOpThreads: 2, InterOpThreads: -3, Optimization: models.OptimizeNone})
	if err != nil {
		t.Fatalf("valid options: %v", err)
	}
	m.Close()
}
