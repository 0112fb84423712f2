package models

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/tensor"
	ort "github.com/yalue/onnxruntime_go"
)

// scratch is the native state of one run: input and output tensors that
// are reused while shapes stay the same, and the RunOptions whose
// Terminate stops the run when its context ends. A scratch serves one run
// at a time; a Model keeps a bounded pool of them.
type scratch struct {
	ordered   []tensor.Tensor // the caller's inputs in signature order
	ins       []ort.Value
	inShapes  [][]int64 // shapes of ins, kept to avoid ort's copying GetShape
	outs      []ort.Value
	outShapes [][]int64 // shapes of outs while outsReady
	outsReady bool      // outs hold tensors shaped for the current inputs

	ro        *ort.RunOptions
	fired     chan struct{} // receives once per terminate callback that ran
	onCancel  func()        // terminates the run when its context ends
	onTimeout func()        // terminates the run when its timeout passes
	timer     *time.Timer   // runs onTimeout; created on first use
	timedOut  atomic.Bool
	stopCtx   func() bool // undoes the context watch of the current run
	timing    bool        // the timer is armed for the current run
	unwatchFn func() bool // s.unwatch, bound once so watch allocates nothing
	noWatchFn func() bool // s.noWatch, likewise
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
		ro:        ro,
		fired:     make(chan struct{}, 2),
	}
	s.onCancel = func() {
		_ = s.ro.Terminate()
		s.fired <- struct{}{}
	}
	s.unwatchFn, s.noWatchFn = s.unwatch, s.noWatch
	s.onTimeout = func() {
		s.timedOut.Store(true)
		_ = s.ro.Terminate()
		s.fired <- struct{}{}
	}
	return s, nil
}

// watch arranges for the run to be terminated when ctx ends or timeout
// (if positive) passes. The returned function undoes that once the run
// has returned, waits for any callback that already started, and reports
// whether the timeout fired.
func (s *scratch) watch(ctx context.Context, timeout time.Duration) (done func() bool) {
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, s.onCancel)
	}
	if timeout > 0 {
		if s.timer == nil {
			s.timer = time.AfterFunc(timeout, s.onTimeout)
		} else {
			s.timer.Reset(timeout)
		}
	}
	if stop == nil && timeout <= 0 {
		return s.noWatchFn
	}
	s.stopCtx, s.timing = stop, timeout > 0
	return s.unwatchFn
}

func (s *scratch) noWatch() bool { return false }

func (s *scratch) unwatch() bool {
	fired := 0
	if s.stopCtx != nil && !s.stopCtx() {
		fired++
	}
	if s.timing && !s.timer.Stop() {
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

// setInputs copies s.ordered into native tensors, reusing last run's when
// element type and shape match. It reports whether every shape matched.
func (s *scratch) setInputs() (sameShapes bool, err error) {
	sameShapes = true
	for i, t := range s.ordered {
		if v := s.ins[i]; v != nil && slices.Equal(s.inShapes[i], t.Shape) && fill(v, t.Data) {
			continue
		}
		sameShapes = false
		if s.ins[i] != nil {
			_ = s.ins[i].Destroy()
			s.ins[i] = nil
		}
		if s.ins[i], err = newInput(t); err != nil {
			return false, err
		}
		s.inShapes[i] = slices.Clone(t.Shape)
	}
	return sameShapes, nil
}

// fill copies data into v when v holds the same element type.
func fill(v ort.Value, data any) bool {
	switch d := data.(type) {
	case []float32:
		return fillTensor(v, d)
	case []float64:
		return fillTensor(v, d)
	case []int32:
		return fillTensor(v, d)
	case []int64:
		return fillTensor(v, d)
	case []bool:
		return fillTensor(v, d)
	case []string:
		st, ok := v.(*ort.StringTensor)
		return ok && st.SetContents(d) == nil
	}
	return false
}

func fillTensor[T ort.TensorData](v ort.Value, d []T) bool {
	t, ok := v.(*ort.Tensor[T])
	if ok {
		copy(t.GetData(), d)
	}
	return ok
}

func newInput(t tensor.Tensor) (ort.Value, error) {
	shape := ort.Shape(slices.Clone(t.Shape))
	switch d := t.Data.(type) {
	case []float32:
		return newTensor(shape, d)
	case []float64:
		return newTensor(shape, d)
	case []int32:
		return newTensor(shape, d)
	case []int64:
		return newTensor(shape, d)
	case []bool:
		return newTensor(shape, d)
	case []string:
		st, err := ort.NewStringTensor(shape)
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

// newTensor returns a native tensor over a private copy of d. ONNX Runtime
// rejects a tensor with no backing memory, so an empty one gets a single
// spare element.
func newTensor[T ort.TensorData](shape ort.Shape, d []T) (ort.Value, error) {
	buf := make([]T, max(len(d), 1))
	copy(buf, d)
	return ort.NewTensor(shape, buf)
}

// readOutput converts the native output i into a tensor.Tensor. With copyData
// the data is copied, because the output stays in the scratch for the next
// run; otherwise its Go-owned buffer is handed to the caller and the
// output is released by dropOutputs.
func (s *scratch) readOutput(i int, name string, copyData bool, dims *[]int64) (tensor.Tensor, error) {
	v := s.outs[i]
	t := tensor.Tensor{Name: name}
	switch o := v.(type) {
	case *ort.Tensor[float32]:
		t.Data = outputData(o, copyData)
	case *ort.Tensor[float64]:
		t.Data = outputData(o, copyData)
	case *ort.Tensor[int32]:
		t.Data = outputData(o, copyData)
	case *ort.Tensor[int64]:
		t.Data = outputData(o, copyData)
	case *ort.Tensor[bool]:
		t.Data = outputData(o, copyData)
	case *ort.StringTensor:
		contents, err := o.GetContents()
		if err != nil {
			return tensor.Tensor{}, err
		}
		t.Data = contents
	default:
		return tensor.Tensor{}, fmt.Errorf("unsupported output type %T", v)
	}
	if s.outShapes[i] == nil {
		s.outShapes[i] = v.GetShape() // a copy owned by the scratch
	}
	t.Shape = s.outShapes[i]
	if copyData {
		t.Shape = cloneShape(t.Shape, dims)
	}
	return t, nil
}

// cloneShape copies shape into the spare room of *dims when it fits, and
// into a new slice otherwise.
func cloneShape(shape []int64, dims *[]int64) []int64 {
	d := *dims
	if len(d)+len(shape) > cap(d) {
		return slices.Clone(shape)
	}
	start := len(d)
	d = append(d, shape...)
	*dims = d
	return d[start:len(d):len(d)]
}

func outputData[T ort.TensorData](t *ort.Tensor[T], copyData bool) []T {
	if copyData {
		return slices.Clone(t.GetData())
	}
	return t.GetData()
}

// dropOutputs releases the output tensors so the next run allocates fresh
// ones.
func (s *scratch) dropOutputs() {
	for i, v := range s.outs {
		if v != nil {
			_ = v.Destroy()
			s.outs[i] = nil
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
			errs = append(errs, v.Destroy())
			s.ins[i] = nil
		}
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	errs = append(errs, s.ro.Destroy())
	return errors.Join(errs...)
}
