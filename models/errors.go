package models

import (
	"context"
	"errors"
	"fmt"
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

// timeoutError is [ErrTimeout]: a run ended by its own timeout.
type timeoutError struct{}

func (timeoutError) Error() string { return "models: run timed out" }

// Is reports whether target is context.DeadlineExceeded.
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }
