package tensor

import (
	"strconv"
	"strings"
)

// Info describes one input or output of a model.
type Info struct {
	Name  string // the input's or output's name in the model
	DType DType  // its element type
	// Shape has one entry per dimension; -1 marks a dynamic dimension, such
	// as the batch dimension, that accepts any size. An empty Shape is a
	// scalar, unless AnyRank is set.
	Shape []int64
	// AnyRank reports that the model does not say how many dimensions
	// this input or output has, such as the output of a Reshape to a
	// shape the request gives: any rank fits, and Shape is empty.
	AnyRank bool
}

// String formats the info as name, element type and shape, with "?" for
// dynamic dimensions and "..." for any rank: `features float32[?,30]`.
func (i Info) String() string {
	return i.Name + " " + i.TypeString()
}

// TypeString formats the element type and shape: `float32[?,30]`, or
// `float32[...]` for any rank.
func (i Info) TypeString() string {
	if i.AnyRank {
		return i.DType.String() + "[...]"
	}
	var b strings.Builder
	b.WriteString(i.DType.String())
	b.WriteString(ShapeString(i.Shape))
	return b.String()
}

// ShapeString formats a shape with "?" for dynamic dimensions: `[?,30]`.
func ShapeString(shape []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for j, d := range shape {
		if j > 0 {
			b.WriteByte(',')
		}
		if d < 0 {
			b.WriteByte('?')
		} else {
			b.WriteString(strconv.FormatInt(d, 10))
		}
	}
	b.WriteByte(']')
	return b.String()
}

// Signature is what a model takes and returns, and what it says about
// itself in its metadata.
type Signature struct {
	Inputs  []Info // what the model takes, in the model's order
	Outputs []Info // what it returns, in the model's order

	Producer    string            // producer name, e.g. "pytorch"
	Version     int64             // model version from the metadata
	Graph       string            // graph name
	Domain      string            // model domain
	Description string            // doc string
	Metadata    map[string]string // custom metadata
}

// Clone returns a deep copy that shares no memory with s.
func (s Signature) Clone() Signature {
	c := s
	c.Inputs = cloneInfos(s.Inputs)
	c.Outputs = cloneInfos(s.Outputs)
	if s.Metadata != nil {
		c.Metadata = make(map[string]string, len(s.Metadata))
		for k, v := range s.Metadata {
			c.Metadata[k] = v
		}
	}
	return c
}

func cloneInfos(in []Info) []Info {
	out := make([]Info, len(in))
	for i, t := range in {
		out[i] = Info{Name: t.Name, DType: t.DType, Shape: append([]int64(nil), t.Shape...), AnyRank: t.AnyRank}
	}
	return out
}
