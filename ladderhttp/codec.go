package ladderhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/ladder-ml/ladder/tensor"
)

// RequestError is a request the handler refused before any rung ran: a
// body that is not the JSON it expects, or an input that does not fit the
// ladder. It names the offending field and what was expected, and the
// handler answers it with 400 Bad Request. It matches
// [tensor.ErrInvalidInput].
type RequestError struct {
	Field    string // the offending JSON field, e.g. "inputs.features.shape"
	Problem  string // what is wrong
	Expected string // what the handler or the ladder expects
	Got      string // what the request sent, when it helps
}

func (e *RequestError) Error() string {
	s := "ladderhttp: invalid request"
	if e.Field != "" {
		s += ": " + e.Field
	}
	s += ": " + e.Problem
	if e.Expected != "" {
		s += ": expected " + e.Expected
	}
	if e.Got != "" {
		s += ", got " + e.Got
	}
	return s
}

// Is reports whether target is [tensor.ErrInvalidInput].
func (e *RequestError) Is(target error) bool { return target == tensor.ErrInvalidInput }

// wireTensor is one tensor as JSON: {"dtype": "float32", "shape": [1, 30],
// "data": [...]}. Data is flat, row-major; a scalar's data may be a bare
// value.
type wireTensor struct {
	DType string          `json:"dtype"`
	Shape []int64         `json:"shape"`
	Data  json.RawMessage `json:"data"`
}

// wireRequest is a prediction request: named inputs, or the shorthand
// "vector" for a single float32 row.
type wireRequest struct {
	Inputs map[string]wireTensor `json:"inputs"`
	Vector json.RawMessage       `json:"vector"`
}

var dtypes = func() map[string]tensor.DType {
	m := map[string]tensor.DType{}
	for d := tensor.Float32; d <= tensor.BFloat16; d++ {
		m[d.String()] = d
	}
	return m
}()

func dtypeNames() string {
	names := make([]string, 0, len(dtypes))
	for d := tensor.Float32; d <= tensor.BFloat16; d++ {
		names = append(names, d.String())
	}
	return strings.Join(names, ", ")
}

// decodeRequest parses a request body into input tensors, sorted by name so
// that the same request always makes the same cache key. vectorInput names
// the tensor the "vector" shorthand becomes. Every error is a
// *RequestError.
func decodeRequest(body []byte, vectorInput string) ([]tensor.Tensor, error) {
	if ts, ok := fastDecode(body, vectorInput); ok {
		return ts, nil
	}
	return decodeFull(body, vectorInput)
}

// decodeFull parses any body with encoding/json, and names the field at
// fault when the body is not a valid request.
func decodeFull(body []byte, vectorInput string) ([]tensor.Tensor, error) {
	var req wireRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &RequestError{Problem: "trailing data after the JSON object", Expected: "one JSON object"}
	}
	switch {
	case req.Inputs != nil && req.Vector != nil:
		return nil, &RequestError{Field: "vector", Problem: "both inputs and vector given", Expected: "one of them"}
	case req.Vector != nil:
		data, n, err := decodeData(req.Vector, tensor.Float32, -1)
		if err != nil {
			err.Field = "vector" + err.Field
			return nil, err
		}
		if !isArray(req.Vector) {
			return nil, &RequestError{Field: "vector", Problem: "not an array", Expected: "an array of float32 numbers"}
		}
		return []tensor.Tensor{{Name: vectorInput, Shape: []int64{1, int64(n)}, Data: data}}, nil
	case len(req.Inputs) == 0:
		return nil, &RequestError{Field: "inputs", Problem: "no inputs", Expected: `"inputs": {"name": {"dtype", "shape", "data"}} or "vector": [...]`}
	}
	names := make([]string, 0, len(req.Inputs))
	for name := range req.Inputs {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]tensor.Tensor, len(names))
	for i, name := range names {
		t, err := decodeTensor(name, req.Inputs[name])
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

func decodeTensor(name string, w wireTensor) (tensor.Tensor, error) {
	field := "inputs." + name
	dt, ok := dtypes[w.DType]
	if !ok {
		problem := "unknown dtype"
		if w.DType == "" {
			problem = "missing dtype"
		}
		return tensor.Tensor{}, &RequestError{Field: field + ".dtype", Problem: problem, Expected: "one of " + dtypeNames(), Got: strconv.Quote(w.DType)}
	}
	if w.Shape == nil {
		return tensor.Tensor{}, &RequestError{Field: field + ".shape", Problem: "missing shape", Expected: "an array of dimensions, [] for a scalar"}
	}
	for d, n := range w.Shape {
		if n < 0 {
			return tensor.Tensor{}, &RequestError{Field: fmt.Sprintf("%s.shape[%d]", field, d), Problem: "negative dimension", Expected: "a size ≥ 0", Got: strconv.FormatInt(n, 10)}
		}
	}
	n, ok := tensor.NumElements(w.Shape)
	if !ok {
		return tensor.Tensor{}, &RequestError{Field: field + ".shape", Problem: "element count overflows", Expected: "a shape of fewer than 2^63 elements", Got: tensor.ShapeString(w.Shape)}
	}
	if w.Data == nil {
		return tensor.Tensor{}, &RequestError{Field: field + ".data", Problem: "missing data", Expected: fmt.Sprintf("%d %s elements", n, dt)}
	}
	if !isArray(w.Data) && len(w.Shape) > 0 {
		return tensor.Tensor{}, &RequestError{Field: field + ".data", Problem: "not an array", Expected: fmt.Sprintf("an array of %d %s elements", n, dt)}
	}
	// Each element takes at least one byte of the body, so a shape that
	// asks for more elements than that is refused before allocating.
	if n > int64(len(w.Data)) {
		return tensor.Tensor{}, lengthError(field, n, dt, w.Shape, -1)
	}
	data, got, err := decodeData(w.Data, dt, int(n))
	if err != nil {
		err.Field = field + ".data" + err.Field
		return tensor.Tensor{}, err
	}
	if int64(got) != n {
		return tensor.Tensor{}, lengthError(field, n, dt, w.Shape, got)
	}
	return tensor.Tensor{Name: name, Shape: w.Shape, Data: data}, nil
}

func lengthError(field string, n int64, dt tensor.DType, shape []int64, got int) *RequestError {
	e := &RequestError{Field: field + ".data", Problem: "data length does not match shape",
		Expected: fmt.Sprintf("%d %s elements for shape %s", n, dt, tensor.ShapeString(shape))}
	if got >= 0 {
		e.Got = strconv.Itoa(got)
	} else {
		e.Got = "fewer"
	}
	return e
}

func isArray(raw json.RawMessage) bool {
	b := bytes.TrimLeft(raw, " \t\r\n")
	return len(b) > 0 && b[0] == '['
}

// jsonError turns encoding/json's error into a RequestError naming the
// field.
func jsonError(err error) *RequestError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &RequestError{Problem: "malformed JSON at byte " + strconv.FormatInt(syn.Offset, 10) + ": " + syn.Error(), Expected: "a JSON object"}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return &RequestError{Field: field, Problem: "wrong JSON type", Expected: jsonTypeName(typ.Type.String()), Got: "JSON " + typ.Value}
	case errors.Is(err, io.EOF):
		return &RequestError{Problem: "empty body", Expected: "a JSON object"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &RequestError{Problem: "malformed JSON: unexpected end of body", Expected: "a JSON object"}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &RequestError{Field: strings.Trim(f, `"`), Problem: "unknown field", Expected: `"inputs" or "vector"; in an input "dtype", "shape" and "data"`}
	}
	return &RequestError{Problem: "malformed JSON: " + msg, Expected: "a JSON object"}
}

func jsonTypeName(goType string) string {
	switch goType {
	case "ladderhttp.wireRequest", "map[string]ladderhttp.wireTensor", "ladderhttp.wireTensor":
		return "an object"
	case "[]int64":
		return "an array of integer dimensions"
	case "int64":
		return "an integer dimension"
	case "string":
		return "a string"
	}
	return goType
}

// decodeData parses a JSON array (or, for a scalar, a bare value) of
// elements of type dt. want is the expected element count, or -1. It
// returns the slice and how many elements there were. The input has
// already been checked to be valid JSON.
func decodeData(raw []byte, dt tensor.DType, want int) (any, int, *RequestError) {
	if dt == tensor.String {
		var s []string
		var err error
		if isArray(raw) {
			err = json.Unmarshal(raw, &s)
		} else {
			s = make([]string, 1)
			err = json.Unmarshal(raw, &s[0])
		}
		if err != nil {
			return nil, 0, &RequestError{Problem: "wrong element", Expected: "strings", Got: strings.TrimPrefix(err.Error(), "json: ")}
		}
		return s, len(s), nil
	}
	c := max(want, 0)
	switch dt {
	case tensor.Float32:
		return elements(raw, c, parseFloat32)
	case tensor.Float64:
		return elements(raw, c, parseFloat64)
	case tensor.Float16:
		return elements(raw, c, parseF16)
	case tensor.BFloat16:
		return elements(raw, c, parseBF16)
	case tensor.Bool:
		return elements(raw, c, parseBool)
	case tensor.Int8:
		return elements(raw, c, parseInt[int8])
	case tensor.Int16:
		return elements(raw, c, parseInt[int16])
	case tensor.Int32:
		return elements(raw, c, parseInt[int32])
	case tensor.Int64:
		return elements(raw, c, parseInt[int64])
	case tensor.Uint8:
		return elements(raw, c, parseUint[uint8])
	case tensor.Uint16:
		return elements(raw, c, parseUint[uint16])
	case tensor.Uint32:
		return elements(raw, c, parseUint[uint32])
	case tensor.Uint64:
		return elements(raw, c, parseUint[uint64])
	}
	return nil, 0, &RequestError{Problem: "unsupported dtype", Expected: "one of " + dtypeNames(), Got: dt.String()}
}

// elements parses the elements of raw, a JSON array of scalars or one bare
// scalar, with parse.
func elements[T any](raw []byte, capacity int, parse func(tok []byte) (T, string)) (any, int, *RequestError) {
	s := make([]T, 0, capacity)
	sc := scanner{b: raw}
	sc.space()
	array := sc.peek() == '['
	if array {
		sc.i++
		sc.space()
		if sc.peek() == ']' {
			return s, 0, nil
		}
	}
	for {
		tok, err := sc.scalar()
		if err != nil {
			err.Field = "[" + strconv.Itoa(len(s)) + "]"
			var zero T
			err.Expected = elementName(zero)
			return nil, 0, err
		}
		v, problem := parse(tok)
		if problem != "" {
			var zero T
			return nil, 0, &RequestError{Field: "[" + strconv.Itoa(len(s)) + "]", Problem: problem, Expected: elementName(zero), Got: clip(tok)}
		}
		s = append(s, v)
		if !array {
			return s, 1, nil
		}
		sc.space()
		switch sc.peek() {
		case ',':
			sc.i++
			sc.space()
		case ']':
			return s, len(s), nil
		default:
			return nil, 0, &RequestError{Problem: "malformed array", Expected: "',' or ']'"}
		}
	}
}

func elementName(v any) string {
	switch v.(type) {
	case float32:
		return "a float32 number"
	case float64:
		return "a float64 number"
	case tensor.F16:
		return "a float16 number"
	case tensor.BF16:
		return "a bfloat16 number"
	case bool:
		return "true or false"
	}
	return fmt.Sprintf("an integer in %T's range", v)
}

func clip(tok []byte) string {
	if len(tok) > 40 {
		return string(tok[:40]) + "…"
	}
	return string(tok)
}

// scanner walks JSON that encoding/json has already accepted.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// scalar returns the next scalar token: a number, a literal, or a string
// with its quotes. Arrays and objects are refused: data is flat.
func (s *scanner) scalar() ([]byte, *RequestError) {
	start := s.i
	switch s.peek() {
	case '[', '{':
		return nil, &RequestError{Problem: "nested array or object: data is flat, in row-major order"}
	case '"':
		s.i++
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '\\':
				s.i += 2
				continue
			case '"':
				s.i++
				return s.b[start:s.i], nil
			}
			s.i++
		}
		return nil, &RequestError{Problem: "unterminated string"}
	case 0:
		return nil, &RequestError{Problem: "missing element"}
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', ']', ' ', '\t', '\r', '\n':
			return s.b[start:s.i], nil
		}
		s.i++
	}
	return s.b[start:s.i], nil
}

// parseFloat reads a JSON number, or one of the strings "NaN", "Inf",
// "+Inf" and "-Inf", at the given precision. An out-of-range number is an
// error, not ±Inf.
func parseFloat(tok []byte, bits int) (float64, string) {
	if len(tok) > 0 && tok[0] == '"' {
		switch string(tok) {
		case `"NaN"`:
			return math.NaN(), ""
		case `"Inf"`, `"+Inf"`, `"Infinity"`:
			return math.Inf(1), ""
		case `"-Inf"`, `"-Infinity"`:
			return math.Inf(-1), ""
		}
		return 0, "not a number"
	}
	if len(tok) == 0 || !(tok[0] == '-' || (tok[0] >= '0' && tok[0] <= '9')) {
		return 0, "not a number"
	}
	f, err := strconv.ParseFloat(string(tok), bits)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) && !math.IsInf(f, 0) {
			return f, "" // underflow to zero or a denormal is fine
		}
		return 0, "out of range"
	}
	return f, ""
}

func parseFloat32(tok []byte) (float32, string) {
	f, p := parseFloat(tok, 32)
	return float32(f), p
}

func parseFloat64(tok []byte) (float64, string) { return parseFloat(tok, 64) }

func parseF16(tok []byte) (tensor.F16, string) {
	f, p := parseFloat(tok, 32)
	if p == "" && !math.IsInf(f, 0) && math.Abs(f) > 65504 {
		return 0, "out of range"
	}
	return tensor.NewF16(float32(f)), p
}

func parseBF16(tok []byte) (tensor.BF16, string) {
	f, p := parseFloat(tok, 32)
	return tensor.NewBF16(float32(f)), p
}

func parseBool(tok []byte) (bool, string) {
	switch string(tok) {
	case "true":
		return true, ""
	case "false":
		return false, ""
	}
	return false, "not a boolean"
}

type signed interface {
	~int8 | ~int16 | ~int32 | ~int64
}
type unsigned interface {
	~uint8 | ~uint16 | ~uint32 | ~uint64
}

func parseInt[T signed](tok []byte) (T, string) {
	v, err := strconv.ParseInt(string(tok), 10, int(unsafeSize[T]()*8))
	if err != nil {
		return 0, intProblem(tok, err)
	}
	return T(v), ""
}

func parseUint[T unsigned](tok []byte) (T, string) {
	v, err := strconv.ParseUint(string(tok), 10, int(unsafeSize[T]()*8))
	if err != nil {
		return 0, intProblem(tok, err)
	}
	return T(v), ""
}

func unsafeSize[T signed | unsigned]() uintptr {
	var z T
	return unsafe.Sizeof(z)
}

func intProblem(_ []byte, err error) string {
	if errors.Is(err, strconv.ErrRange) {
		return "out of range"
	}
	return "not an integer"
}
