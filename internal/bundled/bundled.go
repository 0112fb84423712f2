// Package bundled locates the files that ship in the repository's testdata
// folder: the ONNX models and the labelled data set that ladder's tests,
// examples and chaos harness run on.
//
// It imports neither testing nor any test helper, so a command may use it.
// It finds the folder from its own source file, so it works only where the
// ladder source tree is present (a `go run` or `go test` in a clone).
package bundled

import (
	"path/filepath"
	"runtime"
)

// Path returns the path of name inside the repository's testdata folder.
func Path(name string) string {
	_, file, _, _ := runtime.Caller(0) // <root>/internal/bundled/bundled.go
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", name)
}
