// Package testenv holds what ladder's test binaries share: their TestMain
// (ONNX Runtime set-up, shutdown and a goroutine leak check), the skip
// helper, the loading of a bundled model and the raw onnxruntime_go
// baseline benchmark.
//
// It imports testing and goleak, so only _test.go files may import it.
// What a command needs as well (where the bundled files are) lives in
// internal/bundled.
//
// Outside CI a test that needs ONNX Runtime is skipped when the library
// cannot be found. When the CI environment variable is set the same test
// fails instead, so nothing is skipped in CI.
package testenv

import (
	"math"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ladder-ml/ladder/internal/bundled"
	"github.com/ladder-ml/ladder/models"
)

// Testdata returns the path of name inside the repository's testdata folder.
func Testdata(name string) string { return bundled.Path(name) }

// available records whether [Main] found ONNX Runtime.
var available bool

// VerifyTestMain is the TestMain of every package whose tests need ONNX
// Runtime, as goleak.VerifyTestMain is of the others:
//
//	func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }
//
// It runs the tests through [Main] and exits with its code. The tests
// then ask for the runtime with [MustHaveRuntime] or [Load].
func VerifyTestMain(m *testing.M) {
	os.Exit(Main(m, new(bool)))
}

// Main initialises ONNX Runtime (see [InitRuntime]), stores whether it is
// available in *ok (and for [MustHaveRuntime] and [HaveRuntime]),
// runs the tests, shuts the runtime down, and fails the run if any
// goroutine outlived the tests. It returns the exit code for os.Exit.
// [VerifyTestMain] is the usual way to call it.
func Main(m *testing.M, ok *bool) int {
	available = InitRuntime()
	*ok = available
	code := m.Run()
	if available {
		if err := models.ShutdownRuntime(); err != nil {
			println("testenv: ShutdownRuntime:", err.Error())
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			println("testenv: goleak:", err.Error())
			code = 1
		}
	}
	return code
}

// InitRuntime initialises ONNX Runtime for a test binary, where
// models.InitRuntime("") finds it (LADDER_ONNXRUNTIME_LIB, else the
// per-user copy `make ort` installs), and reports whether it is available.
// [Main] calls it. In CI a missing library is fatal: the process exits
// with an error rather than skipping tests.
func InitRuntime() bool {
	err := models.InitRuntime("")
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

// HaveRuntime reports whether [Main] found ONNX Runtime.
func HaveRuntime() bool { return available }

// MustHaveRuntime skips t when [Main] did not find ONNX Runtime. Outside
// CI only: in CI, a missing runtime has already failed the run.
func MustHaveRuntime(t testing.TB) {
	t.Helper()
	RequireRuntime(t, available)
}

// RequireRuntime skips t when available is false: [MustHaveRuntime] for
// a TestMain that keeps [Main]'s answer itself.
func RequireRuntime(t testing.TB, available bool) {
	t.Helper()
	if !available {
		t.Skip("ONNX Runtime not available; run `make ort` or set " + models.LibraryEnv)
	}
}

// Load loads the bundled model testdata/name with the default
// models.Options, and closes it when t ends, failing t if Close fails. It
// skips t when ONNX Runtime is unavailable ([MustHaveRuntime]) and fails
// it when the model does not load.
func Load(t testing.TB, name string) *models.Model {
	t.Helper()
	MustHaveRuntime(t)
	m, err := models.Load(Testdata(name), models.Options{})
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close(%s): %v", name, err)
		}
	})
	return m
}

// InterleaveParallel is [Interleave] for callers that run at once: in
// each round, for each of subjects in turn, len(subjects[i]) goroutines
// make chunk calls each of their own func, and the round's ns per call
// is the wall time over all their calls: the inverse of throughput.
func InterleaveParallel(b *testing.B, chunk int, subjects ...[]func()) [][]float64 {
	perRound := make([][]float64, len(subjects))
	for b.Loop() {
		for i, calls := range subjects {
			var wg sync.WaitGroup
			start := time.Now()
			for _, call := range calls {
				wg.Go(func() {
					for range chunk {
						call()
					}
				})
			}
			wg.Wait()
			perRound[i] = append(perRound[i], float64(time.Since(start).Nanoseconds())/float64(chunk*len(calls)))
		}
	}
	return perRound
}

// Interleave times calls in rounds until b.Loop ends: each round makes
// chunk calls of each of calls in turn. It returns each call's ns per
// call in every round, so that a comparison takes the ratio within each
// round, where the machine's load has moved the least, and then the
// median over rounds.
func Interleave(b *testing.B, chunk int, calls ...func()) [][]float64 {
	perRound := make([][]float64, len(calls))
	for b.Loop() {
		for i, call := range calls {
			start := time.Now()
			for range chunk {
				call()
			}
			perRound[i] = append(perRound[i], float64(time.Since(start).Nanoseconds())/float64(chunk))
		}
	}
	return perRound
}

// Median returns the median of xs, or NaN when it is empty.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// Parallelism is the number of goroutines per GOMAXPROCS of the parallel
// overhead benchmarks: 32, so 64 goroutines share 2 cores.
const Parallelism = 32
