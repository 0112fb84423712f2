package models

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/ladder-ml/ladder/internal/block"
	"github.com/ladder-ml/ladder/tensor"
	ort "github.com/yalue/onnxruntime_go"
)

// scratch is the native state of one run: input and output tensors that
// are reused while shapes stay the same, and the RunOptions whose
// Terminate stops the run when its context ends. A scratch serves one run
// at a time; a Model keeps a bounded pool of them.
//
// Every slot of ins and outs holds either nil or a live native value: a
// failed allocation leaves nil behind, never a typed nil.
type scratch struct {
	ordered   []tensor.Tensor // the caller's inputs in signature order
	ins       []ort.Value
	inShapes  [][]int64 // shapes of ins, kept to avoid ort's copying GetShape
	outs      []ort.Value
	outShapes [][]int64 // shapes of outs while outsReady
	outsReady bool      // outs hold tensors shaped for the current inputs
	guesses   [][]int64 // last shapes seen of outputs that ladder allocates and whose shape is dynamic

	ro        *ort.RunOptions
	fired     chan struct{} // receives once per terminate callback that ran
	onCancel  func()        // terminates the run when its context ends
	onTimeout func()        // terminates the run when its timeout passes
	dog       *watchdog     // the Model's, which runs onTimeout; made on first use when nil
	deadline  atomic.Int64  // see watchdog
	timedOut  atomic.Bool
	stopCtx   func() bool // undoes the context watch of the current run
	timing    bool        // the watchdog watches the current run
}

func scratchPoolSize() int { return max(4, 2*goruntime.GOMAXPROCS(0)) }

func newScratch(nIn, nOut int) (*scratch, error) {
	ro, err := ort.NewRunOptions()
	if err != nil {
		return nil, err
	}
	s := &scratch{
		ordered:   make([]tensor.Tensor, nIn),
		ins:       make([]ort.Value, nIn),
		inShapes:  make([][]int64, nIn),
		outs:      make([]ort.Value, nOut),
		outShapes: make([][]int64, nOut),
		guesses:   make([][]int64, nOut),
		ro:        ro,
		fired:     make(chan struct{}, 2),
	}
	s.onCancel = func() {
		_ = s.ro.Terminate()
		s.fired <- struct{}{}
	}
	s.onTimeout = func() {
		s.timedOut.Store(true)
		_ = s.ro.Terminate()
		s.fired <- struct{}{}
	}
	return s, nil
}

// watch arranges for the run to be terminated when ctx ends or timeout
// (if positive) passes, and reports whether anything watches the run. If
// so, [scratch.unwatch] must undo it once the run has returned.
func (s *scratch) watch(ctx context.Context, timeout time.Duration) bool {
	if ctx.Done() != nil {
		s.stopCtx = context.AfterFunc(ctx, s.onCancel)
	}
	if timeout > 0 {
		if s.dog == nil {
			s.dog = &watchdog{}
			s.dog.add(s)
		}
		s.dog.watch(s, timeout)
		s.timing = true
	}
	return s.stopCtx != nil || s.timing
}

// unwatch undoes watch once the run has returned, waits for any callback
// that already started, and reports whether the timeout fired.
func (s *scratch) unwatch() bool {
	fired := 0
	if s.stopCtx != nil && !s.stopCtx() {
		fired++
	}
	if s.timing && s.dog.unwatch(s) {
		fired++
	}
	for range fired {
		<-s.fired
	}
	if fired > 0 {
		_ = s.ro.UnsetTerminate()
	}
	s.stopCtx, s.timing = nil, false
	return s.timedOut.Swap(false)
}

// terminated reports whether the current run was asked to stop: its
// context ended or its timeout passed.
func (s *scratch) terminated(ctx context.Context) bool {
	return ctx.Err() != nil || s.timedOut.Load()
}

// setInputs copies s.ordered into native tensors, reusing last run's when
// element type and shape match. It reports whether every shape matched.
// On error the failed slot is left empty, so the scratch stays usable.
func (s *scratch) setInputs() (sameShapes bool, err error) {
	sameShapes = true
	for i, t := range s.ordered {
		if v := s.ins[i]; v != nil && slices.Equal(s.inShapes[i], t.Shape) && fill(v, t.Data) {
			continue
		}
		sameShapes = false
		if v := s.ins[i]; v != nil {
			s.ins[i], s.inShapes[i] = nil, nil
			_ = release(v)
		}
		v, err := newInput(t)
		if err != nil {
			return false, fmt.Errorf("input %q: %w", t.Name, err)
		}
		s.ins[i], s.inShapes[i] = v, slices.Clone(t.Shape)
	}
	return sameShapes, nil
}

// fill copies data into v when v can hold it without reallocating.
func fill(v ort.Value, data any) bool {
	switch d := data.(type) {
	case []float32:
		return fillNumeric(v, d)
	case []float64:
		return fillNumeric(v, d)
	case []int8:
		return fillNumeric(v, d)
	case []uint8:
		return fillNumeric(v, d)
	case []int16:
		return fillNumeric(v, d)
	case []uint16:
		return fillNumeric(v, d)
	case []int32:
		return fillNumeric(v, d)
	case []uint32:
		return fillNumeric(v, d)
	case []int64:
		return fillNumeric(v, d)
	case []uint64:
		return fillNumeric(v, d)
	case []bool:
		return fillNumeric(v, d)
	case []tensor.F16:
		return fillCustom(v, halfBytes(d))
	case []tensor.BF16:
		return fillCustom(v, halfBytes(d))
	case []string:
		st, ok := v.(*ort.StringTensor)
		return ok && st.SetContents(d) == nil
	}
	return false
}

func fillNumeric[T ort.TensorData](v ort.Value, d []T) bool {
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

func fillCustom(v ort.Value, b []byte) bool {
	t, ok := v.(*ort.CustomDataTensor)
	if ok {
		copy(t.GetData(), b)
	}
	return ok
}

// halfBytes returns the memory of d as bytes, without copying.
func halfBytes[T tensor.F16 | tensor.BF16](d []T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), 2*len(d))
}

func newInput(t tensor.Tensor) (ort.Value, error) {
	switch d := t.Data.(type) {
	case []float32:
		return newNumeric(t.Shape, d)
	case []float64:
		return newNumeric(t.Shape, d)
	case []int8:
		return newNumeric(t.Shape, d)
	case []uint8:
		return newNumeric(t.Shape, d)
	case []int16:
		return newNumeric(t.Shape, d)
	case []uint16:
		return newNumeric(t.Shape, d)
	case []int32:
		return newNumeric(t.Shape, d)
	case []uint32:
		return newNumeric(t.Shape, d)
	case []int64:
		return newNumeric(t.Shape, d)
	case []uint64:
		return newNumeric(t.Shape, d)
	case []bool:
		return newNumeric(t.Shape, d)
	case []tensor.F16:
		return newCustom(t.Shape, halfBytes(d), ort.TensorElementDataTypeFloat16)
	case []tensor.BF16:
		return newCustom(t.Shape, halfBytes(d), ort.TensorElementDataTypeBFloat16)
	case []string:
		if len(t.Shape) == 0 {
			return nil, errors.New("a scalar string cannot be built") // refused at Load
		}
		st, err := ort.NewStringTensor(ort.Shape(t.Shape))
		if err != nil {
			return nil, err
		}
		if err := st.SetContents(d); err != nil {
			_ = st.Destroy()
			return nil, err
		}
		return st, nil
	}
	return nil, fmt.Errorf("unsupported data type %T", t.Data)
}

// newNumeric returns a native tensor, or a scalar for an empty shape, over
// a private copy of d. ONNX Runtime rejects a tensor with no backing
// memory, so an empty one gets a single spare element.
func newNumeric[T ort.TensorData](shape []int64, d []T) (ort.Value, error) {
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

// newCustom returns a native tensor of element type dt over a private copy
// of b, the elements' bytes.
func newCustom(shape []int64, b []byte, dt ort.TensorElementDataType) (ort.Value, error) {
	if len(shape) == 0 {
		return nil, errors.New("a scalar of this element type cannot be built") // refused at Load
	}
	buf := make([]byte, max(len(b), 1))
	copy(buf, b)
	v, err := ort.NewCustomDataTensor(ort.Shape(slices.Clone(shape)), buf, dt)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// allocated reports whether ladder allocates output info itself instead of
// letting onnxruntime_go do it: onnxruntime_go cannot return scalars, and
// returns float16 and bfloat16 tensors with half their bytes missing.
// Scalar strings are the exception: onnxruntime_go returns them intact.
func allocated(info tensor.Info) bool {
	switch info.DType {
	case tensor.Float16, tensor.BFloat16:
		return true
	case tensor.String:
		return false
	}
	return len(info.Shape) == 0
}

// preallocated reports whether ladder allocates output i itself: as
// [allocated] says for an output of known rank. An output of any rank
// is allocated by ONNX Runtime unless it is float16 or bfloat16, or a
// run showed it to be a scalar, which onnxruntime_go cannot return.
func (s *scratch) preallocated(i int, info tensor.Info) bool {
	if !info.AnyRank {
		return allocated(info)
	}
	switch info.DType {
	case tensor.Float16, tensor.BFloat16:
		return true
	case tensor.String:
		return false
	}
	return s.guesses[i] != nil && len(s.guesses[i]) == 0
}

// prepareOutputs allocates the outputs that ladder allocates itself and
// that are missing. A dynamic dimension takes the size last seen for it,
// or else the batch size (the first input's first dimension) for the
// first dimension and 1 for the others; [scratch.learnShape] corrects a
// wrong guess.
func (s *scratch) prepareOutputs(infos []tensor.Info) error {
	for i, info := range infos {
		if s.outs[i] != nil || !s.preallocated(i, info) {
			continue
		}
		shape := s.guesses[i]
		if shape == nil && info.AnyRank {
			shape = []int64{1} // a guess; learnShape corrects it
		}
		if shape == nil {
			shape = slices.Clone(info.Shape)
			for d := range shape {
				if shape[d] >= 0 {
					continue
				}
				shape[d] = 1
				if d == 0 && len(s.ordered) > 0 && len(s.ordered[0].Shape) > 0 {
					shape[d] = s.ordered[0].Shape[0]
				}
			}
		}
		v, err := newOutput(info.DType, shape)
		if err != nil {
			s.guesses[i] = nil // a failed guess must not fail the next run too
			return fmt.Errorf("output %q: %w", info.Name, err)
		}
		s.outs[i] = v
	}
	return nil
}

// maxPrealloc bounds, in bytes, an output that ladder allocates before a
// run from a shape the model declares or ONNX Runtime requests: a file
// that declares a float16 output of a trillion elements must not make Go
// run out of memory, which no recover can catch.
const maxPrealloc = 1 << 30

func newOutput(dt tensor.DType, shape []int64) (ort.Value, error) {
	if len(shape) == 0 {
		switch dt {
		case tensor.Float32:
			return newScalar[float32]()
		case tensor.Float64:
			return newScalar[float64]()
		case tensor.Int8:
			return newScalar[int8]()
		case tensor.Uint8:
			return newScalar[uint8]()
		case tensor.Int16:
			return newScalar[int16]()
		case tensor.Uint16:
			return newScalar[uint16]()
		case tensor.Int32:
			return newScalar[int32]()
		case tensor.Uint32:
			return newScalar[uint32]()
		case tensor.Int64:
			return newScalar[int64]()
		case tensor.Uint64:
			return newScalar[uint64]()
		case tensor.Bool:
			return newScalar[bool]()
		}
		return nil, fmt.Errorf("a scalar %s output cannot be built", dt) // refused at Load
	}
	n, ok := tensor.NumElements(shape)
	if !ok || n > maxPrealloc/2 {
		return nil, fmt.Errorf("output shape %v is too large: ladder allocates float16 and bfloat16 outputs "+
			"before the run, up to %d MiB each", shape, maxPrealloc>>20)
	}
	switch dt {
	case tensor.Float16:
		return newCustom(shape, make([]byte, 2*n), ort.TensorElementDataTypeFloat16)
	case tensor.BFloat16:
		return newCustom(shape, make([]byte, 2*n), ort.TensorElementDataTypeBFloat16)
	}
	return nil, fmt.Errorf("a %s output is allocated by ONNX Runtime", dt)
}

func newScalar[T ort.TensorData]() (ort.Value, error) {
	v, err := ort.NewEmptyScalar[T]()
	if err != nil {
		return nil, err
	}
	return v, nil
}

var shapeMismatch = regexp.MustCompile(`Current shape:\{([-\d,]*)\} Requested shape:\{([-\d,]*)\}`)

// learnShape reads, from ONNX Runtime's refusal of a preallocated output
// of the wrong shape, the shape the output really has, and remembers it
// for the output that ladder allocated with the wrong shape. It reports
// whether it learnt anything, in which case the run is worth repeating.
func (s *scratch) learnShape(err error, infos []tensor.Info) bool {
	m := shapeMismatch.FindStringSubmatch(err.Error())
	if m == nil {
		return false
	}
	current, ok1 := parseShape(m[1])
	requested, ok2 := parseShape(m[2])
	if !ok1 || !ok2 {
		return false
	}
	for i, info := range infos {
		v := s.outs[i]
		if v == nil || !s.preallocated(i, info) ||
			(!info.AnyRank && (len(info.Shape) != len(requested) || !fits(requested, info.Shape))) {
			continue
		}
		if slices.Equal(v.GetShape(), current) && !slices.Equal(s.guesses[i], requested) {
			s.guesses[i] = requested
			if info.AnyRank && len(requested) > 0 && !allocated(tensor.Info{DType: info.DType, Shape: requested}) {
				s.guesses[i] = nil // no longer a scalar: ONNX Runtime allocates it again
			}
			return true
		}
	}
	return false
}

// learnScalar recognises onnxruntime_go's refusal to return a scalar
// that ONNX Runtime allocated, for an output of any rank: the first
// output it left empty. It remembers that output as a scalar, for ladder
// to allocate from then on, and reports whether the run is worth
// repeating. (onnxruntime_go does not release the outputs after the one
// it refused: one run's worth, once per scratch and output.)
func (s *scratch) learnScalar(err error, infos []tensor.Info) bool {
	if !errors.Is(err, ort.ZeroShapeLengthError) {
		return false
	}
	for i, info := range infos {
		// The refused output holds a typed nil, the ones before it live values.
		if !isNil(s.outs[i]) || s.preallocated(i, info) {
			continue
		}
		if !info.AnyRank || info.DType == tensor.String || (s.guesses[i] != nil && len(s.guesses[i]) == 0) {
			return false
		}
		s.guesses[i] = []int64{}
		return true
	}
	return false
}

// learn is learnShape or learnScalar: whether the failed run is worth
// repeating with other outputs.
func (s *scratch) learn(err error, infos []tensor.Info) bool {
	return s.learnShape(err, infos) || s.learnScalar(err, infos)
}

func parseShape(s string) ([]int64, bool) {
	if s == "" {
		return []int64{}, true
	}
	parts := strings.Split(s, ",")
	shape := make([]int64, len(parts))
	for i, p := range parts {
		d, err := strconv.ParseInt(p, 10, 64)
		if err != nil || d < 0 {
			return nil, false
		}
		shape[i] = d
	}
	return shape, true
}

// fits reports whether shape matches want, whose negative dimensions are
// dynamic.
func fits(shape, want []int64) bool {
	for d, n := range want {
		if n >= 0 && shape[d] != n {
			return false
		}
	}
	return true
}

// readOutputs converts the native outputs of a successful run into the
// tensors returned to the caller. With copyData the data is copied, as
// [scratch.readOutput] says.
func (s *scratch) readOutputs(infos []tensor.Info, copyData bool) ([]tensor.Tensor, error) {
	result, b := block.New(len(s.outs))
	for i := range s.outs {
		var err error
		result[i], err = s.readOutput(i, infos[i], copyData, &b)
		if err != nil {
			return nil, fmt.Errorf("reading output %q: %w", infos[i].Name, err)
		}
	}
	return result, nil
}

// readOutput converts the native output i into a tensor.Tensor. With copyData
// the data is copied, because the output stays in the scratch for the next
// run; otherwise its Go-owned buffer is handed to the caller and the
// output is released by dropOutputs.
func (s *scratch) readOutput(i int, info tensor.Info, copyData bool, b *block.Room) (tensor.Tensor, error) {
	v := s.outs[i] // after a successful run, a live value
	if v == nil {
		return tensor.Tensor{}, errors.New("onnxruntime_go returned no value")
	}
	t := tensor.Tensor{Name: info.Name}
	switch o := v.(type) {
	case *ort.Tensor[float32]:
		t.Data = outputData(b, o, copyData)
	case *ort.Tensor[float64]:
		t.Data = outputData(b, o, copyData)
	case *ort.Tensor[int8]:
		t.Data = outputData(b, o, copyData)
	case *ort.Tensor[uint8]:
		t.Data = outputData(b, o, copyData)
	case *ort.Tensor[int16]:
		t.Data = outputData(b, o, copyData)
	case *ort.Tensor[uint16]:
		t.Data = outputData(b, o, copyData)
	case *ort.Tensor[int32]:
		t.Data = outputData(b, o, copyData)
	case *ort.Tensor[uint32]:
		t.Data = outputData(b, o, copyData)
	case *ort.Tensor[int64]:
		t.Data = outputData(b, o, copyData)
	case *ort.Tensor[uint64]:
		t.Data = outputData(b, o, copyData)
	case *ort.Tensor[bool]:
		t.Data = outputData(b, o, copyData)
	case *ort.Scalar[float32]:
		t.Data = scalarData(b, o.GetData())
	case *ort.Scalar[float64]:
		t.Data = scalarData(b, o.GetData())
	case *ort.Scalar[int8]:
		t.Data = scalarData(b, o.GetData())
	case *ort.Scalar[uint8]:
		t.Data = scalarData(b, o.GetData())
	case *ort.Scalar[int16]:
		t.Data = scalarData(b, o.GetData())
	case *ort.Scalar[uint16]:
		t.Data = scalarData(b, o.GetData())
	case *ort.Scalar[int32]:
		t.Data = scalarData(b, o.GetData())
	case *ort.Scalar[uint32]:
		t.Data = scalarData(b, o.GetData())
	case *ort.Scalar[int64]:
		t.Data = scalarData(b, o.GetData())
	case *ort.Scalar[uint64]:
		t.Data = scalarData(b, o.GetData())
	case *ort.Scalar[bool]:
		t.Data = scalarData(b, o.GetData())
	case *ort.CustomDataTensor:
		switch info.DType {
		case tensor.Float16:
			t.Data = block.Box(b, halfData[tensor.F16](b, o.GetData(), o.GetShape()))
		case tensor.BFloat16:
			t.Data = block.Box(b, halfData[tensor.BF16](b, o.GetData(), o.GetShape()))
		default:
			return tensor.Tensor{}, fmt.Errorf("unexpected %s tensor", info.DType)
		}
	case *ort.StringTensor:
		if len(o.GetShape()) == 0 {
			// GetContents cannot read a scalar string.
			e, err := o.GetElement(0)
			if err != nil {
				return tensor.Tensor{}, err
			}
			t.Data = block.Box(b, []string{e})
			break
		}
		contents, err := o.GetContents()
		if err != nil {
			return tensor.Tensor{}, err
		}
		t.Data = block.Box(b, contents)
	default:
		return tensor.Tensor{}, fmt.Errorf("unsupported output type %T", v)
	}
	if s.outShapes[i] == nil {
		s.outShapes[i] = v.GetShape() // a copy owned by the scratch
		if s.outShapes[i] == nil {
			s.outShapes[i] = []int64{} // a scalar
		}
	}
	t.Shape = s.outShapes[i]
	if copyData {
		t.Shape = block.Shape(b, t.Shape)
	}
	if s.preallocated(i, info) && (info.AnyRank || slices.ContainsFunc(info.Shape, func(d int64) bool { return d < 0 })) &&
		!slices.Equal(s.guesses[i], t.Shape) {
		s.guesses[i] = slices.Clone(t.Shape)
	}
	return t, nil
}

// halfData copies the elements of a float16 or bfloat16 tensor.
func halfData[T tensor.F16 | tensor.BF16](b *block.Room, data []byte, shape []int64) []T {
	n, _ := tensor.NumElements(shape)
	out := block.Make[T](b, int(n))
	copy(halfBytes(out), data)
	return out
}

// outputData returns the data of t, copied when copyData is set because t
// stays in the scratch for the next run.
func outputData[T ort.TensorData](b *block.Room, t *ort.Tensor[T], copyData bool) any {
	if copyData {
		return block.Box(b, block.Clone(b, t.GetData()))
	}
	return block.Box(b, t.GetData())
}

// scalarData returns v as the data of a scalar tensor.
func scalarData[T ort.TensorData](b *block.Room, v T) any {
	d := block.Make[T](b, 1)
	d[0] = v
	return block.Box(b, d)
}

// dropOutputs releases the output tensors so the next run allocates fresh
// ones.
func (s *scratch) dropOutputs() {
	for i, v := range s.outs {
		if v != nil {
			s.outs[i] = nil
			_ = release(v)
		}
	}
	clear(s.outShapes)
	s.outsReady = false
}

// destroy releases every native object the scratch holds.
func (s *scratch) destroy() error {
	s.dropOutputs()
	var errs []error
	for i, v := range s.ins {
		if v != nil {
			s.ins[i] = nil
			errs = append(errs, release(v))
		}
	}
	if s.dog != nil {
		s.dog.remove(s)
	}
	if s.ro != nil {
		errs = append(errs, s.ro.Destroy())
		s.ro = nil
	}
	return errors.Join(errs...)
}

// isNil reports whether v is nil or holds a nil pointer, as onnxruntime_go
// leaves behind when it fails to convert an output.
func isNil(v ort.Value) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// release destroys v, if it is a live value, and never panics.
func release(v ort.Value) (err error) {
	if isNil(v) {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("models: releasing a native value: %v", r)
		}
	}()
	return v.Destroy()
}
