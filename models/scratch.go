//go:build cgo

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
	outShapes [][]int64  // shapes of outs while outsReady
	outsReady bool       // outs hold tensors shaped for the current inputs
	guesses   [][]int64  // last shapes seen of outputs that ladder allocates and whose shape is dynamic
	room      block.Room // what is left of the result's block while readOutputs fills it in

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
		n := nativeOf(t.DType())
		if v := s.ins[i]; v != nil && slices.Equal(s.inShapes[i], t.Shape) && n.fill(v, t.Data) {
			continue
		}
		sameShapes = false
		if v := s.ins[i]; v != nil {
			s.ins[i], s.inShapes[i] = nil, nil
			_ = release(v)
		}
		v, err := n.newInput(t.Shape, t.Data)
		if err != nil {
			return false, fmt.Errorf("input %q: %w", t.Name, err)
		}
		s.ins[i], s.inShapes[i] = v, slices.Clone(t.Shape)
	}
	return sameShapes, nil
}

// allocated reports whether ladder allocates output info itself instead of
// letting onnxruntime_go do it: onnxruntime_go cannot return scalars, and
// returns float16 and bfloat16 tensors with half their bytes missing.
// Scalar strings are the exception: onnxruntime_go returns them intact.
func allocated(info tensor.Info) bool {
	return nativeOf(info.DType).allocates(len(info.Shape) == 0)
}

// preallocated reports whether ladder allocates output i itself: as
// [allocated] says for an output of known rank. An output of any rank
// is allocated by ONNX Runtime unless it is float16 or bfloat16, or a
// run showed it to be a scalar, which onnxruntime_go cannot return.
func (s *scratch) preallocated(i int, info tensor.Info) bool {
	if !info.AnyRank {
		return allocated(info)
	}
	return nativeOf(info.DType).allocates(s.guesses[i] != nil && len(s.guesses[i]) == 0)
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
		v, err := nativeOf(info.DType).newOutput(shape)
		if err != nil {
			s.guesses[i] = nil // a failed guess must not fail the next run too
			return fmt.Errorf("output %q: %w", info.Name, err)
		}
		s.outs[i] = v
	}
	return nil
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
	var result []tensor.Tensor
	result, s.room = block.New(len(s.outs))
	defer func() { s.room = block.Room{} }() // the result is the caller's
	for i := range s.outs {
		var err error
		result[i], err = s.readOutput(i, infos[i], copyData, &s.room)
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
	data, err := nativeOf(info.DType).read(b, v, copyData)
	if err != nil {
		return tensor.Tensor{}, err
	}
	t := tensor.Tensor{Name: info.Name, Data: data}
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
