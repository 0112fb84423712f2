//go:build !cgo

package models

import (
	"context"
	"errors"
	"time"

	"github.com/ladder-ml/ladder/tensor"
)

// This file is the package in a build without cgo (CGO_ENABLED=0): the
// same API, whose runtime and loading calls return a [*RuntimeError]
// saying that ONNX Runtime needs cgo. A program that links models but
// serves a ladder of Go functions and remote models builds and runs.

// errNoCgo is the cause of every error of a build without cgo.
var errNoCgo = errors.New("built without cgo (CGO_ENABLED=0)")

// noCgo returns the error of every call that needs ONNX Runtime.
func noCgo() error {
	return &RuntimeError{Err: errNoCgo, Hint: "ONNX Runtime needs cgo: rebuild with CGO_ENABLED=1 and a C compiler"}
}

// InitRuntime returns a [*RuntimeError], matching [ErrRuntime]: this
// build has no cgo, which ONNX Runtime needs.
func InitRuntime(path string) error { return noCgo() }

// ShutdownRuntime returns nil: without cgo the runtime is never up.
func ShutdownRuntime() error { return nil }

// RuntimeLibrary returns "": without cgo no library is loaded.
func RuntimeLibrary() string { return "" }

// Model is an ONNX model loaded in-process. Without cgo none can be
// loaded: a *Model behaves as a nil one, except that Predict,
// PredictTimeout and Warmup return the [*RuntimeError] of [Load].
type Model struct{}

// Load returns a [*RuntimeError], matching [ErrRuntime]: this build has
// no cgo, which ONNX Runtime needs.
func Load(path string, opts Options) (*Model, error) { return nil, noCgo() }

// LoadBytes returns a [*RuntimeError], as [Load] does.
func LoadBytes(data []byte, opts Options) (*Model, error) { return nil, noCgo() }

// Name returns "".
func (m *Model) Name() string { return "" }

// Version returns "".
func (m *Model) Version() string { return "" }

// Signature returns an empty signature.
func (m *Model) Signature() tensor.Signature { return tensor.Signature{} }

// Predict returns a [*RuntimeError], as [Load] does.
func (m *Model) Predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	return nil, noCgo()
}

// PredictTimeout returns a [*RuntimeError], as [Load] does.
func (m *Model) PredictTimeout(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	return nil, noCgo()
}

// Warmup returns a [*RuntimeError], as [Load] does.
func (m *Model) Warmup(ctx context.Context) error { return noCgo() }

// Close returns nil.
func (m *Model) Close() error { return nil }
