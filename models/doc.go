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
// output names, element types, shapes with dynamic dimensions shown as -1
// (and [tensor.Info].AnyRank for an input or output whose rank the file
// does not declare, which ONNX Runtime reports like a scalar), and
// metadata. Every element type onnxruntime_go carries is served:
// float32, float64, float16 ([tensor.F16]), bfloat16 ([tensor.BF16]),
// int8 to int64, uint8 to uint64, bool and string, in any shape including
// scalars (an empty shape) and zero-length dimensions. A model ladder
// cannot serve is refused by Load with a [*LoadError] naming the input or
// output and its type. [Model.Predict] checks every input in Go before any native
// call — a bad name, element type, rank, dimension or data length gives an
// [*tensor.InputError] matching [tensor.ErrInvalidInput] — and stops the native run when
// its context ends. No failure, panic included, leaves a model unfit for the
// next call. [Model.Close] waits for in-flight runs, then frees every
// native object exactly once; callers arriving meanwhile get [ErrClosed].
//
// # Values that crash ONNX Runtime
//
// A few ONNX Runtime 1.24.1 CPU kernels kill the process on certain input
// values, and no recover can catch a crash in native code: integer Div
// and Mod with a zero divisor, or MinInt32 or MinInt64 divided by -1
// (SIGFPE); Trilu with k near math.MinInt64 (SIGSEGV); MaxUnpool with an
// index outside its output (abort); RoiAlign with a batch index outside
// X (SIGSEGV); ReverseSequence with a length outside its time axis (it
// reads past its input and answers garbage). When such an operand is a
// graph input, [Model.Predict] checks its values in Go and refuses a
// value that would crash with an [*tensor.InputError] naming the input
// and the problem. An operand computed inside the graph cannot be
// checked: when its values derive from an untrusted caller's, check them
// before Predict (in a router, in a Tier.Inputs adapter). [Model.Warmup]'s
// default inputs are ones, so a warm-up never divides by zero.
//
// A string input with a NUL byte is refused the same way: onnxruntime_go
// passes strings to ONNX Runtime as C strings, which would end at the NUL
// and silently drop the rest.
//
// Float16 and bfloat16 outputs are allocated by ladder before the run
// (onnxruntime_go cannot return them whole), from the declared shape or
// the one ONNX Runtime asks for, and only up to 1 GiB each: Load refuses
// a file that declares a larger one, and a run that would need one fails
// with a [*RunError], never a Go out-of-memory crash.
//
// ONNX Runtime's own log is silenced except for fatal messages.
//
// The repository's docs/models.md has the table of element types, what
// Load refuses and why, examples of scalars and warm-up inputs, and how
// ONNX Runtime is installed and found.
//
// # Without cgo
//
// ONNX Runtime is a C library, which this package reaches through cgo.
// Built without cgo (CGO_ENABLED=0), the package keeps its API, but
// [InitRuntime], [Load], [LoadBytes] and a model's Predict,
// PredictTimeout and Warmup return a [*RuntimeError] matching
// [ErrRuntime] that says so. The rest of ladder needs no cgo: a program
// whose ladder holds Go functions and remote models builds and runs
// without it.
package models
