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
	switch d := t.Data.(type) {
	case []float32:
		for i, v := range d {
			b = appendFloat(comma(b, i), float64(v), 32)
		}
	case []float64:
		for i, v := range d {
			b = appendFloat(comma(b, i), v, 64)
		}
	case []tensor.F16:
		for i, v := range d {
			b = appendFloat(comma(b, i), float64(v.Float32()), 32)
		}
	case []tensor.BF16:
		for i, v := range d {
			b = appendFloat(comma(b, i), float64(v.Float32()), 32)
		}
	case []bool:
		for i, v := range d {
			b = strconv.AppendBool(comma(b, i), v)
		}
	case []string:
		for i, v := range d {
			b = appendString(comma(b, i), v)
		}
	case []int8:
		b = appendInts(b, d)
	case []int16:
		b = appendInts(b, d)
	case []int32:
		b = appendInts(b, d)
	case []int64:
		b = appendInts(b, d)
	case []uint8:
		b = appendUints(b, d)
	case []uint16:
		b = appendUints(b, d)
	case []uint32:
		b = appendUints(b, d)
	case []uint64:
		b = appendUints(b, d)
	}
	return append(b, "]}"...)
}

func comma(b []byte, i int) []byte {
	if i > 0 {
		return append(b, ',')
	}
	return b
}

func appendInts[T signed](b []byte, d []T) []byte {
	for i, v := range d {
		b = strconv.AppendInt(comma(b, i), int64(v), 10)
	}
	return b
}

func appendUints[T unsigned](b []byte, d []T) []byte {
	for i, v := range d {
		b = strconv.AppendUint(comma(b, i), uint64(v), 10)
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
