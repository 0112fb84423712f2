//go:build cgo

package models

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ladder-ml/ladder/tensor"
)

// Some input values pass every check of names, types and shapes and still
// go wrong in native code: a few ONNX Runtime 1.24.1 CPU kernels kill the
// process on them, and no recover catches a crash in native code; and a
// string with a NUL byte is cut short on its way to ONNX Runtime. A guard
// checks such values in Go before the run, when the operand is a graph
// input (the request's own tensor), and refuses them with an
// [*tensor.InputError]. An operand computed inside the graph cannot be
// checked; the package doc lists these kernels.

// guardKind is the check a guard makes.
type guardKind int

const (
	guardDivisor     guardKind = iota // integer Div or Mod: no zero divisor, no MinInt / -1
	guardTriluK                       // Trilu: |k| <= 1<<62
	guardBatchIndex                   // RoiAlign: 0 <= batch_indices < X's batch size
	guardSeqLens                      // ReverseSequence: 0 <= sequence_lens <= X's time axis
	guardUnpoolIndex                  // MaxUnpool: 0 <= indices < the output's size
	guardNoNUL                        // a string input: no NUL byte, at which ONNX Runtime's C API would cut it
	guardNotScalar                    // an input of any rank that onnxruntime_go cannot build as a scalar
)

// guard checks the values of input at, in signature order, before a run.
// other is a second input the check needs (the dividend, or the data
// whose shape bounds an index), or -1 when it is not a graph input.
type guard struct {
	kind  guardKind
	op    string
	at    int
	other int
	axis  int // ReverseSequence's time_axis

	// MaxUnpool: the output's size comes from shape, the output_shape
	// input, when it is a graph input (else -1), or from X (other) and
	// the attributes.
	shape                 int
	kernel, strides, pads []int64
}

// inputGuards returns the guards that follow from the inputs' types: no
// NUL byte in a string, which onnxruntime_go hands to ONNX Runtime as a C
// string that the NUL would silently cut short; and no scalar string,
// float16 or bfloat16 for an input of any rank, which onnxruntime_go
// cannot build.
func inputGuards(inputs []tensor.Info) []guard {
	var gs []guard
	for i, in := range inputs {
		if in.DType == tensor.String {
			gs = append(gs, guard{kind: guardNoNUL, at: i, other: -1, shape: -1})
		}
		if in.AnyRank && !scalarOK("input", in.DType) {
			gs = append(gs, guard{kind: guardNotScalar, at: i, other: -1, shape: -1})
		}
	}
	return gs
}

// guardsFor reads the graph in the ONNX model data and returns the
// guards its inputs need. A model it cannot parse gets none: ONNX Runtime
// has already accepted the file, and a parser's failure must not refuse
// it.
func guardsFor(data []byte, inputs []tensor.Info) (gs []guard) {
	defer func() {
		if recover() != nil {
			gs = nil
		}
	}()
	index := make(map[string]int, len(inputs))
	for i, in := range inputs {
		index[in.Name] = i
	}
	var graph []byte
	walk(data, func(num int, _ uint64, b []byte) {
		if num == 7 { // ModelProto.graph
			graph = b
		}
	})
	if graph == nil {
		return nil
	}
	graphGuards(graph, true, inputs, index, &gs)
	return gs
}

// graphGuards appends the guards of the nodes of graph and of its
// subgraphs. index maps the names that still denote the model's inputs to
// their positions; a subgraph's own inputs and initializers hide them. In
// the main graph, an initializer named like an input is only that
// input's default, and the request's tensor is what runs.
func graphGuards(graph []byte, main bool, inputs []tensor.Info, index map[string]int, gs *[]guard) {
	var nodes [][]byte
	shadow := []string{}
	walk(graph, func(num int, _ uint64, b []byte) {
		switch num {
		case 1: // GraphProto.node
			nodes = append(nodes, b)
		case 5: // GraphProto.initializer: TensorProto.name is field 8
			shadow = append(shadow, stringField(b, 8))
		case 11: // GraphProto.input: ValueInfoProto.name is field 1
			shadow = append(shadow, stringField(b, 1))
		}
	})
	if !main {
		// A subgraph's own inputs and initializers hide the outer names.
		for _, name := range shadow {
			delete(index, name)
		}
	}
	for _, b := range nodes {
		n := parseNode(b)
		for _, sg := range n.subgraphs {
			inner := make(map[string]int, len(index))
			for k, v := range index {
				inner[k] = v
			}
			graphGuards(sg, false, inputs, inner, gs)
		}
		if n.domain != "" && n.domain != "ai.onnx" {
			continue
		}
		at := func(i int) int {
			if i >= len(n.inputs) {
				return -1
			}
			if p, ok := index[n.inputs[i]]; ok {
				return p
			}
			return -1
		}
		g := guard{op: n.op, at: -1, other: -1, shape: -1}
		switch n.op {
		case "Div", "Mod":
			// Mod with fmod=1 runs std::fmod, which does not trap.
			if p := at(1); p >= 0 && isInteger(inputs[p].DType) && !(n.op == "Mod" && n.int["fmod"] == 1) {
				g.kind, g.at, g.other = guardDivisor, p, at(0)
			}
		case "Trilu":
			g.kind, g.at = guardTriluK, at(1)
		case "RoiAlign":
			g.kind, g.at, g.other = guardBatchIndex, at(2), at(0)
		case "ReverseSequence":
			g.kind, g.at, g.other, g.axis = guardSeqLens, at(1), at(0), int(n.int["time_axis"])
		case "MaxUnpool":
			g.kind, g.at = guardUnpoolIndex, at(1)
			g.kernel, g.strides, g.pads = n.ints["kernel_shape"], n.ints["strides"], n.ints["pads"]
			if len(n.inputs) > 2 && n.inputs[2] != "" {
				g.shape = at(2) // output_shape decides the size, not X
			} else {
				g.other = at(0)
			}
		}
		if g.at >= 0 {
			*gs = append(*gs, g)
		}
	}
}

func isInteger(dt tensor.DType) bool {
	k := dt.Kind()
	return k == tensor.KindInt || k == tensor.KindUint
}

// check returns an InputError when ordered, the inputs in signature order,
// holds a value that would crash the guarded kernel.
func (g guard) check(who string, ordered []tensor.Tensor) error {
	t := ordered[g.at]
	bad := func(i int, problem, expected string) error {
		return &tensor.InputError{Model: who, Input: t.Name, Problem: problem,
			Expected: expected + " (ONNX Runtime's " + g.op + " kernel crashes the process otherwise)",
			Got:      fmt.Sprintf("%v at element %d", elem(t, i), i)}
	}
	switch g.kind {
	case guardNotScalar:
		if len(t.Shape) == 0 {
			return &tensor.InputError{Model: who, Input: t.Name, Problem: "scalar of a type onnxruntime_go cannot build",
				Expected: "at least one dimension for a " + t.DType().String(), Got: "a scalar"}
		}
	case guardNoNUL:
		d, _ := t.Data.([]string)
		for i, v := range d {
			if k := strings.IndexByte(v, 0); k >= 0 {
				return &tensor.InputError{Model: who, Input: t.Name, Problem: "NUL byte in a string",
					Expected: "strings without NUL bytes (ONNX Runtime would cut the string there)",
					Got:      fmt.Sprintf("a NUL at byte %d of element %d", k, i)}
			}
		}
	case guardDivisor:
		if i := indexOf(t, func(v int64) bool { return v == 0 }); i >= 0 {
			return bad(i, "zero integer divisor", "no zero")
		}
		if g.other < 0 {
			return nil
		}
		minOf := map[tensor.DType]int64{tensor.Int32: math.MinInt32, tensor.Int64: math.MinInt64}
		lowest, signed := minOf[t.DType()]
		if !signed || indexOf(t, func(v int64) bool { return v == -1 }) < 0 {
			return nil
		}
		d := ordered[g.other]
		if j := indexOf(d, func(v int64) bool { return v == lowest }); j >= 0 {
			i := indexOf(t, func(v int64) bool { return v == -1 })
			return bad(i, "integer division overflow", fmt.Sprintf("no divisor -1 while dividend %q holds %d", d.Name, lowest))
		}
	case guardTriluK:
		// ONNX Runtime overflows near math.MinInt64; a |k| this large
		// means the same as one the size of the matrix.
		if i := indexOf(t, func(v int64) bool { return v < -maxTriluK || v > maxTriluK }); i >= 0 {
			return bad(i, "k out of range", "|k| <= "+strconv.FormatInt(maxTriluK, 10))
		}
	case guardBatchIndex:
		limit := int64(math.MaxInt64)
		if g.other >= 0 && len(ordered[g.other].Shape) > 0 {
			limit = ordered[g.other].Shape[0]
		}
		if i := indexOf(t, func(v int64) bool { return v < 0 || v >= limit }); i >= 0 {
			return bad(i, "batch index out of range", fmt.Sprintf("0 <= index < %d", limit))
		}
	case guardSeqLens:
		limit := int64(math.MaxInt64)
		if x := ordered[max(g.other, 0)]; g.other >= 0 && g.axis >= 0 && g.axis < len(x.Shape) {
			limit = x.Shape[g.axis]
		}
		if i := indexOf(t, func(v int64) bool { return v < 0 || v > limit }); i >= 0 {
			return bad(i, "sequence length out of range", fmt.Sprintf("0 <= length <= %d", limit))
		}
	case guardUnpoolIndex:
		limit := g.unpoolSize(ordered)
		if i := indexOf(t, func(v int64) bool { return v < 0 || v >= limit }); i >= 0 {
			return bad(i, "index out of range", fmt.Sprintf("0 <= index < %d", limit))
		}
	}
	return nil
}

// unpoolSize returns the number of elements of MaxUnpool's output, or
// math.MaxInt64 when the graph's inputs do not decide it.
func (g guard) unpoolSize(ordered []tensor.Tensor) int64 {
	size := int64(1)
	mul := func(d int64) bool {
		if d < 0 || (d > 0 && size > math.MaxInt64/d) {
			return false
		}
		size *= d
		return true
	}
	if g.shape >= 0 {
		dims, _ := ordered[g.shape].Data.([]int64)
		for _, d := range dims {
			if !mul(d) {
				return math.MaxInt64
			}
		}
		return size
	}
	if g.other < 0 {
		return math.MaxInt64
	}
	x := ordered[g.other].Shape // N, C, then the spatial dimensions
	if len(x) < 2 || len(g.kernel) != len(x)-2 {
		return math.MaxInt64
	}
	if !mul(x[0]) || !mul(x[1]) {
		return math.MaxInt64
	}
	for d, k := range g.kernel {
		stride, begin, end := int64(1), int64(0), int64(0)
		if d < len(g.strides) {
			stride = g.strides[d]
		}
		if len(g.pads) == 2*len(g.kernel) {
			begin, end = g.pads[d], g.pads[d+len(g.kernel)]
		}
		out := (x[d+2]-1)*stride - begin - end + k
		if x[d+2] == 0 || !mul(out) {
			return math.MaxInt64
		}
	}
	return size
}

// maxTriluK bounds Trilu's k.
const maxTriluK = 1 << 62

// indexOf returns the index of the first integer element of t for which
// f holds, or -1. Unsigned values above math.MaxInt64 are passed as
// math.MaxInt64; t's other element types have no match.
func indexOf(t tensor.Tensor, f func(int64) bool) int {
	switch t.DType().Kind() {
	case tensor.KindInt:
		for i := range t.Len() {
			if f(tensor.Int64At(t, i)) {
				return i
			}
		}
	case tensor.KindUint:
		for i := range t.Len() {
			if f(int64(min(tensor.Uint64At(t, i), math.MaxInt64))) {
				return i
			}
		}
	}
	return -1
}

// elem returns integer element i of t, or nil when t holds no integers.
func elem(t tensor.Tensor, i int) any {
	switch t.DType().Kind() {
	case tensor.KindInt:
		return tensor.Int64At(t, i)
	case tensor.KindUint:
		return tensor.Uint64At(t, i)
	}
	return nil
}
