package models

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// RuntimeVersion is the ONNX Runtime version this package is built for.
// onnxruntime_go v1.27.0 refuses any other.
const RuntimeVersion = "1.24.1"

// LibraryEnv names the environment variable that points at the ONNX Runtime
// shared library when [InitRuntime] is called with an empty path.
const LibraryEnv = "LADDER_ONNXRUNTIME_LIB"

const installHint = "set " + LibraryEnv + " to libonnxruntime.so." + RuntimeVersion +
	", or run `make ort` in the ladder repository to fetch the bundled copy"

var rt struct {
	mu     sync.Mutex
	path   string
	models int // open models; Shutdown refuses while any remain
}

// InitRuntime loads the ONNX Runtime shared library at path and creates the
// process-wide ONNX Runtime environment. An empty path means the value of
// the LADDER_ONNXRUNTIME_LIB environment variable ([LibraryEnv]).
//
// Call it once at start-up, before [Load]. Calling it again while the
// runtime is up is a no-op that returns nil. A missing file, a file that is
// not a shared library, or a library of a version other than
// [RuntimeVersion] gives a [*RuntimeError] (matching [ErrRuntime]) that says
// how to fix it. It is safe for concurrent use.
func InitRuntime(path string) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if ort.IsInitialized() {
		return nil
	}
	if path == "" {
		path = os.Getenv(LibraryEnv)
	}
	if path == "" {
		return &RuntimeError{Err: errors.New("no library path given"), Hint: installHint}
	}
	if err := checkSharedLibrary(path); err != nil {
		return &RuntimeError{Path: path, Err: err, Hint: installHint}
	}
	ort.SetSharedLibraryPath(path)
	// ONNX Runtime logs to stderr, and at ERROR level whenever a run is
	// terminated on purpose. The library stays silent: only fatal
	// messages get through. (onnxruntime_go offers no custom logger, so
	// they cannot be routed to a *slog.Logger.)
	if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
		return &RuntimeError{Path: path, Err: err,
			Hint: "expected ONNX Runtime " + RuntimeVersion + "; " + installHint}
	}
	if v := ort.GetVersion(); v != RuntimeVersion {
		_ = ort.DestroyEnvironment()
		return &RuntimeError{Path: path, Err: fmt.Errorf("library is version %s, expected %s", v, RuntimeVersion), Hint: installHint}
	}
	rt.path = path
	return nil
}

// checkSharedLibrary rejects a path that is missing or is not an ELF or
// Mach-O file before it is handed to dlopen.
func checkSharedLibrary(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := f.Read(magic); err != nil {
		return fmt.Errorf("cannot read library: %w", err)
	}
	switch {
	case bytes.Equal(magic, []byte("\x7fELF")),
		bytes.Equal(magic, []byte{0xcf, 0xfa, 0xed, 0xfe}), // Mach-O 64-bit
		bytes.Equal(magic, []byte{0xca, 0xfe, 0xba, 0xbe}): // Mach-O universal
		return nil
	}
	return errors.New("file is not a shared library")
}

// ShutdownRuntime releases the process-wide ONNX Runtime environment. Close
// every [Model] first: while any is open it returns an error and keeps the
// runtime up. Calling it when the runtime is down is a no-op.
func ShutdownRuntime() error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !ort.IsInitialized() {
		return nil
	}
	if rt.models > 0 {
		return fmt.Errorf("models: %d models are still open; close them before ShutdownRuntime", rt.models)
	}
	rt.path = ""
	return ort.DestroyEnvironment()
}

// RuntimeLibrary returns the path of the loaded ONNX Runtime library, or ""
// when the runtime is not initialised.
func RuntimeLibrary() string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.path
}

// retainRuntime records an open model; it fails when the runtime is down.
func retainRuntime() error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !ort.IsInitialized() {
		return &RuntimeError{Err: errors.New("runtime not initialised"), Hint: "call models.InitRuntime first"}
	}
	rt.models++
	return nil
}

func releaseRuntime() {
	rt.mu.Lock()
	rt.models--
	rt.mu.Unlock()
}
