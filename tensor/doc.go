// Package tensor holds the values that flow through a ladder: [Tensor], its
// element type [DType], and the [Signature] that describes what a model
// takes and returns. It is plain Go with no cgo, so a ladder of remote
// models or Go functions never links ONNX Runtime.
//
// [CheckInputs] validates inputs against a signature in Go; a misfit gets
// an [*InputError] matching [ErrInvalidInput].
//
// Code that handles every element type goes through this package rather
// than a type switch of its own, so that an element type is added in one
// place: [Tensor.DType], [Tensor.Len] and [Tensor.Clone]; [Make] for new
// data of a [DType]; [Bytes] for the memory of fixed-size elements; and
// [Float64s], or element by element, by the type's [Kind], [Float64At],
// [Int64At], [Uint64At] and their setters. None of them allocates but
// [Make], [Float64s] and [Tensor.Clone].
package tensor
