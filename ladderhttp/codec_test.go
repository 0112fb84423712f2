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
