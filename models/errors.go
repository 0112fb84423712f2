package models

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Sentinel errors. Their text is part of the API.
var (
	// ErrClosed is returned by calls on a [Model] after [Model.Close].
	ErrClosed = errors.New("models: model is closed")

	// ErrTimeout is returned by [Model.PredictTimeout] when the run was
	// terminated because its timeout passed.
	// It matches context.DeadlineExceeded too, so a caller that knows
	// nothing of this package still sees a deadline.
	ErrTimeout error = timeoutError{}

	// ErrRuntime matches every [*RuntimeError]: the ONNX Runtime shared
	// library is missing, of the wrong version, or not initialised.
	ErrRuntime = errors.New("models: onnx runtime unavailable")

	// ErrLoad matches every [*LoadError]: a model file could not be read
	// or is not a valid ONNX model.
	ErrLoad = errors.New("models: cannot load model")

	// ErrRun matches every [*RunError]: ONNX Runtime refused or failed a
	// run on inputs that fit the signature.
	ErrRun = errors.New("models: run failed")

	// ErrPanic matches every [*PanicError]: code this package calls
	// panicked, and the panic was recovered.
	ErrPanic = errors.New("models: recovered from a panic")
)

// RuntimeError reports that the ONNX Runtime shared library could not be
// used, with a hint on how to fix it.
type RuntimeError struct {
	Path string // the library path tried, if any
	Err  error  // the underlying cause
	Hint string // what to do about it
}

func (e *RuntimeError) Error() string {
	msg := "models: onnx runtime unavailable"
	if e.Path != "" {
		msg += fmt.Sprintf(" (library %q)", e.Path)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

// Unwrap returns the underlying cause.
func (e *RuntimeError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrRuntime].
func (e *RuntimeError) Is(target error) bool { return target == ErrRuntime }

// LoadError reports a model that could not be loaded: a missing, corrupt or
// truncated file, a graph ONNX Runtime refuses, or inputs and outputs
// ladder cannot carry. Hint says what to do about that particular cause.
type LoadError struct {
	Source string // the file path, or "<bytes>" for in-memory models
	Err    error  // the underlying cause
	Hint   string // what to do about it, or "" when there is nothing to add
}

func (e *LoadError) Error() string {
	msg := fmt.Sprintf("models: cannot load model from %s: %v", e.Source, e.Err)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Unwrap returns the underlying cause.
func (e *LoadError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrLoad].
func (e *LoadError) Is(target error) bool { return target == ErrLoad }

// Hints for the causes of a [LoadError], chosen from ONNX Runtime's message.
const (
	hintIncomplete   = "expected a complete ONNX model file; regenerate or re-download it"
	hintTraining     = "it uses a training-only operator; export the inference graph instead"
	hintUnknownOp    = "it uses an operator ONNX Runtime " + RuntimeVersion + " does not know; a custom operator needs its own library, or export with standard operators"
	hintNoKernel     = "ONNX Runtime " + RuntimeVersion + " has no CPU implementation of this operator for these element types or opset; export with other types or another opset"
	hintAttribute    = "an operator has an attribute its opset does not define; re-export the model with a matching opset"
	hintType         = "it uses an element type ONNX Runtime " + RuntimeVersion + " cannot run on CPU"
	hintVersion      = "the model needs a newer ONNX Runtime than " + RuntimeVersion + "; export it with an older opset or IR version"
	hintInvalidModel = "ONNX Runtime found the graph invalid; check it with onnx.checker and re-export it"
	hintLocale       = "an operator (StringNormalizer) needs a locale this system lacks; install it (Debian: locales-all) " +
		"or re-export the model with an installed locale such as C.UTF-8"
	hintExternal = "the model keeps tensors as external data in files beside it; load it with models.Load from its path, " +
		"with those files in the same directory"
)

var opName = regexp.MustCompile(`([\w.]+):(\w+)\(-?\d+\) is not a registered function/op`)

// loadHint picks the hint for a load failure from ONNX Runtime's message.
func loadHint(err error) string {
	msg := err.Error()
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "protobuf parsing failed"), strings.Contains(lower, "no graph was found"):
		return hintIncomplete
	case strings.Contains(msg, "is not a registered function/op"):
		if m := opName.FindStringSubmatch(msg); m != nil && strings.Contains(m[1], "training") {
			return hintTraining
		}
		return hintUnknownOp
	case strings.Contains(msg, "Failed to construct locale"):
		return hintLocale
	case strings.Contains(msg, "model_path must not be empty"), strings.Contains(lower, "external data"):
		return hintExternal
	case strings.Contains(msg, "Could not find an implementation for"):
		return hintNoKernel
	case strings.Contains(msg, "Unrecognized attribute"):
		return hintAttribute
	case strings.Contains(msg, "MLDataType for"):
		return hintType
	case strings.Contains(msg, "Unsupported model IR version"), strings.Contains(msg, "opset"):
		return hintVersion
	case strings.Contains(msg, "This is an invalid model"):
		return hintInvalidModel
	}
	return ""
}

// RunError reports a run that ONNX Runtime refused or failed although the
// inputs fit the signature: values the graph cannot take (a Reshape to an
// impossible shape, an index out of range), or a native failure.
type RunError struct {
	Model string // the model's name
	Err   error  // ONNX Runtime's error
}

func (e *RunError) Error() string {
	return fmt.Sprintf("models: %s: run failed: %v", e.Model, e.Err)
}

// Unwrap returns ONNX Runtime's error.
func (e *RunError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrRun].
func (e *RunError) Is(target error) bool { return target == ErrRun }

// PanicError is a panic recovered inside this package, most likely in
// onnxruntime_go. The model that raised it stays usable: the native state
// of the failed run is discarded.
type PanicError struct {
	Model string // the model's name
	Value any    // the value passed to panic
	Stack []byte // the panicking goroutine's stack
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("models: %s: recovered from a panic: %v", e.Model, e.Value)
}

// Is reports whether target is [ErrPanic].
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// timeoutError is [ErrTimeout]: a run ended by its own timeout.
type timeoutError struct{}

func (timeoutError) Error() string { return "models: run timed out" }

// Is reports whether target is context.DeadlineExceeded.
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }
