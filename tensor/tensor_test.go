package tensor_test

import (
	"errors"
	"math"
	"testing"

	"github.com/ladder-ml/ladder/tensor"
)

func TestNumElements(t *testing.T) {
	tests := []struct {
		name  string
		shape []int64
		n     int64
		ok    bool
	}{
		{"scalar", []int64{}, 1, true},
		{"matrix", []int64{2, 3}, 6, true},
		{"zero-length batch", []int64{0, 30}, 0, true},
		{"negative", []int64{-1, 30}, 0, false},
		{"wraps to 14", []int64{614891469123651721, 30}, 0, false},
		{"max int64", []int64{math.MaxInt64}, math.MaxInt64, true},
		{"max int64 times 2", []int64{math.MaxInt64, 2}, 0, false},
		{"overflow then zero", []int64{math.MaxInt64, math.MaxInt64, 0}, 0, true},
		{"2^62 * 2", []int64{1 << 62, 2}, 0, false},
		{"2^31 squared", []int64{1 << 31, 1 << 31}, 1 << 62, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := tensor.NumElements(tt.shape)
			if n != tt.n || ok != tt.ok {
				t.Fatalf("NumElements(%v) = %d, %v; want %d, %v", tt.shape, n, ok, tt.n, tt.ok)
			}
		})
	}
}

func TestCheckInputsOverflow(t *testing.T) {
	want := []tensor.Info{{Name: "features", DType: tensor.Float32, Shape: []int64{-1, 30}}}
	in := []tensor.Tensor{tensor.New("features", []int64{614891469123651721, 30}, make([]float32, 14))}
	err := tensor.CheckInputs("m", want, in, make([]tensor.Tensor, 1))
	var ie *tensor.InputError
	if !errors.As(err, &ie) || !errors.Is(err, tensor.ErrInvalidInput) || ie.Problem != "element count overflows int64" {
		t.Fatalf("err = %v, want an InputError for the overflow", err)
	}
}

func TestCheckInputsScalar(t *testing.T) {
	want := []tensor.Info{{Name: "rate", DType: tensor.Int64, Shape: []int64{}}}
	if err := tensor.CheckInputs("m", want, []tensor.Tensor{tensor.Scalar("rate", int64(16000))}, make([]tensor.Tensor, 1)); err != nil {
		t.Fatal(err)
	}
	bad := tensor.Tensor{Name: "rate", Shape: []int64{}, Data: []int64{1, 2}}
	if err := tensor.CheckInputs("m", want, []tensor.Tensor{bad}, make([]tensor.Tensor, 1)); !errors.Is(err, tensor.ErrInvalidInput) {
		t.Fatalf("a scalar with 2 elements: %v", err)
	}
}

func TestEveryDType(t *testing.T) {
	tests := []struct {
		t    tensor.Tensor
		want tensor.DType
		size int
	}{
		{tensor.New("a", []int64{1}, []float32{1}), tensor.Float32, 4},
		{tensor.New("a", []int64{1}, []float64{1}), tensor.Float64, 8},
		{tensor.New("a", []int64{1}, []int32{1}), tensor.Int32, 4},
		{tensor.New("a", []int64{1}, []int64{1}), tensor.Int64, 8},
		{tensor.New("a", []int64{1}, []bool{true}), tensor.Bool, 1},
		{tensor.New("a", []int64{1}, []string{"x"}), tensor.String, 0},
		{tensor.New("a", []int64{1}, []int8{1}), tensor.Int8, 1},
		{tensor.New("a", []int64{1}, []uint8{1}), tensor.Uint8, 1},
		{tensor.New("a", []int64{1}, []int16{1}), tensor.Int16, 2},
		{tensor.New("a", []int64{1}, []uint16{1}), tensor.Uint16, 2},
		{tensor.New("a", []int64{1}, []uint32{1}), tensor.Uint32, 4},
		{tensor.New("a", []int64{1}, []uint64{1}), tensor.Uint64, 8},
		{tensor.New("a", []int64{1}, []tensor.F16{tensor.NewF16(1)}), tensor.Float16, 2},
		{tensor.New("a", []int64{1}, []tensor.BF16{tensor.NewBF16(1)}), tensor.BFloat16, 2},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.want.String(), func(t *testing.T) {
			if tt.t.DType() != tt.want || tt.t.Len() != 1 || tt.want.Size() != tt.size {
				t.Fatalf("DType %v Len %d Size %d", tt.t.DType(), tt.t.Len(), tt.want.Size())
			}
			c := tt.t.Clone()
			if c.DType() != tt.want || c.Len() != 1 {
				t.Fatalf("Clone lost the data: %#v", c)
			}
			// CheckInputs reads the same element type and length.
			info := []tensor.Info{{Name: "a", DType: tt.want, Shape: []int64{1}}}
			ordered := make([]tensor.Tensor, 1)
			if err := tensor.CheckInputs("m", info, []tensor.Tensor{tt.t}, ordered); err != nil || ordered[0].DType() != tt.want {
				t.Fatalf("CheckInputs = %v, ordered %#v", err, ordered[0])
			}
			info[0].Shape = []int64{2}
			var ie *tensor.InputError
			err := tensor.CheckInputs("m", info, []tensor.Tensor{{Name: "a", Shape: []int64{2}, Data: tt.t.Data}}, ordered)
			if !errors.As(err, &ie) || ie.Problem != "data length does not match shape" || ie.Got != "1" {
				t.Fatalf("CheckInputs of 1 element for shape [2] = %v", err)
			}
			if seen[tt.want.String()] {
				t.Fatalf("duplicate name %s", tt.want)
			}
			seen[tt.want.String()] = true
		})
	}
	if tensor.DType(99).String() != "DType(99)" || (tensor.Tensor{Data: []complex64{1}}).DType() != tensor.Invalid {
		t.Error("unknown types are not Invalid")
	}
}

func TestF16(t *testing.T) {
	tests := []struct {
		f    float32
		bits tensor.F16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},             // largest half
		{65520, 0x7c00},             // rounds to +Inf
		{1e6, 0x7c00},               // overflow
		{6.103515625e-05, 0x0400},   // smallest normal
		{5.960464477539063e-08, 1},  // smallest subnormal
		{2.9802322387695312e-08, 0}, // half of it: ties to even, 0
		{1.0009765625, 0x3c01},      // 1 + 2^-10
		{1.00048828125, 0x3c00},     // 1 + 2^-11: tie, to even
		{1.00146484375, 0x3c02},     // 1 + 3*2^-11: tie, to even
		{float32(math.Inf(1)), 0x7c00},
		{float32(math.Inf(-1)), 0xfc00},
	}
	for _, tt := range tests {
		if got := tensor.NewF16(tt.f); got != tt.bits {
			t.Errorf("NewF16(%v) = %#04x, want %#04x", tt.f, uint16(got), uint16(tt.bits))
		}
	}
	// Every finite half survives the round trip through float32.
	for b := range 1 << 16 {
		h := tensor.F16(b)
		f := h.Float32()
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			if !math.IsNaN(float64(f)) || !math.IsNaN(float64(tensor.NewF16(f).Float32())) {
				t.Fatalf("NaN %#04x -> %v", b, f)
			}
			continue
		}
		if got := tensor.NewF16(f); got != h {
			t.Fatalf("%#04x -> %v -> %#04x", b, f, uint16(got))
		}
	}
}

func TestBF16(t *testing.T) {
	tests := []struct {
		f    float32
		bits tensor.BF16
	}{
		{0, 0},
		{1, 0x3f80},
		{-2, 0xc000},
		{3.140625, 0x4049},
		{float32(math.Inf(1)), 0x7f80},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie, to even
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie, to even
		{math.Float32frombits(0x3f808001), 0x3f81},
	}
	for _, tt := range tests {
		if got := tensor.NewBF16(tt.f); got != tt.bits {
			t.Errorf("NewBF16(%v) = %#04x, want %#04x", tt.f, uint16(got), uint16(tt.bits))
		}
		if tt.f == tt.f && tensor.NewBF16(tt.f).Float32() != tensor.BF16(tt.bits).Float32() {
			t.Errorf("round trip of %v", tt.f)
		}
	}
	if nan := tensor.NewBF16(float32(math.NaN())); !math.IsNaN(float64(nan.Float32())) {
		t.Errorf("NaN became %v", nan.Float32())
	}
	if nan := tensor.NewBF16(math.Float32frombits(0x7f800001)); !math.IsNaN(float64(nan.Float32())) {
		t.Errorf("a NaN with a low payload became %v", nan.Float32())
	}
}

func TestFirstNonFinite(t *testing.T) {
	nan32, inf64 := float32(math.NaN()), math.Inf(-1)
	tests := []struct {
		name string
		t    tensor.Tensor
		want int
	}{
		{"float32 finite", tensor.New("a", []int64{2}, []float32{1, 2}), -1},
		{"float32 NaN", tensor.New("a", []int64{2}, []float32{1, nan32}), 1},
		{"float64 -Inf", tensor.New("a", []int64{2}, []float64{inf64, 1}), 0},
		{"float16 Inf", tensor.New("a", []int64{3}, []tensor.F16{tensor.NewF16(1), tensor.NewF16(1), tensor.NewF16(1e9)}), 2},
		{"float16 NaN", tensor.New("a", []int64{1}, []tensor.F16{tensor.NewF16(nan32)}), 0},
		{"float16 finite", tensor.New("a", []int64{1}, []tensor.F16{tensor.NewF16(65504)}), -1},
		{"bfloat16 NaN", tensor.New("a", []int64{2}, []tensor.BF16{0, tensor.NewBF16(nan32)}), 1},
		{"bfloat16 finite", tensor.New("a", []int64{1}, []tensor.BF16{tensor.NewBF16(3e38)}), -1},
		{"int64", tensor.New("a", []int64{1}, []int64{math.MaxInt64}), -1},
	}
	for _, tt := range tests {
		if got := tensor.FirstNonFinite(tt.t); got != tt.want {
			t.Errorf("%s: FirstNonFinite = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestCheckInputsAnyRank(t *testing.T) {
	want := []tensor.Info{{Name: "x", DType: tensor.Float32, AnyRank: true}}
	for _, shape := range [][]int64{{}, {3}, {1, 3}, {0, 2, 5}} {
		n, _ := tensor.NumElements(shape)
		in := []tensor.Tensor{tensor.New("x", shape, make([]float32, n))}
		if err := tensor.CheckInputs("m", want, in, make([]tensor.Tensor, 1)); err != nil {
			t.Errorf("shape %v: %v", shape, err)
		}
	}
	bad := map[string][]tensor.Tensor{
		"negative dimension": {tensor.New("x", []int64{-1}, []float32{})},
		"short data":         {tensor.New("x", []int64{2, 2}, []float32{1, 2, 3})},
		"wrong type":         {tensor.New("x", []int64{1}, []float64{1})},
	}
	for name, in := range bad {
		if err := tensor.CheckInputs("m", want, in, make([]tensor.Tensor, 1)); !errors.Is(err, tensor.ErrInvalidInput) {
			t.Errorf("%s: err = %v, want tensor.ErrInvalidInput", name, err)
		}
	}
	if s := want[0].String(); s != "x float32[...]" {
		t.Errorf("String() = %q", s)
	}
	if c := (tensor.Signature{Inputs: want}).Clone(); !c.Inputs[0].AnyRank {
		t.Error("Clone dropped AnyRank")
	}
}

// CheckInputs allocates nothing for inputs that fit, in or out of order.
func TestCheckInputsAllocatesNothing(t *testing.T) {
	want := []tensor.Info{
		{Name: "a", DType: tensor.Float32, Shape: []int64{-1, 3}},
		{Name: "b", DType: tensor.Int64, Shape: []int64{}},
	}
	a := tensor.New("a", []int64{2, 3}, make([]float32, 6))
	b := tensor.Scalar("b", int64(1))
	ordered := make([]tensor.Tensor, 2)
	for _, inputs := range [][]tensor.Tensor{{a, b}, {b, a}} {
		allocs := testing.AllocsPerRun(100, func() {
			if err := tensor.CheckInputs("m", want, inputs, ordered); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("CheckInputs allocated %v times", allocs)
		}
		if ordered[0].Name != "a" || ordered[1].Name != "b" {
			t.Errorf("ordered = %v, %v", ordered[0].Name, ordered[1].Name)
		}
	}
}
