//go:build cgo

package models

import (
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/ladder-ml/ladder/internal/block"
	"github.com/ladder-ml/ladder/tensor"
	ort "github.com/yalue/onnxruntime_go"
)

// natives is, for each element type, its ONNX element type and what
// models does with its values on onnxruntime_go's side.
//
// This is the one list of element types outside package tensor, which
// everything else goes through: onnxruntime_go's constructors and
// accessors are generic over the Go element type (NewTensor[T],
// NewScalar[T], Tensor[T].GetData), which must be known at compile time,
// and tensor's dispatcher works on data held in an any. An element type
// that ONNX Runtime carries is added here too; TestNativesCoverEveryDType
// checks that none is missing.
var natives = [...]struct {
	ort ort.TensorElementDataType
	ops native
}{
	tensor.Invalid:  {ort.TensorElementDataTypeUndefined, unsupported{}},
	tensor.Float32:  {ort.TensorElementDataTypeFloat, numeric[float32]{}},
	tensor.Float64:  {ort.TensorElementDataTypeDouble, numeric[float64]{}},
	tensor.Int32:    {ort.TensorElementDataTypeInt32, numeric[int32]{}},
	tensor.Int64:    {ort.TensorElementDataTypeInt64, numeric[int64]{}},
	tensor.Bool:     {ort.TensorElementDataTypeBool, numeric[bool]{}},
	tensor.String:   {ort.TensorElementDataTypeString, text{}},
	tensor.Int8:     {ort.TensorElementDataTypeInt8, numeric[int8]{}},
	tensor.Uint8:    {ort.TensorElementDataTypeUint8, numeric[uint8]{}},
	tensor.Int16:    {ort.TensorElementDataTypeInt16, numeric[int16]{}},
	tensor.Uint16:   {ort.TensorElementDataTypeUint16, numeric[uint16]{}},
	tensor.Uint32:   {ort.TensorElementDataTypeUint32, numeric[uint32]{}},
	tensor.Uint64:   {ort.TensorElementDataTypeUint64, numeric[uint64]{}},
	tensor.Float16:  {ort.TensorElementDataTypeFloat16, half[tensor.F16]{ort.TensorElementDataTypeFloat16}},
	tensor.BFloat16: {ort.TensorElementDataTypeBFloat16, half[tensor.BF16]{ort.TensorElementDataTypeBFloat16}},
}

// nativeOf returns what models does with values of type dt.
func nativeOf(dt tensor.DType) native {
	if dt < 0 || int(dt) >= len(natives) {
		return unsupported{}
	}
	return natives[dt].ops
}

func dtypeFromORT(t ort.TensorElementDataType) tensor.DType {
	for dt := range natives {
		if dt != int(tensor.Invalid) && natives[dt].ort == t {
			return tensor.DType(dt)
		}
	}
	return tensor.Invalid
}

// native is what models does with the values of one element type on
// onnxruntime_go's side.
type native interface {
	// scalars reports whether onnxruntime_go can build a scalar input,
	// and return a scalar output, of this type.
	scalars() (in, out bool)
	// allocates reports whether ladder allocates an output of this type
	// itself, scalar or not, before the run, rather than ONNX Runtime.
	allocates(scalar bool) bool
	// fill copies data into v when v can hold it without reallocating.
	fill(v ort.Value, data any) bool
	// newInput returns a native value of shape over a private copy of
	// data.
	newInput(shape []int64, data any) (ort.Value, error)
	// newOutput returns a native value of shape for a run to write.
	newOutput(shape []int64) (ort.Value, error)
	// read returns v's data, copied when copyData is set because v stays
	// in the scratch for the next run.
	read(b *block.Room, v ort.Value, copyData bool) (any, error)
}

// numeric is an element type that onnxruntime_go carries as itself:
// Tensor[T] and Scalar[T].
type numeric[T ort.TensorData] struct{}

func (numeric[T]) scalars() (in, out bool)    { return true, true }
func (numeric[T]) allocates(scalar bool) bool { return scalar }

func (numeric[T]) fill(v ort.Value, data any) bool {
	d := data.([]T)
	switch t := v.(type) {
	case *ort.Tensor[T]:
		copy(t.GetData(), d)
		return true
	case *ort.Scalar[T]:
		// Scalar.Set does not reach the native value: reuse it only
		// when it already holds the value.
		return len(d) == 1 && t.GetData() == d[0]
	}
	return false
}

// newInput returns a native tensor, or a scalar for an empty shape. ONNX
// Runtime rejects a tensor with no backing memory, so an empty one gets a
// single spare element.
func (numeric[T]) newInput(shape []int64, data any) (ort.Value, error) {
	d := data.([]T)
	if len(shape) == 0 {
		if len(d) != 1 {
			return nil, fmt.Errorf("a scalar needs 1 element, got %d", len(d))
		}
		v, err := ort.NewScalar(d[0])
		if err != nil {
			return nil, err
		}
		return v, nil
	}
	buf := make([]T, max(len(d), 1))
	copy(buf, d)
	v, err := ort.NewTensor(ort.Shape(shape), buf) // NewTensor copies shape
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (numeric[T]) newOutput(shape []int64) (ort.Value, error) {
	if len(shape) > 0 {
		return nil, fmt.Errorf("a %s output is allocated by ONNX Runtime", tensor.Tensor{Data: []T(nil)}.DType())
	}
	v, err := ort.NewEmptyScalar[T]()
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (numeric[T]) read(b *block.Room, v ort.Value, copyData bool) (any, error) {
	switch o := v.(type) {
	case *ort.Tensor[T]:
		if copyData {
			return block.Box(b, block.Clone(b, o.GetData())), nil
		}
		return block.Box(b, o.GetData()), nil
	case *ort.Scalar[T]:
		d := block.Make[T](b, 1)
		d[0] = o.GetData()
		return block.Box(b, d), nil
	}
	return nil, fmt.Errorf("unsupported output type %T", v)
}

// half is float16 or bfloat16, which onnxruntime_go carries as the bytes
// of a CustomDataTensor of element type dt. It cannot build or return
// them as scalars, and returns such outputs with half their bytes
// missing: ladder allocates them.
type half[T tensor.F16 | tensor.BF16] struct {
	dt ort.TensorElementDataType
}

func (half[T]) scalars() (in, out bool) { return false, false }
func (half[T]) allocates(bool) bool     { return true }
func (half[T]) dtype() tensor.DType     { return tensor.Tensor{Data: []T(nil)}.DType() }

func (half[T]) fill(v ort.Value, data any) bool {
	t, ok := v.(*ort.CustomDataTensor)
	if ok {
		copy(t.GetData(), halfBytes(data.([]T)))
	}
	return ok
}

func (h half[T]) newInput(shape []int64, data any) (ort.Value, error) {
	return h.custom(shape, halfBytes(data.([]T)))
}

// maxPrealloc bounds, in bytes, an output that ladder allocates before a
// run from a shape the model declares or ONNX Runtime requests: a file
// that declares a float16 output of a trillion elements must not make Go
// run out of memory, which no recover can catch.
const maxPrealloc = 1 << 30

func (h half[T]) newOutput(shape []int64) (ort.Value, error) {
	if len(shape) == 0 {
		return nil, fmt.Errorf("a scalar %s output cannot be built", h.dtype()) // refused at Load
	}
	n, ok := tensor.NumElements(shape)
	if !ok || n > maxPrealloc/2 {
		return nil, fmt.Errorf("output shape %v is too large: ladder allocates float16 and bfloat16 outputs "+
			"before the run, up to %d MiB each", shape, maxPrealloc>>20)
	}
	return h.custom(shape, make([]byte, 2*n))
}

// custom returns a native tensor over a private copy of b, the elements'
// bytes.
func (h half[T]) custom(shape []int64, b []byte) (ort.Value, error) {
	if len(shape) == 0 {
		return nil, errors.New("a scalar of this element type cannot be built") // refused at Load
	}
	buf := make([]byte, max(len(b), 1))
	copy(buf, b)
	v, err := ort.NewCustomDataTensor(ort.Shape(slices.Clone(shape)), buf, h.dt)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// read copies the elements: the tensor is ladder's and stays in the
// scratch.
func (h half[T]) read(b *block.Room, v ort.Value, _ bool) (any, error) {
	o, ok := v.(*ort.CustomDataTensor)
	if !ok {
		return nil, fmt.Errorf("unexpected %T for a %s output", v, h.dtype())
	}
	n, _ := tensor.NumElements(o.GetShape())
	out := block.Make[T](b, int(n))
	copy(halfBytes(out), o.GetData())
	return block.Box(b, out), nil
}

// halfBytes returns the memory of d as bytes, without copying.
func halfBytes[T tensor.F16 | tensor.BF16](d []T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), 2*len(d))
}

// text is string, which onnxruntime_go carries as a StringTensor. It
// returns a scalar string but cannot build one.
type text struct{}

func (text) scalars() (in, out bool) { return false, true }
func (text) allocates(bool) bool     { return false }

func (text) newOutput([]int64) (ort.Value, error) {
	return nil, errors.New("a string output is allocated by ONNX Runtime")
}

func (text) fill(v ort.Value, data any) bool {
	st, ok := v.(*ort.StringTensor)
	return ok && st.SetContents(data.([]string)) == nil
}

func (text) newInput(shape []int64, data any) (ort.Value, error) {
	if len(shape) == 0 {
		return nil, errors.New("a scalar string cannot be built") // refused at Load
	}
	st, err := ort.NewStringTensor(ort.Shape(shape))
	if err != nil {
		return nil, err
	}
	if err := st.SetContents(data.([]string)); err != nil {
		_ = st.Destroy()
		return nil, err
	}
	return st, nil
}

func (text) read(b *block.Room, v ort.Value, _ bool) (any, error) {
	o, ok := v.(*ort.StringTensor)
	if !ok {
		return nil, fmt.Errorf("unexpected %T for a string output", v)
	}
	if len(o.GetShape()) == 0 {
		// GetContents cannot read a scalar string.
		e, err := o.GetElement(0)
		if err != nil {
			return nil, err
		}
		return block.Box(b, []string{e}), nil
	}
	contents, err := o.GetContents()
	if err != nil {
		return nil, err
	}
	return block.Box(b, contents), nil
}

// unsupported is the element types that models cannot carry, which Load
// refuses.
type unsupported struct{}

func (unsupported) scalars() (in, out bool)  { return false, false }
func (unsupported) allocates(bool) bool      { return false }
func (unsupported) fill(ort.Value, any) bool { return false }

func (unsupported) newInput(_ []int64, data any) (ort.Value, error) {
	return nil, fmt.Errorf("unsupported data type %T", data)
}

func (unsupported) newOutput([]int64) (ort.Value, error) {
	return nil, errors.New("unsupported element type")
}

func (unsupported) read(_ *block.Room, v ort.Value, _ bool) (any, error) {
	return nil, fmt.Errorf("unsupported output type %T", v)
}
