//go:build cgo

package models_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/tensor"
)

// Defect 2: a call that fails, for any reason, leaves the model serving,
// and Close and ShutdownRuntime working. Before the fix a scalar input
// left a nil native value in the scratch pool, and the next call and
// Close panicked.
func TestFailureNeverPoisons(t *testing.T) {
	m := testenv.Load(t, "scalars.onnx")
	x := tensor.New("x", []int64{1, 3}, []float32{1, 2, 3})
	good := []tensor.Tensor{x, tensor.Scalar("rate", int64(2))}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	bad := []struct {
		name   string
		ctx    context.Context
		inputs []tensor.Tensor
	}{
		{"scalar input", context.Background(), []tensor.Tensor{x, tensor.Scalar("rate", int64(16000))}},
		{"wrong type", context.Background(), []tensor.Tensor{x, tensor.Scalar("rate", int32(1))}},
		{"overflowing shape", context.Background(), []tensor.Tensor{tensor.New("x", []int64{1 << 62, 3}, []float32{}), good[1]}},
		{"cancelled", cancelled, good},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, _ = m.Predict(b.ctx, b.inputs)
			out, err := m.Predict(context.Background(), good)
			if err != nil {
				t.Fatalf("valid call after %s: %v", b.name, err)
			}
			if got := out[1].Data.([]float32)[0]; got != 12 {
				t.Fatalf("total = %v, want 12", got)
			}
		})
	}
}

// Defect 6: a timed-out run is not taken for an output whose shape
// depends on the data, so output buffers are still reused after it.
func TestTimeoutKeepsOutputReuse(t *testing.T) {
	// A 1 ms timeout fires long before a run of slowRun's input could end,
	// even on a busy machine.
	m, in, _ := slowRun(t)
	ctx := context.Background()
	predict := func() {
		if _, err := m.Predict(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	predict()
	before := testing.AllocsPerRun(2, predict)
	for range 3 {
		if _, err := m.PredictTimeout(ctx, time.Millisecond, in); !errors.Is(err, models.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		predict()
	}
	after := testing.AllocsPerRun(2, predict)
	if after > before {
		t.Fatalf("allocations per Predict went from %v to %v after timeouts", before, after)
	}
}

// Defect 7: callers that arrive while Close waits for a long run return
// at once with ErrClosed (or their own deadline), not after the run.
func TestCallersDoNotQueueBehindClose(t *testing.T) {
	testenv.MustHaveRuntime(t)
	m, err := models.Load(testenv.Testdata("slow.onnx"), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rows := make([][]float32, 16) // about a second of work
	for i := range rows {
		rows[i] = make([]float32, 30)
	}
	long := []tensor.Tensor{features(rows...)}
	short := []tensor.Tensor{features(rows[0])}
	var wg sync.WaitGroup
	var longDone atomic.Bool
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer longDone.Store(true)
		if _, err := m.Predict(context.Background(), long); err != nil {
			t.Errorf("long run: %v", err)
		}
	}()
	time.Sleep(30 * time.Millisecond) // let the long run enter ONNX Runtime
	closed := make(chan error, 1)
	go func() {
		defer wg.Done()
		closed <- m.Close()
	}()
	// Call until Close has begun: every call returns within its own
	// deadline plus a margin, whether it ran or was refused.
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		start := time.Now()
		_, err := m.Predict(ctx, short)
		took := time.Since(start)
		cancel()
		if took > 60*time.Millisecond {
			t.Fatalf("Predict while Close waits returned after %v (err %v)", took, err)
		}
		if errors.Is(err, models.ErrClosed) {
			break
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Predict while Close waits: %v, want ErrClosed or a deadline", err)
		}
	}
	if longDone.Load() {
		t.Fatal("the long run ended before Close began; the test proves nothing")
	}
	wg.Wait()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// Defect 9: each cause of a load failure gets its own advice.
func TestLoadErrorWording(t *testing.T) {
	testenv.MustHaveRuntime(t)
	const incomplete = "expected a complete ONNX model file"
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"corrupt file", "corrupt.onnx", []string{"corrupt.onnx", incomplete}},
		{"truncated file", "truncated.onnx", []string{"truncated.onnx", incomplete}},
		{"not a model", "heldout.csv", []string{"heldout.csv", incomplete}},
		{"missing file", "no-such-model.onnx", []string{"no such file"}},
		{"unknown operator", "unknown_op.onnx", []string{"Frobnicate", "does not know", "custom operator"}},
		{"training-only operator", "training_op.onnx", []string{"Adagrad", "training-only operator", "inference graph"}},
		{"operator not implemented for the type", "unimplemented_type.onnx", []string{"Det", "no CPU implementation"}},
		{"unsupported attribute", "bad_attribute.onnx", []string{"slope", "attribute its opset does not define"}},
		{"unsupported element type", "complex.onnx", []string{"complex64", "element type"}},
		{"no inputs", "no_input.onnx", []string{"no inputs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := models.Load(testenv.Testdata(tt.file), models.Options{})
			if err == nil {
				m.Close()
				t.Fatal("Load succeeded")
			}
			var le *models.LoadError
			if !errors.Is(err, models.ErrLoad) || !errors.As(err, &le) {
				t.Fatalf("err = %v (%T), want a *LoadError matching ErrLoad", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err, w)
				}
			}
			if tt.want[len(tt.want)-1] != incomplete && strings.Contains(err.Error(), incomplete) {
				t.Errorf("message %q blames an incomplete file", err)
			}
		})
	}
}

// Defect 11: ONNX Runtime writes nothing to stderr, even when runs are
// terminated or retried on purpose. The check runs in a child process,
// whose stderr the test reads.
func TestRuntimeIsSilent(t *testing.T) {
	testenv.MustHaveRuntime(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LADDER_TEST_NOISY_RUNS=1", models.LibraryEnv+"="+models.RuntimeLibrary())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v: %s; stderr %q", err, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Fatalf("ONNX Runtime wrote to stderr:\n%s", stderr.String())
	}
}

// noisyRuns is the child process of TestRuntimeIsSilent: it does what
// made ONNX Runtime log errors before.
func noisyRuns() error {
	if err := models.InitRuntime(""); err != nil {
		return err
	}
	slow, err := models.Load(testenv.Testdata("slow.onnx"), models.Options{})
	if err != nil {
		return err
	}
	in := []tensor.Tensor{features(make([]float32, 30))}
	if _, err := slow.PredictTimeout(context.Background(), time.Millisecond, in); !errors.Is(err, models.ErrTimeout) {
		return errors.New("slow run did not time out: " + strconv.Quote(errString(err)))
	}
	dyn, err := models.Load(testenv.Testdata("dynamic.onnx"), models.Options{})
	if err != nil {
		return err
	}
	for _, x := range [][]float32{{1, 2}, {1, -2}} { // the second run's output is smaller
		if _, err := dyn.Predict(context.Background(), []tensor.Tensor{tensor.New("x", []int64{2}, x)}); err != nil {
			return err
		}
	}
	return errors.Join(slow.Close(), dyn.Close(), models.ShutdownRuntime())
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// A bad call and a good call, thousands of times over, on several models:
// every good call succeeds, Close returns nil, the runtime shuts down,
// and resident memory stays flat.
func TestFailureLoopKeepsMemoryFlat(t *testing.T) {
	testenv.MustHaveRuntime(t)
	iterations := 3000
	if testing.Short() {
		iterations = 300
	}
	primary, err := models.Load(testenv.Testdata("primary.onnx"), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	scalars, err := models.Load(testenv.Testdata("scalars.onnx"), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	half, err := models.Load(testenv.Testdata("half.onnx"), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	row := make([]float32, 30)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	type call struct {
		m      *models.Model
		ctx    context.Context
		inputs []tensor.Tensor
	}
	x := tensor.New("x", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	hb := func(rows int) []tensor.Tensor {
		return []tensor.Tensor{tensor.New("h", []int64{int64(rows), 2}, make([]tensor.F16, 2*rows)),
			tensor.New("b", []int64{int64(rows), 2}, make([]tensor.BF16, 2*rows))}
	}
	bad := []call{
		{primary, context.Background(), []tensor.Tensor{tensor.New("features", []int64{614891469123651721, 30}, make([]float32, 14))}},
		{primary, context.Background(), []tensor.Tensor{tensor.New("features", []int64{1, 30}, make([]float64, 30))}},
		{primary, cancelled, []tensor.Tensor{features(row)}},
		{scalars, context.Background(), []tensor.Tensor{x, tensor.New("rate", []int64{1}, []int64{3})}},
		{half, context.Background(), hb(0)}, // ONNX Runtime refuses the run
	}
	good := []call{
		{primary, context.Background(), []tensor.Tensor{features(row)}},
		{scalars, context.Background(), []tensor.Tensor{x, tensor.Scalar("rate", int64(3))}},
		{scalars, context.Background(), []tensor.Tensor{x, tensor.Scalar("rate", int64(4))}},
		{half, context.Background(), hb(2)},
		{half, context.Background(), hb(1)},
	}
	loop := func(n int) {
		for i := range n {
			b, g := bad[i%len(bad)], good[i%len(good)]
			if _, err := b.m.Predict(b.ctx, b.inputs); err == nil {
				t.Fatalf("bad call %d succeeded", i%len(bad))
			}
			if _, err := g.m.Predict(g.ctx, g.inputs); err != nil {
				t.Fatalf("good call %d after bad call %d: %v", i%len(good), i%len(bad), err)
			}
		}
	}
	loop(iterations / 3) // reach a steady state
	before := residentBytes(t)
	loop(iterations)
	after := residentBytes(t)
	t.Logf("resident memory %d KiB before, %d KiB after %d bad and good calls", before>>10, after>>10, iterations)
	if grew := after - before; grew > 32<<20 {
		t.Errorf("resident memory grew by %d KiB", grew>>10)
	}
	for _, m := range []*models.Model{primary, scalars, half} {
		if err := m.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	lib := models.RuntimeLibrary()
	if err := models.ShutdownRuntime(); err != nil {
		t.Fatalf("ShutdownRuntime: %v", err)
	}
	if err := models.InitRuntime(lib); err != nil {
		t.Fatalf("InitRuntime after ShutdownRuntime: %v", err)
	}
}

// residentBytes reads the process's resident set size from /proc.
func residentBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm: ", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// Failures and successes interleaved from many goroutines, on models whose
// outputs ladder allocates or whose shapes depend on the data, leave every
// valid call correct.
func TestConcurrentFailuresAndSuccesses(t *testing.T) {
	half := testenv.Load(t, "half.onnx")
	dyn := testenv.Load(t, "dynamic.onnx")
	scalars := testenv.Load(t, "scalars.onnx")
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := range 200 {
				rows := (g+i)%3 + 1
				h := make([]tensor.F16, 2*rows)
				for j := range h {
					h[j] = tensor.NewF16(float32(j))
				}
				out, err := half.Predict(ctx, []tensor.Tensor{tensor.New("h", []int64{int64(rows), 2}, h),
					tensor.New("b", []int64{int64(rows), 2}, make([]tensor.BF16, 2*rows))})
				if err != nil || len(out[0].Data.([]tensor.F16)) != 2*rows || out[0].Data.([]tensor.F16)[1].Float32() != 2 {
					t.Errorf("half, %d rows: %v %v", rows, out, err)
					return
				}
				x := []float32{float32(i%5) - 2, 1, float32(g) - 3}
				out, err = dyn.Predict(ctx, []tensor.Tensor{tensor.New("x", []int64{3}, x)})
				want := 0
				for _, v := range x {
					if v > 0 {
						want++
					}
				}
				if err != nil || out[0].Len() != want {
					t.Errorf("dynamic %v: %v %v", x, out, err)
					return
				}
				_, err = scalars.Predict(ctx, []tensor.Tensor{tensor.New("x", []int64{1, 3}, []float32{1, 2, 3}),
					tensor.New("rate", []int64{1}, []int64{int64(i)})})
				if !errors.Is(err, tensor.ErrInvalidInput) {
					t.Errorf("scalar as a vector: %v", err)
					return
				}
				out, err = scalars.Predict(ctx, []tensor.Tensor{tensor.New("x", []int64{1, 3}, []float32{1, 2, 3}),
					tensor.Scalar("rate", int64(i))})
				if err != nil || out[1].Data.([]float32)[0] != 6*float32(i) {
					t.Errorf("scalars, rate %d: %v %v", i, out, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
