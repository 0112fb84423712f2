package models

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/tensor"
	ort "github.com/yalue/onnxruntime_go"
)

// Optimization is ONNX Runtime's graph optimisation level.
type Optimization int

// Graph optimisation levels. The zero value is [OptimizeAll].
const (
	OptimizeAll      Optimization = iota // every optimisation (default)
	OptimizeExtended                     // basic plus extended fusions
	OptimizeBasic                        // constant folding and redundant-node removal
	OptimizeNone                         // run the graph as written
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

// Options tunes how a model is loaded. The zero value is ready to use.
type Options struct {
	// Name labels the model in errors and provenance. The default is the
	// file name without its extension, or "model" for [LoadBytes].
	Name string

	// IntraOpThreads is the number of threads ONNX Runtime may use inside
	// one operator. The default is 1: ladder serves many small concurrent
	// requests, and one thread per run avoids the thread hand-offs and
	// oversubscription that cost more than they save on small models. Raise
	// it for large models served at low concurrency.
	IntraOpThreads int

	// InterOpThreads is the number of threads ONNX Runtime may use to run
	// independent operators in parallel. The default is 1, for the same
	// reason as IntraOpThreads.
	InterOpThreads int

	// Optimization is the graph optimisation level. The default is
	// [OptimizeAll].
	Optimization Optimization
}

// Model is an ONNX model loaded in-process, ready to serve predictions.
//
// A Model is safe for concurrent use by many goroutines: it runs on one
// ONNX Runtime session, which supports concurrent runs, and keeps a small
// pool of reusable native tensors so a steady stream of same-shaped
// requests allocates little. Every input is checked in Go before any native
// call.
type Model struct {
	name    string
	sig     tensor.Signature
	version string

	session  *ort.DynamicAdvancedSession
	scratch  chan *scratch
	reuseOut atomic.Bool // preallocated outputs may be reused across runs

	mu     sync.RWMutex // held shared by runs, exclusively by Close
	closed bool
}

// Load reads the ONNX model at path and creates a session for it.
// [InitRuntime] must have been called. A missing, corrupt or truncated
// file gives a [*LoadError] matching [ErrLoad].
func Load(path string, opts Options) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &LoadError{Source: path, Err: err}
	}
	if opts.Name == "" {
		opts.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return load(path, data, opts)
}

// LoadBytes creates a session for the ONNX model in data. It behaves like
// [Load] and does not keep data.
func LoadBytes(data []byte, opts Options) (*Model, error) {
	if opts.Name == "" {
		opts.Name = "model"
	}
	return load("<bytes>", data, opts)
}

func load(source string, data []byte, opts Options) (m *Model, err error) {
	if err := retainRuntime(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			releaseRuntime()
		}
	}()
	if len(data) == 0 {
		return nil, &LoadError{Source: source, Err: errors.New("file is empty")}
	}
	inInfo, outInfo, err := ort.GetInputOutputInfoWithONNXData(data)
	if err != nil {
		return nil, &LoadError{Source: source, Err: err}
	}
	sig := tensor.Signature{}
	if sig.Inputs, err = tensorInfos("input", inInfo); err != nil {
		return nil, &LoadError{Source: source, Err: err}
	}
	if sig.Outputs, err = tensorInfos("output", outInfo); err != nil {
		return nil, &LoadError{Source: source, Err: err}
	}

	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, &LoadError{Source: source, Err: err}
	}
	defer so.Destroy()
	if err := configure(so, opts); err != nil {
		return nil, &LoadError{Source: source, Err: err}
	}
	session, err := ort.NewDynamicAdvancedSessionWithONNXData(data,
		tensor.Names(sig.Inputs), tensor.Names(sig.Outputs), so)
	if err != nil {
		return nil, &LoadError{Source: source, Err: err}
	}
	if err := readMetadata(session, &sig); err != nil {
		session.Destroy()
		return nil, &LoadError{Source: source, Err: err}
	}

	m = &Model{
		name:    opts.Name,
		sig:     sig,
		version: strconv.FormatInt(sig.Version, 10),
		session: session,
		scratch: make(chan *scratch, scratchPoolSize()),
	}
	m.reuseOut.Store(!slices.ContainsFunc(sig.Outputs, func(t tensor.Info) bool { return t.DType == tensor.String }))
	return m, nil
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

func tensorInfos(kind string, infos []ort.InputOutputInfo) ([]tensor.Info, error) {
	out := make([]tensor.Info, len(infos))
	for i, info := range infos {
		if info.OrtValueType != ort.ONNXTypeTensor {
			return nil, fmt.Errorf("%s %q is a %s; ladder serves tensors only", kind, info.Name, info.OrtValueType)
		}
		dt := dtypeFromORT(info.DataType)
		if dt == tensor.Invalid {
			return nil, fmt.Errorf("%s %q has element type %s; ladder supports float32, float64, int32, int64, bool and string",
				kind, info.Name, info.DataType)
		}
		out[i] = tensor.Info{Name: info.Name, DType: dt, Shape: append([]int64(nil), info.Dimensions...)}
	}
	return out, nil
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

// Name returns the model's name, from [Options.Name].
func (m *Model) Name() string { return m.name }

// Version returns the model version from its metadata, as a decimal string.
func (m *Model) Version() string { return m.version }

// Signature returns a copy of the model's inputs, outputs and metadata.
func (m *Model) Signature() tensor.Signature { return m.sig.Clone() }

// Predict runs the model on inputs, one tensor per model input, matched by
// name. Inputs that do not fit the signature get an [*tensor.InputError] matching
// [tensor.ErrInvalidInput], and never reach ONNX Runtime.
//
// Predict blocks until the run finishes or ctx is done. When ctx is done
// the native run is terminated and Predict returns promptly with ctx's
// error. The returned tensors are owned by the caller. After [Model.Close]
// it returns [ErrClosed].
func (m *Model) Predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	return m.predict(ctx, 0, inputs)
}

// PredictTimeout is [Model.Predict] with a bound on the run: when timeout
// passes first, the native run is terminated and PredictTimeout returns an
// error matching [ErrTimeout]. It costs less than a context with a
// deadline, because the timer is reused across runs. A timeout of zero or
// less means none.
func (m *Model) PredictTimeout(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	return m.predict(ctx, timeout, inputs)
}

func (m *Model) predict(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	s, err := m.getScratch()
	if err != nil {
		return nil, err
	}
	out, err := m.run(ctx, timeout, s, inputs)
	m.putScratch(s)
	return out, err
}

func (m *Model) run(ctx context.Context, timeout time.Duration, s *scratch, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if err := tensor.CheckInputs(m.name, m.sig.Inputs, inputs, s.ordered); err != nil {
		return nil, err
	}
	sameShapes, err := s.setInputs()
	if err != nil {
		return nil, fmt.Errorf("models: %s: preparing inputs: %w", m.name, err)
	}
	reuse := sameShapes && s.outsReady && m.reuseOut.Load()
	if !reuse {
		s.dropOutputs()
	}

	unwatch := s.watch(ctx, timeout)
	err = m.session.RunWithOptions(s.ins, s.outs, s.ro)
	if err != nil && reuse && ctx.Err() == nil {
		// An output whose shape depends on the data cannot reuse last
		// run's buffer: run again with fresh outputs and stop reusing.
		m.reuseOut.Store(false)
		reuse = false
		s.dropOutputs()
		err = m.session.RunWithOptions(s.ins, s.outs, s.ro)
	}
	timedOut := unwatch()
	if err != nil {
		s.dropOutputs()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if timedOut {
			return nil, fmt.Errorf("models: %s: %w after %v", m.name, ErrTimeout, timeout)
		}
		return nil, fmt.Errorf("models: %s: run failed: %w", m.name, err)
	}

	result, dims := newResult(len(s.outs))
	for i := range s.outs {
		result[i], err = s.readOutput(i, m.sig.Outputs[i].Name, reuse || m.reuseOut.Load(), &dims)
		if err != nil {
			s.dropOutputs()
			return nil, fmt.Errorf("models: %s: reading output %q: %w", m.name, m.sig.Outputs[i].Name, err)
		}
	}
	if m.reuseOut.Load() {
		s.outsReady = true
	} else {
		s.dropOutputs()
	}
	return result, nil
}

// result backs the outputs of a typical run in one allocation: the tensor
// list and their shapes.
type result struct {
	tensors [2]tensor.Tensor
	dims    [8]int64
}

// newResult returns room for n output tensors and, in dims, spare room for
// their shapes.
func newResult(n int) ([]tensor.Tensor, []int64) {
	if n > 2 {
		return make([]tensor.Tensor, n), nil
	}
	r := &result{}
	return r.tensors[:n:n], r.dims[:0:len(r.dims)]
}

// Warmup runs the model once on zero-valued inputs, with every dynamic
// dimension set to 1, so the first real request does not pay for lazy
// initialisation inside ONNX Runtime.
func (m *Model) Warmup(ctx context.Context) error {
	inputs := make([]tensor.Tensor, len(m.sig.Inputs))
	for i, info := range m.sig.Inputs {
		shape := slices.Clone(info.Shape)
		for d := range shape {
			if shape[d] < 0 {
				shape[d] = 1
			}
		}
		n, _ := tensor.NumElements(shape)
		inputs[i] = zeroTensor(info.Name, info.DType, shape, int(n))
	}
	_, err := m.Predict(ctx, inputs)
	return err
}

func zeroTensor(name string, dt tensor.DType, shape []int64, n int) tensor.Tensor {
	t := tensor.Tensor{Name: name, Shape: shape}
	switch dt {
	case tensor.Float32:
		t.Data = make([]float32, n)
	case tensor.Float64:
		t.Data = make([]float64, n)
	case tensor.Int32:
		t.Data = make([]int32, n)
	case tensor.Int64:
		t.Data = make([]int64, n)
	case tensor.Bool:
		t.Data = make([]bool, n)
	case tensor.String:
		t.Data = make([]string, n)
	}
	return t
}

// Close waits for in-flight runs to finish, then releases the session and
// every native tensor exactly once. Later calls to Predict return
// [ErrClosed]. Close is idempotent and safe for concurrent use. A run whose
// context never ends keeps Close waiting: give runs a deadline.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	var errs []error
	for {
		select {
		case s := <-m.scratch:
			errs = append(errs, s.destroy())
			continue
		default:
		}
		break
	}
	errs = append(errs, m.session.Destroy())
	releaseRuntime()
	return errors.Join(errs...)
}

func (m *Model) getScratch() (*scratch, error) {
	select {
	case s := <-m.scratch:
		return s, nil
	default:
		return newScratch(len(m.sig.Inputs), len(m.sig.Outputs))
	}
}

func (m *Model) putScratch(s *scratch) {
	clear(s.ordered)
	select {
	case m.scratch <- s:
	default:
		_ = s.destroy()
	}
}

func dtypeFromORT(t ort.TensorElementDataType) tensor.DType {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return tensor.Float32
	case ort.TensorElementDataTypeDouble:
		return tensor.Float64
	case ort.TensorElementDataTypeInt32:
		return tensor.Int32
	case ort.TensorElementDataTypeInt64:
		return tensor.Int64
	case ort.TensorElementDataTypeBool:
		return tensor.Bool
	case ort.TensorElementDataTypeString:
		return tensor.String
	}
	return tensor.Invalid
}
