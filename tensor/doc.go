// Package tensor holds the values that flow through a ladder: [Tensor], its
// element type [DType], and the [Signature] that describes what a model
// takes and returns. It is plain Go with no cgo, so a ladder of remote
// models or Go functions never links ONNX Runtime.
//
// [CheckInputs] validates inputs against a signature in Go; a misfit gets
// an [*InputError] matching [ErrInvalidInput].
package tensor
