package ladderhttp

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/ladder-ml/ladder/tensor"
)

// everyType is one tensor of every element type, scalars included.
var everyType = []tensor.Tensor{
	tensor.New("f32", []int64{2, 2}, []float32{1.5, -2, 3.25e-7, float32(math.Inf(1))}),
	tensor.New("f64", []int64{3}, []float64{math.Pi, -1e300, math.Inf(-1)}),
	tensor.New("f16", []int64{2}, []tensor.F16{tensor.NewF16(0.5), tensor.NewF16(-65504)}),
	tensor.New("bf16", []int64{2}, []tensor.BF16{tensor.NewBF16(1.5), tensor.NewBF16(-3e38)}),
	tensor.New("i8", []int64{2}, []int8{-128, 127}),
	tensor.New("i16", []int64{2}, []int16{-32768, 32767}),
	tensor.New("i32", []int64{2}, []int32{math.MinInt32, math.MaxInt32}),
	tensor.New("i64", []int64{2}, []int64{math.MinInt64, math.MaxInt64}),
	tensor.New("u8", []int64{2}, []uint8{0, 255}),
	tensor.New("u16", []int64{2}, []uint16{0, 65535}),
	tensor.New("u32", []int64{2}, []uint32{0, math.MaxUint32}),
	tensor.New("u64", []int64{2}, []uint64{0, math.MaxUint64}),
	tensor.New("yes", []int64{1, 2}, []bool{true, false}),
	tensor.New("words", []int64{3}, []string{"héllo", "quote\" back\\slash\n", "<&>\u2028"}),
	tensor.Scalar("s_f32", float32(0.25)),
	tensor.Scalar("s_i64", int64(-7)),
	tensor.Scalar("s_bool", true),
	tensor.Scalar("s_str", "scalar"),
	tensor.Scalar("s_f16", tensor.NewF16(2)),
	tensor.New("empty", []int64{0, 3}, []float32{}),
}

func requestOf(ts []tensor.Tensor) []byte {
	b := []byte(`{"inputs":{`)
	for i, t := range ts {
		b = appendString(comma(b, i), t.Name)
		b = append(b, ':')
		b = appendTensor(b, t)
	}
	return append(b, "}}"...)
}

func TestRoundTripEveryType(t *testing.T) {
	for _, want := range everyType {
		t.Run(want.Name, func(t *testing.T) {
			got, err := decodeRequest(requestOf([]tensor.Tensor{want}), "features")
			if err != nil {
				t.Fatalf("decode %s: %v", requestOf([]tensor.Tensor{want}), err)
			}
			if len(got) != 1 || got[0].Name != want.Name || !reflect.DeepEqual(got[0].Shape, want.Shape) || !reflect.DeepEqual(got[0].Data, want.Data) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestFastPathTakesTheCommonRequests(t *testing.T) {
	for _, body := range []string{
		`{"vector":[1,2.5,-3e-2]}`,
		` { "inputs" : { "b" : { "shape" : [1, 2], "dtype" : "int64", "data" : [1, -2] }, "a" : {"dtype":"bool","shape":[2],"data":[true,false]} } } `,
		string(requestOf(everyType[:13])),
	} {
		fast, ok := fastDecode([]byte(body), "features")
		full, err := decodeFull([]byte(body), "features")
		if !ok || err != nil || string(requestOf(fast)) != string(requestOf(full)) {
			t.Errorf("%s: fast %v, full %v", body, ok, err)
		}
	}
}

func TestScalarAsBareValue(t *testing.T) {
	for _, tc := range []struct {
		body string
		want any
	}{
		{`{"inputs":{"x":{"dtype":"float64","shape":[],"data":2.5}}}`, []float64{2.5}},
		{`{"inputs":{"x":{"dtype":"int8","shape":[],"data":-3}}}`, []int8{-3}},
		{`{"inputs":{"x":{"dtype":"bool","shape":[],"data":false}}}`, []bool{false}},
		{`{"inputs":{"x":{"dtype":"string","shape":[],"data":"hi"}}}`, []string{"hi"}},
		{`{"inputs":{"x":{"dtype":"float32","shape":[],"data":"NaN"}}}`, nil},
	} {
		got, err := decodeRequest([]byte(tc.body), "features")
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if len(got[0].Shape) != 0 {
			t.Errorf("%s: shape %v", tc.body, got[0].Shape)
		}
		if tc.want == nil {
			if f := got[0].Data.([]float32); len(f) != 1 || !math.IsNaN(float64(f[0])) {
				t.Errorf("%s: %v", tc.body, f)
			}
			continue
		}
		if !reflect.DeepEqual(got[0].Data, tc.want) {
			t.Errorf("%s: %#v, want %#v", tc.body, got[0].Data, tc.want)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct{ name, body, field, problem string }{
		{"int out of range", `{"inputs":{"x":{"dtype":"int8","shape":[1],"data":[128]}}}`, "inputs.x.data[0]", "out of range"},
		{"fraction for an int", `{"inputs":{"x":{"dtype":"int32","shape":[2],"data":[1,1.5]}}}`, "inputs.x.data[1]", "not an integer"},
		{"negative unsigned", `{"inputs":{"x":{"dtype":"uint16","shape":[1],"data":[-1]}}}`, "inputs.x.data[0]", "not an integer"},
		{"float16 overflow", `{"inputs":{"x":{"dtype":"float16","shape":[1],"data":[70000]}}}`, "inputs.x.data[0]", "out of range"},
		{"nested data", `{"inputs":{"x":{"dtype":"float32","shape":[1,2],"data":[[1,2]]}}}`, "inputs.x.data[0]", "nested"},
		{"string for a bool", `{"inputs":{"x":{"dtype":"bool","shape":[1],"data":["true"]}}}`, "inputs.x.data[0]", "not a boolean"},
		{"number for a string", `{"inputs":{"x":{"dtype":"string","shape":[1],"data":[1]}}}`, "inputs.x.data", "wrong element"},
		{"missing shape", `{"inputs":{"x":{"dtype":"float32","data":[1]}}}`, "inputs.x.shape", "missing shape"},
		{"negative dimension", `{"inputs":{"x":{"dtype":"float32","shape":[-1],"data":[1]}}}`, "inputs.x.shape[0]", "negative"},
		{"huge shape, little data", `{"inputs":{"x":{"dtype":"float32","shape":[1000000000000],"data":[1]}}}`, "inputs.x.data", "does not match"},
		{"overflowing shape", `{"inputs":{"x":{"dtype":"float32","shape":[4294967296,4294967296],"data":[1]}}}`, "inputs.x.shape", "overflows"},
		{"missing data", `{"inputs":{"x":{"dtype":"float32","shape":[1]}}}`, "inputs.x.data", "missing data"},
		{"bare value for a vector", `{"inputs":{"x":{"dtype":"float32","shape":[1],"data":1}}}`, "inputs.x.data", "not an array"},
		{"both forms", `{"inputs":{},"vector":[1]}`, "vector", "both"},
		{"no inputs", `{"inputs":{}}`, "inputs", "no inputs"},
		{"trailing data", `{"vector":[1]} {}`, "", "trailing"},
		{"vector not an array", `{"vector":1}`, "vector", "not an array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeRequest([]byte(tc.body), "features")
			var re *RequestError
			if !errors.As(err, &re) || !errors.Is(err, tensor.ErrInvalidInput) {
				t.Fatalf("err %v, want a *RequestError", err)
			}
			if re.Field != tc.field || !strings.Contains(re.Problem, tc.problem) || re.Expected == "" {
				t.Errorf("%+v, want field %q problem %q", re, tc.field, tc.problem)
			}
		})
	}
}

// FuzzDecode: the decoder never panics, what it accepts is a well-formed
// tensor, and encoding it and decoding it again gives the same tensor.
func FuzzDecode(f *testing.F) {
	f.Add(requestOf(everyType))
	f.Add([]byte(`{"vector":[1,2,3,4]}`))
	f.Add([]byte(`{"inputs":{"x":{"dtype":"string","shape":[],"data":"a\u00e9\\"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ts, err := decodeRequest(body, "features")
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RequestError", err)
			}
			return
		}
		for _, tt := range ts {
			n, ok := tensor.NumElements(tt.Shape)
			if tt.DType() == tensor.Invalid || !ok || int64(tt.Len()) != n {
				t.Fatalf("accepted a malformed tensor %#v", tt)
			}
		}
		if fast, ok := fastDecode(body, "features"); ok {
			full, err := decodeFull(body, "features")
			if err != nil {
				t.Fatalf("the fast path accepted what the full path refuses (%v): %q", err, body)
			}
			if a, b := requestOf(fast), requestOf(full); string(a) != string(b) {
				t.Fatalf("the fast and the full path disagree on %q:\n%s\n%s", body, a, b)
			}
		}
		again, err := decodeRequest(requestOf(ts), "features")
		if err != nil {
			t.Fatalf("re-decoding %s: %v", requestOf(ts), err)
		}
		if a, b := requestOf(ts), requestOf(again); string(a) != string(b) {
			t.Fatalf("round trip changed the tensors:\n%s\n%s", a, b)
		}
	})
}

func TestDecodeRoundsFloatsToTheirType(t *testing.T) {
	tests := []struct {
		name, body string
		want       any    // the data, when accepted
		problem    string // else what is wrong with data[1]
	}{
		{"float16 rounds down to its largest", `{"inputs":{"x":{"dtype":"float16","shape":[2],"data":[1,65519]}}}`, []tensor.F16{0x3c00, 0x7bff}, ""},
		{"float16 underflows to zero", `{"inputs":{"x":{"dtype":"float16","shape":[2],"data":[1,1e-8]}}}`, []tensor.F16{0x3c00, 0}, ""},
		{"float16 rounds to +Inf", `{"inputs":{"x":{"dtype":"float16","shape":[2],"data":[1,65520]}}}`, nil, "out of range"},
		{"bfloat16 rounds to +Inf", `{"inputs":{"x":{"dtype":"bfloat16","shape":[2],"data":[1,3.4e38]}}}`, nil, "out of range"},
		{"bfloat16 Inf stays", `{"inputs":{"x":{"dtype":"bfloat16","shape":[2],"data":[1,"-Inf"]}}}`, []tensor.BF16{0x3f80, 0xff80}, ""},
		{"float32 beyond its range", `{"inputs":{"x":{"dtype":"float32","shape":[2],"data":[1,3.5e38]}}}`, nil, "out of range"},
		{"float64 keeps its precision", `{"inputs":{"x":{"dtype":"float64","shape":[2],"data":[1,0.1]}}}`, []float64{1, 0.1}, ""},
		{"int16 below its range", `{"inputs":{"x":{"dtype":"int16","shape":[2],"data":[1,-32769]}}}`, nil, "out of range"},
		{"uint64 at its largest", `{"inputs":{"x":{"dtype":"uint64","shape":[2],"data":[1,18446744073709551615]}}}`, []uint64{1, math.MaxUint64}, ""},
		{"uint32 beyond its range", `{"inputs":{"x":{"dtype":"uint32","shape":[2],"data":[1,4294967296]}}}`, nil, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeRequest([]byte(tt.body), "features")
			if tt.problem == "" {
				if err != nil || !reflect.DeepEqual(got[0].Data, tt.want) {
					t.Fatalf("got %v, %v; want %v", got, err, tt.want)
				}
				return
			}
			var re *RequestError
			if !errors.As(err, &re) || re.Field != "inputs.x.data[1]" || re.Problem != tt.problem {
				t.Fatalf("err %v, want %q at inputs.x.data[1]", err, tt.problem)
			}
		})
	}
}

// A shape asking for fewer elements than the data holds is refused for
// its length, once every element has been checked.
func TestDecodeChecksElementsBeyondTheShape(t *testing.T) {
	tests := []struct{ name, body, problem string }{
		{"too many", `{"inputs":{"x":{"dtype":"int8","shape":[1],"data":[1,2,3]}}}`, "data length does not match shape"},
		{"an extra int out of range", `{"inputs":{"x":{"dtype":"int8","shape":[1],"data":[1,200]}}}`, "out of range"},
		{"an extra float16 out of range", `{"inputs":{"x":{"dtype":"float16","shape":[1],"data":[1,1e9]}}}`, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeRequest([]byte(tt.body), "features")
			var re *RequestError
			if !errors.As(err, &re) || re.Problem != tt.problem {
				t.Errorf("err %v, want %q", err, tt.problem)
			}
		})
	}
}
