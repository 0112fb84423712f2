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
	for i, info := range want {
		var t Tensor
		found := false
		if i < len(inputs) && inputs[i].Name == info.Name {
			t, found = inputs[i], true
		} else {
			t, found = Find(inputs, info.Name)
		}
		if !found {
			return inputError(who, info.Name, "missing input", info.TypeString(), inputNames(inputs))
		}
		if dt := t.DType(); dt != info.DType {
			got := dt.String()
			if dt == Invalid {
				got = fmt.Sprintf("%T", t.Data)
			}
			return inputError(who, info.Name, "wrong element type", info.DType.String(), got)
		}
		if len(t.Shape) != len(info.Shape) && !info.AnyRank {
			return inputError(who, info.Name, "wrong rank", info.TypeString(), t.DType().String()+ShapeString(t.Shape))
		}
		for d, n := range t.Shape {
			if n < 0 || (!info.AnyRank && info.Shape[d] >= 0 && n != info.Shape[d]) {
				return inputError(who, info.Name, fmt.Sprintf("wrong size of dimension %d", d),
					info.TypeString(), t.DType().String()+ShapeString(t.Shape))
			}
		}
		n, ok := NumElements(t.Shape)
		if !ok {
			return inputError(who, info.Name, "element count overflows int64",
				info.TypeString(), t.DType().String()+ShapeString(t.Shape))
		}
		if int64(t.Len()) != n {
			return inputError(who, info.Name, "data length does not match shape",
				fmt.Sprintf("%d elements for shape %s", n, ShapeString(t.Shape)), strconv.Itoa(t.Len()))
		}
		ordered[i] = t
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
