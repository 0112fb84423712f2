//go:build cgo

package models_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
)

// The runtime can be initialised once per process, so these tests run
// InitRuntime in a child process: the test binary itself, started with
// runtimeChildEnv set, which TestMain hands to runtimeChild.
const (
	runtimeChildEnv  = "LADDER_TEST_INIT_ONLY"
	runtimeChildPath = "LADDER_TEST_INIT_PATH" // InitRuntime's argument
)

// runtimeChild calls InitRuntime with the path in runtimeChildPath. It
// prints the library loaded and returns 0, or prints the error and returns
// 3 for an ErrRuntime and 4 for any other error.
func runtimeChild() int {
	if err := models.InitRuntime(os.Getenv(runtimeChildPath)); err != nil {
		os.Stdout.WriteString(err.Error())
		if errors.Is(err, models.ErrRuntime) {
			return 3
		}
		return 4
	}
	os.Stdout.WriteString(models.RuntimeLibrary())
	if err := models.ShutdownRuntime(); err != nil {
		os.Stdout.WriteString("\nShutdownRuntime: " + err.Error())
		return 4
	}
	return 0
}

// initInChild runs InitRuntime(path) in a child process whose environment
// is this one's with LADDER_ONNXRUNTIME_LIB, XDG_CACHE_HOME and HOME
// replaced by env (a key mapped to "" is removed). It returns the child's
// output and exit code.
func initInChild(t *testing.T, path string, env map[string]string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != models.LibraryEnv && k != "XDG_CACHE_HOME" && k != "HOME" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if _, ok := env["HOME"]; !ok {
		env["HOME"] = os.Getenv("HOME")
	}
	for k, v := range env {
		if v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Env = append(cmd.Env, runtimeChildEnv+"=1", runtimeChildPath+"="+path)
	out, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatalf("running the child: %v", err)
	return "", 0
}

// userCache returns a fresh XDG_CACHE_HOME and the path at which
// InitRuntime looks for the per-user library under it.
func userCache(t *testing.T) (dir, lib string) {
	dir = t.TempDir()
	lib = filepath.Join(dir, "ladder", "onnxruntime", models.RuntimeVersion, "libonnxruntime.so.1")
	if err := os.MkdirAll(filepath.Dir(lib), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, lib
}

// TestInitRuntimeLookup checks the order in which InitRuntime("") looks for
// the library: the path given, then LADDER_ONNXRUNTIME_LIB, then the
// per-user copy, and that a library named by the caller is never passed
// over for another.
func TestInitRuntimeLookup(t *testing.T) {
	testenv.MustHaveRuntime(t)
	real := models.RuntimeLibrary() // the library this test binary runs on
	notLib := testenv.Testdata("heldout.csv")
	const missing = "/nonexistent/libonnxruntime.so.1"

	tests := []struct {
		name string
		path string // InitRuntime's argument
		env  string // LADDER_ONNXRUNTIME_LIB ("" unset)
		user string // what the per-user copy is: "real", "not a library" or "" (absent)
		want string // the library loaded: "real" or "user"
	}{
		{"the path given comes first", real, missing, "not a library", "real"},
		{"the variable comes second", "", real, "not a library", "real"},
		{"the per-user copy comes last", "", "", "real", "user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given a per-user cache and the variable as the case says
			xdg, user := userCache(t)
			switch tt.user {
			case "real":
				if err := os.Symlink(real, user); err != nil {
					t.Fatal(err)
				}
			case "not a library":
				if err := os.Symlink(notLib, user); err != nil {
					t.Fatal(err)
				}
			}

			// When InitRuntime runs
			out, code := initInChild(t, tt.path, map[string]string{models.LibraryEnv: tt.env, "XDG_CACHE_HOME": xdg})

			// Then it loads the library the case expects
			want := real
			if tt.want == "user" {
				want = user
			}
			if code != 0 || out != want {
				t.Fatalf("child exited %d with %q; want 0 with %q", code, out, want)
			}
		})
	}
}

// TestInitRuntimeErrors checks that every way of not finding a usable
// library gives an ErrRuntime that says where InitRuntime looked.
func TestInitRuntimeErrors(t *testing.T) {
	real := ""
	if testenv.HaveRuntime() {
		real = models.RuntimeLibrary()
	}
	notLib := testenv.Testdata("heldout.csv")
	const missing = "/nonexistent/libonnxruntime.so.1"
	placeholder := "<per-user library>"

	tests := []struct {
		name     string
		path     string            // InitRuntime's argument
		env      map[string]string // LADDER_ONNXRUNTIME_LIB, HOME; XDG_CACHE_HOME is a fresh folder
		userReal bool              // the per-user copy is a real library
		want     []string          // placeholder stands for the per-user library's path
	}{
		{"nothing anywhere", "", nil, false,
			[]string{"no library found", "no path given to InitRuntime", models.LibraryEnv + " is not set", placeholder, "no such file", "make ort"}},
		{"no user cache directory", "", map[string]string{"HOME": "", "XDG_CACHE_HOME": ""}, false,
			[]string{"no library found", models.LibraryEnv + " is not set", "neither $XDG_CACHE_HOME nor $HOME"}},
		{"a missing file named by the variable", "", map[string]string{models.LibraryEnv: missing}, true,
			[]string{missing, "named by " + models.LibraryEnv, "no such file", placeholder}},
		{"a missing file given as the path", missing, map[string]string{models.LibraryEnv: real}, true,
			[]string{missing, "given to InitRuntime", "no such file", models.LibraryEnv, placeholder}},
		{"not a shared library", "", map[string]string{models.LibraryEnv: notLib}, false,
			[]string{"not a shared library", models.LibraryEnv}},
		{"a shared library that is not ONNX Runtime", "", map[string]string{models.LibraryEnv: otherSharedLibrary(t)}, false,
			[]string{"OrtGetApiBase", "expected ONNX Runtime 1.24.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.userReal {
				testenv.MustHaveRuntime(t)
			}
			// Given a per-user cache, holding a real library when the case says
			xdg, user := userCache(t)
			if tt.userReal {
				if err := os.Symlink(real, user); err != nil {
					t.Fatal(err)
				}
			}
			env := map[string]string{"XDG_CACHE_HOME": xdg}
			for k, v := range tt.env {
				env[k] = v
			}

			// When InitRuntime runs
			out, code := initInChild(t, tt.path, env)

			// Then it fails with an ErrRuntime that says where it looked
			if code != 3 {
				t.Fatalf("child exited %d (output %q); want exit 3 (an ErrRuntime)", code, out)
			}
			for _, w := range tt.want {
				if w == placeholder {
					w = user
				}
				if !strings.Contains(out, w) {
					t.Errorf("error %q lacks %q", out, w)
				}
			}
		})
	}
}

// otherSharedLibrary returns the C library's path: a real shared library
// that is not ONNX Runtime.
func otherSharedLibrary(t *testing.T) string {
	for _, pattern := range []string{"/lib/*/libc.so.6", "/usr/lib/*/libc.so.6", "/lib64/libc.so.6"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return m[0]
		}
	}
	t.Fatal("no libc.so.6 found")
	return ""
}
