package ladderhttp

import (
	"strconv"

	"github.com/ladder-ml/ladder/tensor"
)

// fastDecode parses the common request in one pass: the "vector"
// shorthand, or named inputs of numeric or bool tensors, with plain keys.
// It accepts only JSON it has checked in full and returns false for
// anything else (an escape in a key, a string tensor, a duplicate or
// unknown key, any error), which decodeRequest then parses with
// encoding/json to name what is wrong. What it accepts, it decodes
// exactly as decodeRequest's full path does: FuzzDecode checks that.
func fastDecode(body []byte, vectorInput string) ([]tensor.Tensor, bool) {
	s := scanner{b: body}
	if !s.consume('{') {
		return nil, false
	}
	key, ok := s.key()
	if !ok {
		return nil, false
	}
	var out []tensor.Tensor
	switch key {
	case "vector":
		data, n, ok := s.numbers(tensor.Float32)
		if !ok {
			return nil, false
		}
		out = []tensor.Tensor{{Name: vectorInput, Shape: []int64{1, int64(n)}, Data: data}}
	case "inputs":
		if out, ok = s.inputs(); !ok {
			return nil, false
		}
	default:
		return nil, false
	}
	if !s.consume('}') {
		return nil, false
	}
	s.space()
	return out, s.i == len(s.b)
}

// consume skips white space and then c, and reports whether c was there.
func (s *scanner) consume(c byte) bool {
	s.space()
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// key reads `"name":`, for a name without escapes or control characters.
func (s *scanner) key() (string, bool) {
	name, ok := s.plainString()
	return name, ok && s.consume(':')
}

func (s *scanner) plainString() (string, bool) {
	if !s.consume('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return string(s.b[start : s.i-1]), true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false
		}
		s.i++
	}
	return "", false
}

// inputs reads {"name": {"dtype": ..., "shape": [...], "data": [...]}, ...}
// and returns the tensors sorted by name.
func (s *scanner) inputs() ([]tensor.Tensor, bool) {
	if !s.consume('{') {
		return nil, false
	}
	var out []tensor.Tensor
	for {
		name, ok := s.key()
		if !ok {
			return nil, false
		}
		for _, t := range out {
			if t.Name == name {
				return nil, false
			}
		}
		t, ok := s.tensor(name)
		if !ok {
			return nil, false
		}
		// Insert sorted: requests have few inputs.
		i := len(out)
		out = append(out, t)
		for ; i > 0 && out[i-1].Name > name; i-- {
			out[i] = out[i-1]
		}
		out[i] = t
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return out, true
		default:
			return nil, false
		}
	}
}

func (s *scanner) tensor(name string) (tensor.Tensor, bool) {
	if !s.consume('{') {
		return tensor.Tensor{}, false
	}
	var (
		dtype        string
		shape        []int64
		raw          []byte
		seenD, seenS bool
	)
	for {
		key, ok := s.key()
		if !ok {
			return tensor.Tensor{}, false
		}
		switch key {
		case "dtype":
			if seenD {
				return tensor.Tensor{}, false
			}
			seenD = true
			if dtype, ok = s.plainString(); !ok {
				return tensor.Tensor{}, false
			}
		case "shape":
			if seenS {
				return tensor.Tensor{}, false
			}
			seenS = true
			if shape, ok = s.shape(); !ok {
				return tensor.Tensor{}, false
			}
		case "data":
			if raw != nil {
				return tensor.Tensor{}, false
			}
			s.space()
			start := s.i
			if !s.skipArray() {
				return tensor.Tensor{}, false
			}
			raw = s.b[start:s.i]
		default:
			return tensor.Tensor{}, false
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
			continue
		case '}':
			s.i++
		default:
			return tensor.Tensor{}, false
		}
		break
	}
	dt, ok := dtypes[dtype]
	if !ok || dt == tensor.String || !seenS || raw == nil {
		return tensor.Tensor{}, false
	}
	n, ok := tensor.NumElements(shape)
	if !ok || n > int64(len(raw)) {
		return tensor.Tensor{}, false
	}
	for _, d := range shape {
		if d < 0 {
			return tensor.Tensor{}, false
		}
	}
	data := scanner{b: raw}
	values, got, ok := data.numbers(dt)
	if !ok || int64(got) != n {
		return tensor.Tensor{}, false
	}
	return tensor.Tensor{Name: name, Shape: shape, Data: values}, true
}

// shape reads an array of JSON integers.
func (s *scanner) shape() ([]int64, bool) {
	if !s.consume('[') {
		return nil, false
	}
	shape := []int64{}
	if s.consume(']') {
		return shape, true
	}
	for {
		s.space()
		tok, err := s.scalar()
		if err != nil || !jsonInteger(tok) {
			return nil, false
		}
		d, perr := strconv.ParseInt(string(tok), 10, 64)
		if perr != nil {
			return nil, false
		}
		shape = append(shape, d)
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return shape, true
		default:
			return nil, false
		}
	}
}

// skipArray moves past a JSON array of numbers and literals, without
// nesting or strings but "NaN", "+Inf" and "-Inf".
func (s *scanner) skipArray() bool {
	if s.peek() != '[' {
		return false
	}
	s.i++
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ']':
			s.i++
			return true
		case '[', '{', '\\':
			return false
		}
		s.i++
	}
	return false
}

// numbers parses s, positioned at a JSON array of numbers (or bools for
// [tensor.Bool]), checking each token's JSON grammar.
func (s *scanner) numbers(dt tensor.DType) (any, int, bool) {
	s.space()
	start := s.i
	if !s.skipArray() {
		return nil, 0, false
	}
	raw := s.b[start:s.i]
	check := scanner{b: raw, i: 1}
	count := 0
	for {
		check.space()
		if check.peek() == ']' && check.i == 1 {
			break
		}
		tok, err := check.scalar()
		if err != nil {
			return nil, 0, false
		}
		if !jsonNumber(tok) {
			switch string(tok) {
			case "true", "false", `"NaN"`, `"+Inf"`, `"-Inf"`, `"Inf"`, `"Infinity"`, `"-Infinity"`:
			default:
				return nil, 0, false
			}
		}
		count++
		check.space()
		if check.peek() == ']' {
			break
		}
		if check.peek() != ',' {
			return nil, 0, false
		}
		check.i++
	}
	data, n, err := decodeData(raw, dt, count)
	return data, n, err == nil
}

// jsonNumber reports whether tok follows JSON's number grammar.
func jsonNumber(tok []byte) bool {
	i := 0
	if i < len(tok) && tok[i] == '-' {
		i++
	}
	switch {
	case i < len(tok) && tok[i] == '0':
		i++
	case i < len(tok) && tok[i] >= '1' && tok[i] <= '9':
		for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(tok) && tok[i] == '.' {
		i++
		if i == len(tok) || tok[i] < '0' || tok[i] > '9' {
			return false
		}
		for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
			i++
		}
	}
	if i < len(tok) && (tok[i] == 'e' || tok[i] == 'E') {
		i++
		if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
			i++
		}
		if i == len(tok) || tok[i] < '0' || tok[i] > '9' {
			return false
		}
		for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
			i++
		}
	}
	return i == len(tok)
}

// jsonInteger reports whether tok is a JSON number without fraction or
// exponent.
func jsonInteger(tok []byte) bool {
	for _, c := range tok {
		if c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return jsonNumber(tok)
}
