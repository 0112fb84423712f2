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
	for d := tensor.Invalid + 1; d.Kind() != tensor.KindInvalid; d++ { // every element type
		m[d.String()] = d
	}
	return m
}()

func dtypeNames() string {
	names := make([]string, 0, len(dtypes))
	for d := tensor.Invalid + 1; d.Kind() != tensor.KindInvalid; d++ { // every element type
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
	if dt.Kind() == tensor.KindInvalid {
		return nil, 0, &RequestError{Problem: "unsupported dtype", Expected: "one of " + dtypeNames(), Got: dt.String()}
	}
	p := newParser(dt)
	n := want
	if n < 0 {
		n, _ = elements(raw, p.name, func(int, []byte) string { return "" })
	}
	t := tensor.Tensor{Data: tensor.Make(dt, n)}
	var spare tensor.Tensor // room to check an element beyond the n expected
	got, err := elements(raw, p.name, func(i int, tok []byte) string {
		if i < n {
			return p.parse(t, i, tok)
		}
		if spare.Data == nil {
			spare.Data = tensor.Make(dt, 1)
		}
		return p.parse(spare, 0, tok)
	})
	if err != nil {
		return nil, 0, err
	}
	return t.Data, got, nil
}

// elements walks raw, a JSON array of scalars or one bare scalar, and
// calls parse with each element's index and token; a problem that parse
// returns refuses the element. It returns how many elements there were.
// expected names an element, in errors.
func elements(raw []byte, expected string, parse func(i int, tok []byte) string) (int, *RequestError) {
	sc := scanner{b: raw}
	sc.space()
	array := sc.peek() == '['
	if array {
		sc.i++
		sc.space()
		if sc.peek() == ']' {
			return 0, nil
		}
	}
	for i := 0; ; i++ {
		tok, err := sc.scalar()
		if err != nil {
			err.Field = "[" + strconv.Itoa(i) + "]"
			err.Expected = expected
			return 0, err
		}
		if problem := parse(i, tok); problem != "" {
			return 0, &RequestError{Field: "[" + strconv.Itoa(i) + "]", Problem: problem, Expected: expected, Got: clip(tok)}
		}
		if !array {
			return 1, nil
		}
		sc.space()
		switch sc.peek() {
		case ',':
			sc.i++
			sc.space()
		case ']':
			return i + 1, nil
		default:
			return 0, &RequestError{Problem: "malformed array", Expected: "',' or ']'"}
		}
	}
}

// parser reads JSON elements into data of one element type, by its
// kind: numbers in the type's range, or true and false.
type parser struct {
	kind   tensor.Kind
	bits   int    // the precision or size to parse at
	narrow bool   // a float type narrower than bits, whose range parsing does not check
	name   string // what an element is, for errors
}

func newParser(dt tensor.DType) parser {
	p := parser{kind: dt.Kind(), bits: 8 * dt.Size()}
	switch p.kind {
	case tensor.KindFloat:
		p.name = "a " + dt.String() + " number"
		if p.bits < 32 {
			p.bits, p.narrow = 32, true // float16 and bfloat16 are rounded from a float32
		}
	case tensor.KindBool:
		p.name = "true or false"
	default:
		p.name = "an integer in " + dt.String() + "'s range"
	}
	return p
}

// parse reads tok into element i of t, and returns what is wrong with
// it, or "". A float out of range is one that rounds to ±Inf.
func (p *parser) parse(t tensor.Tensor, i int, tok []byte) string {
	switch p.kind {
	case tensor.KindFloat:
		f, problem := parseFloat(tok, p.bits)
		if problem != "" {
			return problem
		}
		tensor.SetFloat64At(t, i, f)
		if p.narrow && !math.IsInf(f, 0) && math.IsInf(tensor.Float64At(t, i), 0) {
			return "out of range"
		}
	case tensor.KindInt:
		v, err := strconv.ParseInt(string(tok), 10, p.bits)
		if err != nil {
			return intProblem(err)
		}
		tensor.SetInt64At(t, i, v)
	case tensor.KindUint:
		v, err := strconv.ParseUint(string(tok), 10, p.bits)
		if err != nil {
			return intProblem(err)
		}
		tensor.SetUint64At(t, i, v)
	case tensor.KindBool:
		v, problem := parseBool(tok)
		if problem != "" {
			return problem
		}
		d, _ := tensor.Data[bool](t)
		d[i] = v
	}
	return ""
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

func parseBool(tok []byte) (bool, string) {
	switch string(tok) {
	case "true":
		return true, ""
	case "false":
		return false, ""
	}
	return false, "not a boolean"
}

func intProblem(err error) string {
	if errors.Is(err, strconv.ErrRange) {
		return "out of range"
	}
	return "not an integer"
}
