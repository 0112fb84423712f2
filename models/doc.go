// Package models loads ONNX models in-process and runs them through ONNX
// Runtime (github.com/yalue/onnxruntime_go).
//
// Call [InitRuntime] once at start-up: it loads the ONNX Runtime shared
// library (version [RuntimeVersion]) named by its argument, else by the
// LADDER_ONNXRUNTIME_LIB environment variable, else the per-user copy that
// `make ort` installs, and creates the one process-wide environment. [ShutdownRuntime] releases it once every model
// is closed.
//
// [Load] and [LoadBytes] return a [*Model] with its [tensor.Signature]: input and
// output names, element types, shapes with dynamic dimensions shown as -1,
// and metadata. [Model.Predict] checks every input in Go before any native
// call — a bad name, element type, rank, dimension or data length gives an
// [*tensor.InputError] matching [tensor.ErrInvalidInput] — and stops the native run when
// its context ends. [Model.Close] waits for in-flight runs, then frees every
// native object exactly once.
package models
