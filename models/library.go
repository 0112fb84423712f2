package models

// RuntimeVersion is the ONNX Runtime version this package is built for.
// onnxruntime_go v1.27.0 refuses any other.
const RuntimeVersion = "1.24.1"

// LibraryEnv names the environment variable that points at the ONNX Runtime
// shared library when [InitRuntime] is called with an empty path.
const LibraryEnv = "LADDER_ONNXRUNTIME_LIB"
