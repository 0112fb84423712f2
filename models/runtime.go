//go:build cgo

package models

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

var rt struct {
	mu     sync.Mutex
	path   string
	models int // open models; Shutdown refuses while any remain
}

// InitRuntime loads the ONNX Runtime shared library and creates the
// process-wide ONNX Runtime environment. It uses the first library named
// by, in order:
//
//  1. path, when it is not empty;
//  2. the LADDER_ONNXRUNTIME_LIB environment variable ([LibraryEnv]), when
//     it is set;
//  3. the per-user copy that `make ort` installs for every clone of ladder:
//     ladder/onnxruntime/1.24.1/libonnxruntime.so.1 under the user cache
//     directory ([os.UserCacheDir]: $XDG_CACHE_HOME, else ~/.cache, on
//     Linux).
//
// A library named by path or by the variable is used as it is: when it is
// missing or broken, InitRuntime fails rather than look further, so a typo
// never silently selects another copy.
//
// Call it once at start-up, before [Load]. Calling it again while the
// runtime is up is a no-op that returns nil. No library at any of the three
// places, a file that is not a shared library, or a library of a version
// other than [RuntimeVersion] gives a [*RuntimeError] (matching
// [ErrRuntime]) that names the places it looked at and says how to fix it.
// It is safe for concurrent use.
func InitRuntime(path string) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if ort.IsInitialized() {
		return nil
	}
	lib, err := findLibrary(path)
	if err != nil {
		return err
	}
	if err := checkSharedLibrary(lib.file); err != nil {
		return &RuntimeError{Path: lib.file, Err: fmt.Errorf("%s: %w", lib.from, err), Hint: installHint()}
	}
	ort.SetSharedLibraryPath(lib.file)
	// ONNX Runtime logs to stderr, and at ERROR level whenever a run is
	// terminated on purpose. The library stays silent: only fatal
	// messages get through. (onnxruntime_go offers no custom logger, so
	// they cannot be routed to a *slog.Logger.)
	if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
		return &RuntimeError{Path: lib.file, Err: fmt.Errorf("%s: %w", lib.from, err),
			Hint: "expected ONNX Runtime " + RuntimeVersion + "; " + installHint()}
	}
	if v := ort.GetVersion(); v != RuntimeVersion {
		_ = ort.DestroyEnvironment()
		return &RuntimeError{Path: lib.file, Err: fmt.Errorf("%s: library is version %s, expected %s", lib.from, v, RuntimeVersion),
			Hint: installHint()}
	}
	rt.path = lib.file
	return nil
}

// library is the ONNX Runtime library InitRuntime chose, and which of its
// three places named it.
type library struct {
	file string
	from string
}

// findLibrary picks the library: path, else LADDER_ONNXRUNTIME_LIB, else
// the per-user copy when it exists. With none of them it returns a
// *RuntimeError naming all three.
func findLibrary(path string) (library, error) {
	if path != "" {
		return library{path, "given to InitRuntime"}, nil
	}
	if env := os.Getenv(LibraryEnv); env != "" {
		return library{env, "named by " + LibraryEnv}, nil
	}
	where := "the per-user copy"
	user, err := userLibrary()
	if err == nil {
		where += " " + user
		if _, err = os.Stat(user); err == nil {
			return library{user, "the per-user copy"}, nil
		}
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err // the path is in where already
		}
	}
	return library{}, &RuntimeError{
		Err: fmt.Errorf("no library found: no path given to InitRuntime, %s is not set, and %s: %w",
			LibraryEnv, where, err),
		Hint: "run `make ort` in the ladder repository to install ONNX Runtime " + RuntimeVersion +
			" there, or set " + LibraryEnv + " to your own libonnxruntime.so." + RuntimeVersion,
	}
}

// userLibrary returns where `make ort` (scripts/install-ort.sh) installs
// the library for the current user.
func userLibrary() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "ladder", "onnxruntime", RuntimeVersion, "libonnxruntime.so.1"), nil
}

// installHint says how to provide the library.
func installHint() string {
	where := "the user cache directory"
	if user, err := userLibrary(); err == nil {
		where = user
	}
	return "run `make ort` in the ladder repository to install ONNX Runtime " + RuntimeVersion +
		" in " + where + ", or set " + LibraryEnv + " to your own libonnxruntime.so." + RuntimeVersion
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
