package models

import (
	"errors"
	"fmt"
)

// Sentinel errors. Their text is part of the API.
var (
	// ErrInvalidInput matches every [*InputError]: the caller sent inputs
	// that do not fit the model's signature. It is the caller's fault, is
	// deterministic, and must never be retried or blamed on the model.
	ErrInvalidInput = errors.New("models: invalid input")

	// ErrClosed is returned by calls on a [Model] after [Model.Close].
	ErrClosed = errors.New("models: model is closed")

	// ErrTimeout is returned by [Model.PredictTimeout] when the run was
	// terminated because its timeout passed.
	ErrTimeout = errors.New("models: run timed out")

	// ErrRuntime matches every [*RuntimeError]: the ONNX Runtime shared
	// library is missing, of the wrong version, or not initialised.
	ErrRuntime = errors.New("models: onnx runtime unavailable")

	// ErrLoad matches every [*LoadError]: a model file could not be read
	// or is not a valid ONNX model.
	ErrLoad = errors.New("models: cannot load model")
)

// InputError reports an input that does not fit the model's signature. It
// names the input, the problem, and what the model expects.
type InputError struct {
	Model    string // name of the model
	Input    string // name of the offending input, or "" for the input list
	Problem  string // what is wrong, e.g. "wrong element type"
	Expected string // what the model expects
	Got      string // what the caller sent
}

func (e *InputError) Error() string {
	where := "inputs"
	if e.Input != "" {
		where = fmt.Sprintf("input %q", e.Input)
	}
	return fmt.Sprintf("models: invalid input to %s: %s: %s: expected %s, got %s",
		e.Model, where, e.Problem, e.Expected, e.Got)
}

// Is reports whether target is [ErrInvalidInput].
func (e *InputError) Is(target error) bool { return target == ErrInvalidInput }

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
// truncated file, or a graph ONNX Runtime rejects.
type LoadError struct {
	Source string // the file path, or "<bytes>" for in-memory models
	Err    error  // the underlying cause
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("models: cannot load model from %s: %v "+
		"(expected a complete ONNX model file; regenerate or re-download it)", e.Source, e.Err)
}

// Unwrap returns the underlying cause.
func (e *LoadError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrLoad].
func (e *LoadError) Is(target error) bool { return target == ErrLoad }
