package tensor_test

import (
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/ladder-ml/ladder/tensor"
)

// everyDType is one case per element type: two elements of it, their
// little-endian bytes and, for numbers, their values as float64s.
var everyDType = []struct {
	dtype  tensor.DType
	kind   tensor.Kind
	data   any
	bytes  []byte    // little-endian; nil for strings
	values []float64 // nil for bools and strings
}{
	{tensor.Float32, tensor.KindFloat, []float32{1.5, -2}, le(uint32(0x3fc00000), uint32(0xc0000000)), []float64{1.5, -2}},
	{tensor.Float64, tensor.KindFloat, []float64{0.25, math.Inf(1)}, le(uint64(0x3fd0000000000000), uint64(0x7ff0000000000000)), []float64{0.25, math.Inf(1)}},
	{tensor.Int32, tensor.KindInt, []int32{-1, 1 << 30}, le(int32(-1), int32(1<<30)), []float64{-1, 1 << 30}},
	{tensor.Int64, tensor.KindInt, []int64{-3, 1<<53 + 1}, le(int64(-3), int64(1<<53+1)), []float64{-3, 1 << 53}},
	{tensor.Bool, tensor.KindBool, []bool{true, false}, []byte{1, 0}, nil},
	{tensor.String, tensor.KindString, []string{"a", "bc"}, nil, nil},
	{tensor.Int8, tensor.KindInt, []int8{-128, 7}, []byte{0x80, 7}, []float64{-128, 7}},
	{tensor.Uint8, tensor.KindUint, []uint8{255, 0}, []byte{255, 0}, []float64{255, 0}},
	{tensor.Int16, tensor.KindInt, []int16{-2, 0x0102}, le(int16(-2), int16(0x0102)), []float64{-2, 0x0102}},
	{tensor.Uint16, tensor.KindUint, []uint16{65535, 1}, le(uint16(65535), uint16(1)), []float64{65535, 1}},
	{tensor.Uint32, tensor.KindUint, []uint32{math.MaxUint32, 2}, le(uint32(math.MaxUint32), uint32(2)), []float64{math.MaxUint32, 2}},
	{tensor.Uint64, tensor.KindUint, []uint64{math.MaxUint64, 3}, le(uint64(math.MaxUint64), uint64(3)), []float64{math.MaxUint64, 3}},
	{tensor.Float16, tensor.KindFloat, []tensor.F16{0x3c00, 0xfc00}, le(uint16(0x3c00), uint16(0xfc00)), []float64{1, math.Inf(-1)}},
	{tensor.BFloat16, tensor.KindFloat, []tensor.BF16{0x3f80, 0xc040}, le(uint16(0x3f80), uint16(0xc040)), []float64{1, -3}},
}

func le(vs ...any) []byte {
	var b []byte
	for _, v := range vs {
		b, _ = binary.Append(b, binary.LittleEndian, v)
	}
	return b
}

func TestDispatcherCoversEveryDType(t *testing.T) {
	// Given one case per element type, in DType order,
	if len(everyDType) != int(tensor.BFloat16) {
		t.Fatalf("%d cases for %d element types", len(everyDType), tensor.BFloat16)
	}
	for i, tt := range everyDType {
		if tt.dtype != tensor.DType(i+1) {
			t.Fatalf("case %d is %v, want %v", i, tt.dtype, tensor.DType(i+1))
		}
		t.Run(tt.dtype.String(), func(t *testing.T) {
			x := tensor.Tensor{Name: "x", Shape: []int64{2}, Data: tt.data}
			// then the type switch and the table agree on the type,
			if x.DType() != tt.dtype || x.Len() != 2 || tt.dtype.Kind() != tt.kind {
				t.Fatalf("DType %v, Len %d, Kind %v", x.DType(), x.Len(), tt.dtype.Kind())
			}
			// Make returns zeroed data of the type,
			z := tensor.Tensor{Data: tensor.Make(tt.dtype, 3)}
			if z.DType() != tt.dtype || z.Len() != 3 || !reflect.ValueOf(z.Data).Index(2).IsZero() {
				t.Fatalf("Make(%v, 3) = %#v", tt.dtype, z.Data)
			}
			// Bytes is the elements' memory, of Size bytes each,
			b, ok := tensor.Bytes(x)
			if want := tt.bytes; ok != (want != nil) || (ok && !reflect.DeepEqual(b, nativeOrder(want, tt.dtype.Size()))) {
				t.Fatalf("Bytes = %v, %v; want % x", b, ok, want)
			}
			if ok && len(b) != 2*tt.dtype.Size() {
				t.Fatalf("Size %d for %d bytes", tt.dtype.Size(), len(b))
			}
			// Float64s has every number's value,
			if f, ok := tensor.Float64s(x); ok != (tt.values != nil) || !reflect.DeepEqual(f, tt.values) {
				t.Fatalf("Float64s = %v, %v; want %v", f, ok, tt.values)
			}
			// and Clone copies the data.
			c := x.Clone()
			if !reflect.DeepEqual(c.Data, x.Data) {
				t.Fatalf("Clone = %#v", c.Data)
			}
			reflect.ValueOf(c.Data).Index(0).SetZero()
			if reflect.DeepEqual(c.Data, x.Data) {
				t.Fatal("Clone shares the data")
			}
		})
	}
}

// nativeOrder returns the little-endian elements of le, of size bytes
// each, in the machine's byte order.
func nativeOrder(le []byte, size int) []byte {
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return le
	}
	out := make([]byte, len(le))
	for i := 0; i < len(le); i += size {
		for j := range size {
			out[i+j] = le[i+size-1-j]
		}
	}
	return out
}

func TestReadAndWriteByKind(t *testing.T) {
	for _, tt := range everyDType {
		t.Run(tt.dtype.String(), func(t *testing.T) {
			x := tensor.Tensor{Name: "x", Shape: []int64{2}, Data: tensor.Make(tt.dtype, 2)}
			// Each kind is written and read back through its own pair of
			// functions; the others panic.
			got := map[string]bool{}
			try := func(name string, f func()) {
				defer func() {
					r := recover()
					if r != nil && !strings.Contains(r.(string), "tensor: "+name+" of "+tt.dtype.String()) {
						t.Errorf("%s panicked with %v", name, r)
					}
					got[name] = r == nil
				}()
				f()
			}
			try("SetFloat64At", func() { tensor.SetFloat64At(x, 1, -1.5) })
			try("Float64At", func() {
				if v := tensor.Float64At(x, 1); v != -1.5 {
					t.Errorf("Float64At = %v", v)
				}
			})
			try("SetInt64At", func() { tensor.SetInt64At(x, 1, -7) })
			try("Int64At", func() {
				if v := tensor.Int64At(x, 1); v != -7 {
					t.Errorf("Int64At = %v", v)
				}
			})
			try("SetUint64At", func() { tensor.SetUint64At(x, 1, 9) })
			try("Uint64At", func() {
				if v := tensor.Uint64At(x, 1); v != 9 {
					t.Errorf("Uint64At = %v", v)
				}
			})
			want := map[string]bool{
				"SetFloat64At": tt.kind == tensor.KindFloat, "Float64At": tt.kind == tensor.KindFloat,
				"SetInt64At": tt.kind == tensor.KindInt, "Int64At": tt.kind == tensor.KindInt,
				"SetUint64At": tt.kind == tensor.KindUint, "Uint64At": tt.kind == tensor.KindUint,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("worked: %v, want %v", got, want)
			}
		})
	}
}

func TestSetRoundsAndTruncates(t *testing.T) {
	tests := []struct {
		name string
		data any
		set  func(tensor.Tensor)
		want any
	}{
		{"float32 rounds", make([]float32, 1), func(x tensor.Tensor) { tensor.SetFloat64At(x, 0, 0.1) }, []float32{0.1}},
		{"float32 overflows to +Inf", make([]float32, 1), func(x tensor.Tensor) { tensor.SetFloat64At(x, 0, 1e300) }, []float32{float32(math.Inf(1))}},
		{"float16 rounds", make([]tensor.F16, 1), func(x tensor.Tensor) { tensor.SetFloat64At(x, 0, 65519) }, []tensor.F16{0x7bff}},
		{"float16 overflows to -Inf", make([]tensor.F16, 1), func(x tensor.Tensor) { tensor.SetFloat64At(x, 0, -65520) }, []tensor.F16{0xfc00}},
		{"bfloat16 rounds", make([]tensor.BF16, 1), func(x tensor.Tensor) { tensor.SetFloat64At(x, 0, 3.14159) }, []tensor.BF16{0x4049}},
		{"int8 truncates", make([]int8, 1), func(x tensor.Tensor) { tensor.SetInt64At(x, 0, 0x181) }, []int8{-127}},
		{"uint16 truncates", make([]uint16, 1), func(x tensor.Tensor) { tensor.SetUint64At(x, 0, 0x10002) }, []uint16{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := tensor.Tensor{Shape: []int64{1}, Data: tt.data}
			tt.set(x)
			if !reflect.DeepEqual(x.Data, tt.want) {
				t.Errorf("got %v, want %v", x.Data, tt.want)
			}
		})
	}
}

func TestDispatcherOnUnsupportedData(t *testing.T) {
	tests := []struct {
		name string
		data any
	}{
		{"nil", nil},
		{"complex64 slice", []complex64{1}},
		{"named slice type", namedFloats{1}},
		{"a bare float", float32(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := tensor.Tensor{Data: tt.data}
			if x.DType() != tensor.Invalid || x.Len() != 0 || tensor.FirstNonFinite(x) != -1 {
				t.Errorf("DType %v, Len %d", x.DType(), x.Len())
			}
			if b, ok := tensor.Bytes(x); ok || b != nil {
				t.Errorf("Bytes = %v, %v", b, ok)
			}
			if f, ok := tensor.Float64s(x); ok || f != nil {
				t.Errorf("Float64s = %v, %v", f, ok)
			}
			if c := x.Clone(); !reflect.DeepEqual(c.Data, tt.data) {
				t.Errorf("Clone = %#v", c.Data)
			}
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(r.(string), "tensor: Float64At of ") {
					t.Errorf("Float64At panicked with %v", r)
				}
			}()
			tensor.Float64At(x, 0)
		})
	}
	for _, dt := range []tensor.DType{tensor.Invalid, -1, tensor.BFloat16 + 1} {
		if tensor.Make(dt, 1) != nil || dt.Size() != 0 || dt.Kind() != tensor.KindInvalid {
			t.Errorf("%v: Make, Size or Kind of no element type", dt)
		}
	}
	if s := tensor.Kind(99).String(); s != "Kind(99)" {
		t.Errorf("Kind(99).String() = %q", s)
	}
}

type namedFloats []float32

// Reading a tensor's type, length, bytes and elements allocates nothing:
// the cache key and the models layer do it on every request.
func TestDispatcherAllocatesNothing(t *testing.T) {
	x := tensor.New("x", []int64{1, 30}, make([]float32, 30))
	h := tensor.New("h", []int64{2}, []tensor.F16{1, 2})
	n := testing.AllocsPerRun(100, func() {
		b, _ := tensor.Bytes(x)
		if x.DType() != tensor.Float32 || x.Len() != 30 || len(b) != 120 || tensor.FirstNonFinite(h) != -1 {
			t.Fatal("wrong answers")
		}
		tensor.SetFloat64At(x, 3, tensor.Float64At(x, 2))
		tensor.SetFloat64At(h, 0, tensor.Float64At(h, 1))
	})
	if n != 0 {
		t.Errorf("allocated %v times", n)
	}
}

func TestSameDataComparesTypeAndBits(t *testing.T) {
	for _, tt := range everyDType {
		t.Run(tt.dtype.String(), func(t *testing.T) {
			x := tensor.Tensor{Data: tt.data}
			// Given a copy of the data, it is the same,
			if !tensor.SameData(x, x.Clone()) {
				t.Fatal("a copy is not the same data")
			}
			// and shorter data of the same type is not,
			if tensor.SameData(x, tensor.Tensor{Data: tensor.Make(tt.dtype, 1)}) {
				t.Fatal("one element is the same as two")
			}
			// nor data of another type, even with the same bits.
			other := tensor.Int8
			if tt.dtype == tensor.Int8 {
				other = tensor.Uint8
			}
			if tensor.SameData(x, tensor.Tensor{Data: tensor.Make(other, 2)}) {
				t.Fatalf("%v data is the same as %v data", tt.dtype, other)
			}
		})
	}
	nan := float32(math.NaN())
	if !tensor.SameData(tensor.Tensor{Data: []float32{nan}}, tensor.Tensor{Data: []float32{nan}}) {
		t.Fatal("the same NaN is not the same, bit for bit")
	}
	if tensor.SameData(tensor.Tensor{Data: []float32{0}}, tensor.Tensor{Data: []float32{float32(math.Copysign(0, -1))}}) {
		t.Fatal("0 and -0 are the same bit for bit")
	}
	if tensor.SameData(tensor.Tensor{Data: []complex64{1}}, tensor.Tensor{Data: []complex64{1}}) {
		t.Fatal("data of no element type is the same")
	}
}
