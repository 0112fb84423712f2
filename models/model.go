//go:build cgo

package models

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/tensor"
	ort "github.com/yalue/onnxruntime_go"
)

func (o Optimization) ort() ort.GraphOptimizationLevel {
	switch o {
	case OptimizeNone:
		return ort.GraphOptimizationLevelDisableAll
	case OptimizeBasic:
		return ort.GraphOptimizationLevelEnableBasic
	case OptimizeExtended:
		return ort.GraphOptimizationLevelEnableExtended
	}
	return ort.GraphOptimizationLevelEnableAll
}

// Model is an ONNX model loaded in-process, ready to serve predictions.
//
// A Model is safe for concurrent use by many goroutines: it runs on one
// ONNX Runtime session, which supports concurrent runs, and keeps a small
// pool of reusable native tensors so a steady stream of same-shaped
// requests allocates little. Every input is checked in Go before any native
// call, and no failure (a bad input, a failed, cancelled or timed-out run,
// a panic in onnxruntime_go) leaves the model unfit for the next call.
type Model struct {
	name    string
	sig     tensor.Signature
	version string
	warmup  []tensor.Tensor
	guards  []guard // value checks for kernels that crash on some inputs

	session  *ort.DynamicAdvancedSession
	scratch  pool        // idle scratches
	dog      watchdog    // enforces the timeouts of PredictTimeout
	reuseOut atomic.Bool // preallocated outputs may be reused across runs

	// state counts the runs in flight, plus closing once Close has begun;
	// no run starts after that. The run that leaves last closes drained.
	state     atomic.Int64
	drained   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// errNilModel is [ErrClosed] for a call on a nil *Model.
var errNilModel = fmt.Errorf("%w: nil *models.Model (did Load fail?)", ErrClosed)

// errNilContext refuses a nil context, which would otherwise panic.
var errNilContext = errors.New("models: nil context.Context; use context.Background()")

const closing = 1 << 62

// Load reads the ONNX model at path and creates a session for it. Tensors
// the model keeps as external data are read from the files it names,
// which ONNX Runtime requires to lie in path's directory or below it.
// [InitRuntime] must have been called. A missing, corrupt or truncated
// file, a graph ONNX Runtime refuses, a model ladder cannot serve (no
// inputs, an input or output that is not a tensor of a supported element
// type) and [Options.WarmupInputs] that do not fit give a [*LoadError]
// matching [ErrLoad], whose Hint says what to do about that cause.
func Load(path string, opts Options) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &LoadError{Source: path, Err: err}
	}
	if opts.Name == "" {
		opts.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return load(path, path, data, opts)
}

// LoadBytes creates a session for the ONNX model in data. It behaves like
// [Load] and does not keep data. A model that keeps tensors as external
// data in other files needs [Load], which finds them beside the model
// file.
func LoadBytes(data []byte, opts Options) (*Model, error) {
	if opts.Name == "" {
		opts.Name = "model"
	}
	return load("<bytes>", "", data, opts)
}

// load creates the model from data, the contents of the file at path, or
// of no file when path is "". With a path, ONNX Runtime reads the file
// itself, so that weights kept as external data next to it are found.
func load(source, path string, data []byte, opts Options) (m *Model, err error) {
	if err := retainRuntime(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			releaseRuntime()
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, &LoadError{Source: source, Err: &PanicError{Model: opts.Name, Value: r, Stack: debug.Stack()}}
		}
	}()
	if err := opts.check(); err != nil {
		return nil, &LoadError{Source: source, Err: err}
	}
	if len(data) == 0 {
		return nil, &LoadError{Source: source, Err: errors.New("file is empty"), Hint: hintIncomplete}
	}
	var inInfo, outInfo []ort.InputOutputInfo
	if path != "" {
		inInfo, outInfo, err = ort.GetInputOutputInfo(path)
	} else {
		inInfo, outInfo, err = ort.GetInputOutputInfoWithONNXData(data)
	}
	if err != nil {
		return nil, &LoadError{Source: source, Err: err, Hint: loadHint(err)}
	}
	sig := tensor.Signature{}
	inRanks, outRanks := declaredRanks(data)
	var hint string
	if sig.Inputs, hint, err = tensorInfos("input", inInfo, inRanks); err != nil {
		return nil, &LoadError{Source: source, Err: err, Hint: hint}
	}
	if sig.Outputs, hint, err = tensorInfos("output", outInfo, outRanks); err != nil {
		return nil, &LoadError{Source: source, Err: err, Hint: hint}
	}
	// onnxruntime_go cannot run a graph without inputs or outputs.
	if len(sig.Inputs) == 0 {
		return nil, &LoadError{Source: source, Err: errors.New("the model has no inputs"),
			Hint: "ladder serves models that take at least one input; a constant belongs in a Go function"}
	}
	if len(sig.Outputs) == 0 {
		return nil, &LoadError{Source: source, Err: errors.New("the model has no outputs")}
	}
	var warmup []tensor.Tensor
	if opts.WarmupInputs != nil {
		if err := tensor.CheckInputs(opts.Name, sig.Inputs, opts.WarmupInputs, make([]tensor.Tensor, len(sig.Inputs))); err != nil {
			return nil, &LoadError{Source: source, Err: err, Hint: "Options.WarmupInputs must fit the model's inputs"}
		}
		warmup = tensor.CloneAll(opts.WarmupInputs)
	}

	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, &LoadError{Source: source, Err: err}
	}
	defer so.Destroy()
	if err := configure(so, opts); err != nil {
		return nil, &LoadError{Source: source, Err: err}
	}
	var session *ort.DynamicAdvancedSession
	if path != "" {
		session, err = ort.NewDynamicAdvancedSession(path, tensor.Names(sig.Inputs), tensor.Names(sig.Outputs), so)
	} else {
		session, err = ort.NewDynamicAdvancedSessionWithONNXData(data, tensor.Names(sig.Inputs), tensor.Names(sig.Outputs), so)
	}
	if err != nil {
		return nil, &LoadError{Source: source, Err: err, Hint: loadHint(err)}
	}
	if err := readMetadata(session, &sig); err != nil {
		session.Destroy()
		return nil, &LoadError{Source: source, Err: err}
	}

	version := ""
	if sig.Version == math.MaxInt64 { // ONNX Runtime's "no model_version"
		sig.Version = 0
	} else {
		version = strconv.FormatInt(sig.Version, 10)
	}
	m = &Model{
		name:    opts.Name,
		sig:     sig,
		version: version,
		warmup:  warmup,
		guards:  append(inputGuards(sig.Inputs), guardsFor(data, sig.Inputs)...),
		session: session,
		scratch: newPool(scratchPoolSize()),
		drained: make(chan struct{}),
	}
	m.reuseOut.Store(!slices.ContainsFunc(sig.Outputs, func(t tensor.Info) bool { return t.DType == tensor.String }))
	return m, nil
}

// check returns what is wrong with opts, or nil.
func (opts Options) check() error {
	switch {
	case opts.IntraOpThreads > MaxThreads:
		return fmt.Errorf("Options.IntraOpThreads is %d; expected at most %d (0 for the default, 1)", opts.IntraOpThreads, MaxThreads)
	case opts.InterOpThreads > MaxThreads:
		return fmt.Errorf("Options.InterOpThreads is %d; expected at most %d (0 for the default, 1)", opts.InterOpThreads, MaxThreads)
	case opts.Optimization < OptimizeAll || opts.Optimization > OptimizeNone:
		return fmt.Errorf("Options.Optimization is %d; expected OptimizeAll, OptimizeExtended, OptimizeBasic or OptimizeNone", int(opts.Optimization))
	}
	return nil
}

func configure(so *ort.SessionOptions, opts Options) error {
	intra, inter := opts.IntraOpThreads, opts.InterOpThreads
	if intra <= 0 {
		intra = 1
	}
	if inter <= 0 {
		inter = 1
	}
	if err := so.SetIntraOpNumThreads(intra); err != nil {
		return err
	}
	if err := so.SetInterOpNumThreads(inter); err != nil {
		return err
	}
	return so.SetGraphOptimizationLevel(opts.Optimization.ort())
}

const hintTypes = "ladder carries tensors of float32, float64, float16, bfloat16, " +
	"int8, int16, int32, int64, uint8, uint16, uint32, uint64, bool and string"

// hintDeclared is the hint for a float16 or bfloat16 output declared
// larger than ladder allocates before a run.
const hintDeclared = "re-export the model with the output's true shape, or a dynamic dimension where its size varies"

// hintNotTensor is the hint for a sequence, map or optional input or
// output. scikit-learn classifiers converted by skl2onnx return their
// probabilities as a sequence of maps unless told otherwise.
const hintNotTensor = "ladder carries tensors only; export the model with tensor inputs and outputs" +
	"; for a skl2onnx classifier, pass options={'zipmap': False}"

// tensorInfos converts what ONNX Runtime reports of the inputs or outputs
// into Infos. ranks holds the rank each declares in the file (-1 for
// none): one that ONNX Runtime reports without dimensions is a scalar
// only when the file says so, and otherwise of any rank.
func tensorInfos(kind string, infos []ort.InputOutputInfo, ranks map[string]int) ([]tensor.Info, string, error) {
	out := make([]tensor.Info, len(infos))
	for i, info := range infos {
		if info.OrtValueType != ort.ONNXTypeTensor {
			what := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(info.OrtValueType.String(), "ONNX_TYPE_")), "_", " ")
			return nil, hintNotTensor, fmt.Errorf("%s %q is a %s, not a tensor", kind, info.Name, what)
		}
		dt := dtypeFromORT(info.DataType)
		if dt == tensor.Invalid {
			return nil, hintTypes, fmt.Errorf("%s %q has element type %s", kind, info.Name,
				strings.ToLower(strings.TrimPrefix(info.DataType.String(), "ONNX_TENSOR_ELEMENT_DATA_TYPE_")))
		}
		shape := make([]int64, len(info.Dimensions))
		for d, n := range info.Dimensions {
			shape[d] = max(n, -1) // every unknown size is -1
		}
		if rank, ok := ranks[info.Name]; ok && rank != 0 && len(shape) == 0 {
			out[i] = tensor.Info{Name: info.Name, DType: dt, Shape: shape, AnyRank: true}
			continue
		}
		if len(shape) == 0 && !scalarOK(kind, dt) {
			return nil, hintTypes, fmt.Errorf("%s %q is a scalar %s, which onnxruntime_go cannot carry", kind, info.Name, dt)
		}
		out[i] = tensor.Info{Name: info.Name, DType: dt, Shape: shape}
		if kind == "output" && allocated(out[i]) && len(shape) > 0 && !preallocatable(shape, dt) {
			return nil, hintDeclared, fmt.Errorf("%s %q is declared %s, over the %d MiB that ladder allocates before a run for a %s output",
				kind, info.Name, out[i].TypeString(), maxPrealloc>>20, dt)
		}
	}
	return out, "", nil
}

// preallocatable reports whether an output of this shape, its dynamic
// dimensions taken as 1, fits the bound on what ladder allocates before a
// run.
func preallocatable(shape []int64, dt tensor.DType) bool {
	known := slices.DeleteFunc(slices.Clone(shape), func(d int64) bool { return d < 0 })
	n, ok := tensor.NumElements(known)
	return ok && n <= maxPrealloc/int64(dt.Size())
}

// scalarOK reports whether onnxruntime_go can carry a scalar of type dt as
// an input or output: it builds scalars of the numeric Go types only, and
// returns a scalar string but cannot build one.
func scalarOK(kind string, dt tensor.DType) bool {
	in, out := nativeOf(dt).scalars()
	if kind == "output" {
		return out
	}
	return in
}

func readMetadata(s *ort.DynamicAdvancedSession, sig *tensor.Signature) error {
	md, err := s.GetModelMetadata()
	if err != nil {
		return err
	}
	defer md.Destroy()
	if sig.Producer, err = md.GetProducerName(); err != nil {
		return err
	}
	if sig.Graph, err = md.GetGraphName(); err != nil {
		return err
	}
	if sig.Domain, err = md.GetDomain(); err != nil {
		return err
	}
	if sig.Description, err = md.GetDescription(); err != nil {
		return err
	}
	if sig.Version, err = md.GetVersion(); err != nil {
		return err
	}
	keys, err := md.GetCustomMetadataMapKeys()
	if err != nil {
		return err
	}
	sig.Metadata = make(map[string]string, len(keys))
	for _, k := range keys {
		v, _, err := md.LookupCustomMetadataMap(k)
		if err != nil {
			return err
		}
		sig.Metadata[k] = v
	}
	return nil
}

// A nil *Model, such as the one a failed [Load] returns, behaves like a
// closed model instead of panicking: Predict, PredictTimeout and Warmup
// return [ErrClosed], Close returns nil, and Name, Version and Signature
// are empty. So a deferred Close or a model handed on before its error
// was checked fails with an error, never a nil dereference.

// Name returns the model's name, from [Options.Name].
func (m *Model) Name() string {
	if m == nil {
		return ""
	}
	return m.name
}

// Version returns the model version from its metadata (model_version), as
// a decimal string, or "" when the model does not state one.
func (m *Model) Version() string {
	if m == nil {
		return ""
	}
	return m.version
}

// Signature returns a copy of the model's inputs, outputs and metadata.
func (m *Model) Signature() tensor.Signature {
	if m == nil {
		return tensor.Signature{}
	}
	return m.sig.Clone()
}

// Predict runs the model on inputs, one tensor per model input, matched by
// name. A scalar input has an empty shape and one element (see
// [tensor.Scalar]). Inputs that do not fit the signature, values that
// would crash an ONNX Runtime kernel and strings with a NUL byte (see the
// package doc), get an
// [*tensor.InputError] matching [tensor.ErrInvalidInput], and never reach
// ONNX Runtime. A run that ONNX Runtime refuses or fails gets a
// [*RunError] matching [ErrRun], and a panic inside onnxruntime_go a
// [*PanicError] matching [ErrPanic]; the model serves the next call
// either way.
//
// Predict blocks until the run finishes or ctx is done. When ctx is done
// the native run is terminated and Predict returns promptly with ctx's
// error. The returned tensors are owned by the caller. Once [Model.Close]
// has begun it returns [ErrClosed] at once.
func (m *Model) Predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	return m.predict(ctx, 0, inputs)
}

// PredictTimeout is [Model.Predict] with a bound on the run: when timeout
// passes first, the native run is terminated and PredictTimeout returns an
// error matching [ErrTimeout]. It costs less than a context with a
// deadline, because one timer per Model watches every run. A timeout of zero or
// less means none.
func (m *Model) PredictTimeout(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	return m.predict(ctx, timeout, inputs)
}

// predict serves Predict and PredictTimeout. Every panic, in the run or
// in taking or returning its scratch, is recovered into a [*PanicError],
// and a scratch that saw a panic is destroyed, never reused.
func (m *Model) predict(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) (out []tensor.Tensor, err error) {
	if m == nil {
		return nil, errNilModel
	}
	if ctx == nil {
		return nil, errNilContext
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !m.enter() {
		return nil, ErrClosed
	}
	var s *scratch // the run's scratch until it is returned to the pool
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, &PanicError{Model: m.name, Value: r, Stack: debug.Stack()}
			if s != nil {
				if s.stopCtx != nil || s.timing {
					s.unwatch()
				}
				_ = s.destroy()
			}
		}
		m.leave()
	}()
	if s, err = m.getScratch(); err != nil {
		return nil, &RunError{Model: m.name, Err: err}
	}
	out, err = m.run(ctx, timeout, s, inputs)
	m.putScratch(s)
	s = nil
	return out, err
}

// enter records a run starting, and reports false once Close has begun.
// It never blocks.
func (m *Model) enter() bool {
	for {
		n := m.state.Load()
		if n&closing != 0 {
			return false
		}
		if m.state.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// leave records a run ending, and wakes Close after the last one.
func (m *Model) leave() {
	if m.state.Add(-1) == closing {
		close(m.drained)
	}
}

func (m *Model) run(ctx context.Context, timeout time.Duration, s *scratch, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if err := tensor.CheckInputs(m.name, m.sig.Inputs, inputs, s.ordered); err != nil {
		return nil, err
	}
	for _, g := range m.guards {
		if err := g.check(m.name, s.ordered); err != nil {
			return nil, err
		}
	}
	sameShapes, err := s.setInputs()
	if err != nil {
		return nil, &RunError{Model: m.name, Err: fmt.Errorf("preparing %w", err)}
	}
	reuse := sameShapes && s.outsReady && m.reuseOut.Load()
	if !reuse {
		s.dropOutputs()
	}
	if err := s.prepareOutputs(m.sig.Outputs); err != nil {
		s.dropOutputs()
		return nil, &RunError{Model: m.name, Err: fmt.Errorf("preparing %w", err)}
	}

	watched := s.watch(ctx, timeout)
	err = m.session.RunWithOptions(s.ins, s.outs, s.ro)
	if err != nil && !s.terminated(ctx) && (reuse || s.learn(err, m.sig.Outputs)) {
		// The outputs had the wrong shape: last run's buffers for an
		// output whose shape depends on the data, or a guessed shape, or
		// a scalar of any rank. Run again with fresh outputs, as long as
		// each failure teaches something (at most one lesson per output);
		// once that works with reuse off, stop reusing.
		for range 1 + len(s.outs) {
			s.dropOutputs()
			if err = s.prepareOutputs(m.sig.Outputs); err == nil {
				err = m.session.RunWithOptions(s.ins, s.outs, s.ro)
			}
			if err == nil || s.terminated(ctx) || !s.learn(err, m.sig.Outputs) {
				break
			}
		}
		if err == nil && reuse {
			m.reuseOut.Store(false)
		}
		reuse = false
	}
	timedOut := watched && s.unwatch()
	if err != nil {
		s.dropOutputs()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if timedOut {
			return nil, fmt.Errorf("models: %s: %w after %v", m.name, ErrTimeout, timeout)
		}
		return nil, &RunError{Model: m.name, Err: err}
	}

	result, err := s.readOutputs(m.sig.Outputs, reuse || m.reuseOut.Load())
	if err != nil {
		s.dropOutputs()
		return nil, &RunError{Model: m.name, Err: err}
	}
	if m.reuseOut.Load() {
		s.outsReady = true
	} else {
		s.dropOutputs()
	}
	return result, nil
}

// Warmup runs the model once so the first real request does not pay for
// lazy initialisation inside ONNX Runtime. It runs on
// [Options.WarmupInputs] when they were given, and otherwise on inputs
// with every dynamic dimension set to 1 (an input of any rank is a
// one-element vector) and every number set to 1 (bools false, strings
// empty); a model that refuses those needs WarmupInputs.
// Warmup blocks like [Model.Predict] and returns its error.
//
// The default is ones, not zeros: some ONNX Runtime kernels, such as
// integer Div and Mod, crash the process on a zero divisor, and a
// warm-up must never do that.
func (m *Model) Warmup(ctx context.Context) error {
	if m == nil {
		return errNilModel
	}
	inputs := m.warmup
	if inputs == nil {
		inputs = make([]tensor.Tensor, len(m.sig.Inputs))
		for i, info := range m.sig.Inputs {
			shape := slices.Clone(info.Shape)
			if info.AnyRank {
				shape = []int64{-1} // one element, in a vector: every type can be built so
			}
			for d := range shape {
				if shape[d] < 0 {
					shape[d] = 1
				}
			}
			n, _ := tensor.NumElements(shape)
			inputs[i] = onesTensor(info.Name, info.DType, shape, int(n))
		}
	}
	_, err := m.Predict(ctx, inputs)
	return err
}

// onesTensor returns a tensor of n elements of type dt, every number 1,
// every bool false and every string empty.
func onesTensor(name string, dt tensor.DType, shape []int64, n int) tensor.Tensor {
	t := tensor.Tensor{Name: name, Shape: shape, Data: tensor.Make(dt, n)}
	for i := range n {
		switch dt.Kind() {
		case tensor.KindFloat:
			tensor.SetFloat64At(t, i, 1)
		case tensor.KindInt:
			tensor.SetInt64At(t, i, 1)
		case tensor.KindUint:
			tensor.SetUint64At(t, i, 1)
		}
	}
	return t
}

// Close waits for in-flight runs to finish, then releases the session and
// every native tensor exactly once. Calls that arrive once Close has begun
// do not wait for it: Predict returns [ErrClosed] at once. Close is
// idempotent and safe for concurrent use; every call returns the first
// call's error. A run whose context never ends keeps Close waiting: give
// runs a deadline.
func (m *Model) Close() error {
	if m == nil {
		return nil
	}
	m.closeOnce.Do(func() {
		if m.state.Or(closing) != 0 {
			<-m.drained
		}
		var errs []error
		for s := m.scratch.get(); s != nil; s = m.scratch.get() {
			errs = append(errs, s.destroy())
		}
		errs = append(errs, m.session.Destroy())
		releaseRuntime()
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

func (m *Model) getScratch() (*scratch, error) {
	if s := m.scratch.get(); s != nil {
		return s, nil
	}
	s, err := newScratch(len(m.sig.Inputs), len(m.sig.Outputs))
	if err == nil {
		s.dog = &m.dog
		m.dog.add(s)
	}
	return s, err
}

func (m *Model) putScratch(s *scratch) {
	if s.ro == nil { // destroyed: never pooled
		return
	}
	clear(s.ordered)
	if !m.scratch.put(s) {
		_ = s.destroy()
	}
}
