// Package testenv finds what ladder's tests need: the ONNX Runtime shared
// library and the repository's testdata folder.
//
// Outside CI a test that needs ONNX Runtime is skipped when the library
// cannot be found. When the CI environment variable is set the same test
// fails instead, so nothing is skipped in CI.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ladder-ml/ladder/models"
)

// Root returns the repository root: the folder holding go.mod.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Testdata returns the path of name inside the repository's testdata folder.
func Testdata(name string) string {
	return filepath.Join(Root(), "testdata", name)
}

// Library returns the ONNX Runtime library to use: LADDER_ONNXRUNTIME_LIB
// when set, else the copy `make ort` caches in .cache/, else "".
func Library() string {
	if p := os.Getenv(models.LibraryEnv); p != "" {
		return p
	}
	p := filepath.Join(Root(), ".cache", "onnxruntime", models.RuntimeVersion, "libonnxruntime.so.1")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// InitRuntime initialises ONNX Runtime for a test binary and reports
// whether it is available. Call it from TestMain. In CI a missing library
// is fatal: the process exits with an error rather than skipping tests.
func InitRuntime() bool {
	err := models.InitRuntime(Library())
	if err == nil {
		return true
	}
	if os.Getenv("CI") != "" {
		println("testenv: ONNX Runtime is required in CI:", err.Error())
		os.Exit(2)
	}
	println("testenv: skipping tests that need ONNX Runtime:", err.Error())
	return false
}

// RequireRuntime skips t when ONNX Runtime is unavailable. Outside CI only:
// in CI, InitRuntime has already failed the run.
func RequireRuntime(t testing.TB, available bool) {
	t.Helper()
	if !available {
		t.Skip("ONNX Runtime not available; run `make ort` or set " + models.LibraryEnv)
	}
}
