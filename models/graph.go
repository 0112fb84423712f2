//go:build cgo

package models

import "encoding/binary"

// The few facts ladder needs from an ONNX file that ONNX Runtime's API
// does not give: the graph's nodes, their attributes and subgraphs, and
// which inputs and outputs declare no shape at all. They are read with a
// minimal protobuf walker, so the library needs no protobuf dependency.

// node is what the guards need of a NodeProto.
type node struct {
	op, domain string
	inputs     []string
	int        map[string]int64   // integer attributes
	ints       map[string][]int64 // integer-list attributes
	subgraphs  [][]byte           // the GraphProtos of graph attributes
}

func parseNode(b []byte) node {
	n := node{int: map[string]int64{}, ints: map[string][]int64{}}
	walk(b, func(num int, _ uint64, data []byte) {
		switch num {
		case 1: // NodeProto.input
			n.inputs = append(n.inputs, string(data))
		case 4: // NodeProto.op_type
			n.op = string(data)
		case 7: // NodeProto.domain
			n.domain = string(data)
		case 5: // NodeProto.attribute: an AttributeProto
			name := stringField(data, 1)
			walk(data, func(num int, v uint64, sub []byte) {
				switch num {
				case 3: // i
					n.int[name] = int64(v)
				case 8: // ints, packed or not
					n.ints[name] = appendInts(n.ints[name], v, sub)
				case 6, 11: // g, graphs
					n.subgraphs = append(n.subgraphs, sub)
				}
			})
		}
	})
	return n
}

// appendInts appends the int64s of a repeated field: v when it came
// unpacked, else the packed varints in b.
func appendInts(to []int64, v uint64, b []byte) []int64 {
	if b == nil {
		return append(to, int64(v))
	}
	for len(b) > 0 {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			break
		}
		to, b = append(to, int64(x)), b[n:]
	}
	return to
}

// declaredRanks returns the rank that each of the main graph's inputs and
// outputs declares in the file, by name: the number of dimensions of its
// tensor type's shape, or -1 when the type has no shape (any rank). ONNX
// Runtime reports both an unknown rank and a declared shape that it drops
// as no dimensions, the same as a scalar; this tells them apart. A file
// it cannot read gives empty maps.
func declaredRanks(data []byte) (inputs, outputs map[string]int) {
	inputs, outputs = map[string]int{}, map[string]int{}
	defer func() {
		if recover() != nil {
			inputs, outputs = map[string]int{}, map[string]int{}
		}
	}()
	walk(data, func(num int, _ uint64, graph []byte) {
		if num != 7 { // ModelProto.graph
			return
		}
		walk(graph, func(num int, _ uint64, vi []byte) {
			if num != 11 && num != 12 { // GraphProto.input, GraphProto.output
				return
			}
			name, rank, ok := tensorRank(vi)
			switch {
			case !ok:
			case num == 11:
				inputs[name] = rank
			default:
				outputs[name] = rank
			}
		})
	})
	return inputs, outputs
}

// tensorRank reads the ValueInfoProto vi: its name and, when its type is a
// tensor type, its declared rank, or -1 when it declares no shape.
func tensorRank(vi []byte) (name string, rank int, ok bool) {
	name = stringField(vi, 1)
	walk(vi, func(num int, _ uint64, typ []byte) {
		if num != 2 { // ValueInfoProto.type
			return
		}
		walk(typ, func(num int, _ uint64, tt []byte) {
			if num != 1 { // TypeProto.tensor_type
				return
			}
			ok, rank = true, -1
			walk(tt, func(num int, _ uint64, shape []byte) {
				if num != 2 { // TypeProto.Tensor.shape
					return
				}
				rank = 0
				walk(shape, func(num int, _ uint64, _ []byte) {
					if num == 1 { // TensorShapeProto.dim
						rank++
					}
				})
			})
		})
	})
	return name, rank, ok
}

// walk calls f for every field of the protobuf message in b: its number,
// its value for a varint, and its bytes for a length-delimited field. It
// stops at the first malformed field.
func walk(b []byte, f func(num int, v uint64, data []byte)) {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return
		}
		b = b[n:]
		num := int(key >> 3)
		switch key & 7 {
		case 0: // varint
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return
			}
			b = b[n:]
			f(num, v, nil)
		case 1: // fixed64
			if len(b) < 8 {
				return
			}
			b = b[8:]
		case 2: // length-delimited
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return
			}
			f(num, 0, b[n:n+int(l)])
			b = b[n+int(l):]
		case 5: // fixed32
			if len(b) < 4 {
				return
			}
			b = b[4:]
		default: // groups are not used by ONNX
			return
		}
	}
}

// stringField returns the first length-delimited field num of the message
// in b, as a string.
func stringField(b []byte, num int) string {
	s, found := "", false
	walk(b, func(n int, _ uint64, data []byte) {
		if n == num && !found {
			s, found = string(data), true
		}
	})
	return s
}
