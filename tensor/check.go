package tensor

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// CheckInputs validates inputs against want, the inputs of a signature,
// matching them by name, and stores them in want's order in ordered, which
// must have len(want) elements. who names the model or ladder in the
// error. A misfit gets an [*InputError] matching [ErrInvalidInput]: a
// missing or unknown input, a wrong element type, rank (unless the Info
// is AnyRank) or dimension, a shape whose element count overflows int64,
// or a data length that does not match the shape. CheckInputs allocates
// only when it reports an error.
func CheckInputs(who string, want []Info, inputs, ordered []Tensor) error {
	for i := range want {
		info := &want[i]
		var t *Tensor
		if i < len(inputs) && inputs[i].Name == info.Name {
			t = &inputs[i]
		} else if j := index(inputs, info.Name); j >= 0 {
			t = &inputs[j]
		} else {
			return inputError(who, info.Name, "missing input", info.TypeString(), inputNames(inputs))
		}
		dt, size := kind(t.Data)
		if dt != info.DType {
			got := dt.String()
			if dt == Invalid {
				got = fmt.Sprintf("%T", t.Data)
			}
			return inputError(who, info.Name, "wrong element type", info.DType.String(), got)
		}
		if len(t.Shape) != len(info.Shape) && !info.AnyRank {
			return inputError(who, info.Name, "wrong rank", info.TypeString(), dt.String()+ShapeString(t.Shape))
		}
		for d, n := range t.Shape {
			if n < 0 || (!info.AnyRank && info.Shape[d] >= 0 && n != info.Shape[d]) {
				return inputError(who, info.Name, fmt.Sprintf("wrong size of dimension %d", d),
					info.TypeString(), dt.String()+ShapeString(t.Shape))
			}
		}
		n, ok := NumElements(t.Shape)
		if !ok {
			return inputError(who, info.Name, "element count overflows int64",
				info.TypeString(), dt.String()+ShapeString(t.Shape))
		}
		if int64(size) != n {
			return inputError(who, info.Name, "data length does not match shape",
				fmt.Sprintf("%d elements for shape %s", n, ShapeString(t.Shape)), strconv.Itoa(size))
		}
		ordered[i] = *t
	}
	if len(inputs) != len(want) {
		for _, t := range inputs {
			if !slices.ContainsFunc(want, func(w Info) bool { return w.Name == t.Name }) {
				return inputError(who, t.Name, "unknown input", "one of "+strings.Join(Names(want), ", "), t.Name)
			}
		}
		return inputError(who, "", "wrong number of inputs", strconv.Itoa(len(want)), strconv.Itoa(len(inputs)))
	}
	return nil
}

// index returns the position of the first tensor named name in ts, or -1.
func index(ts []Tensor, name string) int {
	for i := range ts {
		if ts[i].Name == name {
			return i
		}
	}
	return -1
}

// Names returns the names of infos, in order.
func Names(infos []Info) []string {
	out := make([]string, len(infos))
	for i, t := range infos {
		out[i] = t.Name
	}
	return out
}

func inputError(who, input, problem, expected, got string) error {
	return &InputError{Model: who, Input: input, Problem: problem, Expected: expected, Got: got}
}

func inputNames(ts []Tensor) string {
	if len(ts) == 0 {
		return "no inputs"
	}
	n := make([]string, len(ts))
	for i, t := range ts {
		n[i] = strconv.Quote(t.Name)
	}
	return "inputs " + strings.Join(n, ", ")
}
