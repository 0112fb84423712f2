package ladderhttp

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/ladder-ml/ladder/tensor"
)

// appendTensor appends t as {"dtype": ..., "shape": [...], "data": [...]}.
// Non-finite floats are written as the strings "NaN", "+Inf" and "-Inf",
// which the decoder reads back.
func appendTensor(b []byte, t tensor.Tensor) []byte {
	b = append(b, `{"dtype":"`...)
	b = append(b, t.DType().String()...)
	b = append(b, `","shape":[`...)
	for i, d := range t.Shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	b = append(b, `],"data":[`...)
	n := t.Len()
	switch dt := t.DType(); dt.Kind() {
	case tensor.KindFloat:
		bits := 32 // float16 and bfloat16 too: the shortest float32 that reads back
		if dt.Size() == 8 {
			bits = 64
		}
		for i := range n {
			b = appendFloat(comma(b, i), tensor.Float64At(t, i), bits)
		}
	case tensor.KindInt:
		for i := range n {
			b = strconv.AppendInt(comma(b, i), tensor.Int64At(t, i), 10)
		}
	case tensor.KindUint:
		for i := range n {
			b = strconv.AppendUint(comma(b, i), tensor.Uint64At(t, i), 10)
		}
	case tensor.KindBool:
		d, _ := tensor.Data[bool](t)
		for i, v := range d {
			b = strconv.AppendBool(comma(b, i), v)
		}
	case tensor.KindString:
		d, _ := tensor.Data[string](t)
		for i, v := range d {
			b = appendString(comma(b, i), v)
		}
	}
	return append(b, "]}"...)
}

func comma(b []byte, i int) []byte {
	if i > 0 {
		return append(b, ',')
	}
	return b
}

func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Inf"`...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping what JSON requires and
// replacing invalid UTF-8 with U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
