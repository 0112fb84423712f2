//go:build cgo

package models_test

import (
	"context"
	"errors"
	"math"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/internal/dataset"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/tensor"
)

func TestMain(m *testing.M) {
	if os.Getenv(runtimeChildEnv) != "" {
		os.Exit(runtimeChild()) // a child process of the runtime_test.go tests
	}
	if os.Getenv("LADDER_TEST_NOISY_RUNS") != "" {
		// Child process of TestRuntimeIsSilent.
		if err := noisyRuns(); err != nil {
			os.Stdout.WriteString(err.Error())
			os.Exit(1)
		}
		os.Exit(0)
	}
	testenv.VerifyTestMain(m)
}

func heldout(t testing.TB) dataset.Set {
	t.Helper()
	set, err := dataset.Load(testenv.Testdata("heldout.csv"))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func features(rows ...[]float32) tensor.Tensor {
	data := make([]float32, 0, len(rows)*30)
	for _, r := range rows {
		data = append(data, r...)
	}
	return tensor.New("features", []int64{int64(len(rows)), 30}, data)
}

func TestSignature(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		inputs   []string
		outputs  []string
		metadata map[string]string
	}{
		{"primary", "primary.onnx",
			[]string{"features float32[?,30]"}, []string{"probability float32[?,1]"},
			map[string]string{"role": "primary", "task": "breast-cancer"}},
		{"multiple inputs and outputs", "multi_io.onnx",
			[]string{"a float32[?,3]", "b int64[?,2]"}, []string{"sum_a float32[?,1]", "sum_b int64[?,1]"}, nil},
		{"every element type", "types.onnx",
			[]string{"f64 float64[?]", "i32 int32[?]", "flag bool[?]", "text string[?]"},
			[]string{"f64_out float64[?]", "i32_out int32[?]", "flag_out bool[?]", "text_out string[?]"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := testenv.Load(t, tt.file).Signature()
			if got := infoStrings(sig.Inputs); !equal(got, tt.inputs) {
				t.Errorf("inputs = %q, want %q", got, tt.inputs)
			}
			if got := infoStrings(sig.Outputs); !equal(got, tt.outputs) {
				t.Errorf("outputs = %q, want %q", got, tt.outputs)
			}
			if sig.Producer != "ladder-testdata" || sig.Version != 1 {
				t.Errorf("producer, version = %q, %d; want ladder-testdata, 1", sig.Producer, sig.Version)
			}
			for k, v := range tt.metadata {
				if sig.Metadata[k] != v {
					t.Errorf("metadata[%q] = %q, want %q", k, sig.Metadata[k], v)
				}
			}
		})
	}
}

func TestSignatureIsACopy(t *testing.T) {
	m := testenv.Load(t, "primary.onnx")
	sig := m.Signature()
	sig.Inputs[0].Shape[1] = 99
	sig.Metadata["role"] = "changed"
	again := m.Signature()
	if again.Inputs[0].Shape[1] != 30 || again.Metadata["role"] != "primary" {
		t.Fatalf("Signature shares memory with the model: %v %v", again.Inputs[0], again.Metadata)
	}
}

func infoStrings(infos []tensor.Info) []string {
	out := make([]string, len(infos))
	for i, info := range infos {
		out[i] = info.String()
	}
	return out
}

func equal(a, b []string) bool { return strings.Join(a, "|") == strings.Join(b, "|") }

func TestPredictElementTypes(t *testing.T) {
	ctx := context.Background()
	t.Run("float32 and int64 in, float32 and int64 out", func(t *testing.T) {
		m := testenv.Load(t, "multi_io.onnx")
		out, err := m.Predict(ctx, []tensor.Tensor{
			// Given in the opposite order to the signature: matched by name.
			tensor.New("b", []int64{2, 2}, []int64{1, 2, 30, 40}),
			tensor.New("a", []int64{2, 3}, []float32{1, 2, 3, 0.5, 0.25, 0.25}),
		})
		if err != nil {
			t.Fatal(err)
		}
		sumA, _ := tensor.Data[float32](out[0])
		sumB, _ := tensor.Data[int64](out[1])
		if out[0].Name != "sum_a" || !floatsEqual(sumA, []float32{6, 1}) || out[1].Name != "sum_b" || sumB[0] != 3 || sumB[1] != 70 {
			t.Fatalf("got %v", out)
		}
		if len(out[0].Shape) != 2 || out[0].Shape[0] != 2 || out[0].Shape[1] != 1 {
			t.Errorf("sum_a shape = %v, want [2 1]", out[0].Shape)
		}
	})
	t.Run("int64 in, float64 out", func(t *testing.T) {
		m := testenv.Load(t, "int64_input.onnx")
		out, err := m.Predict(ctx, []tensor.Tensor{tensor.New("ids", []int64{1, 4}, []int64{1, 2, 3, 4})})
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := tensor.Data[float64](out[0]); !ok || got[0] != 5 {
			t.Fatalf("score = %v, want [5]", out[0].Data)
		}
	})
	t.Run("float64, int32, bool and string", func(t *testing.T) {
		m := testenv.Load(t, "types.onnx")
		for range 3 { // the second and third runs reuse native tensors
			out, err := m.Predict(ctx, []tensor.Tensor{
				tensor.New("f64", []int64{2}, []float64{1.5, -2}),
				tensor.New("i32", []int64{2}, []int32{7, -1}),
				tensor.New("flag", []int64{2}, []bool{true, false}),
				tensor.New("text", []int64{2}, []string{"héllo", ""}),
			})
			if err != nil {
				t.Fatal(err)
			}
			f, _ := tensor.Data[float64](out[0])
			i, _ := tensor.Data[int32](out[1])
			b, _ := tensor.Data[bool](out[2])
			s, _ := tensor.Data[string](out[3])
			if f[0] != 3 || f[1] != -4 || i[0] != 8 || i[1] != 0 || b[0] || !b[1] || s[0] != "héllo" || s[1] != "" {
				t.Fatalf("got %v %v %v %q", f, i, b, s)
			}
		}
	})
}

func floatsEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-5 {
			return false
		}
	}
	return true
}

func TestAccuracyOnHeldOutRows(t *testing.T) {
	set := heldout(t)
	for _, file := range []string{"primary.onnx", "backup.onnx"} {
		t.Run(file, func(t *testing.T) {
			m := testenv.Load(t, file)
			// One batched run, then row by row: both must agree.
			batch, err := m.Predict(context.Background(), []tensor.Tensor{features(set.Rows...)})
			if err != nil {
				t.Fatal(err)
			}
			probs, _ := tensor.Data[float32](batch[0])
			correct := 0
			for i, row := range set.Rows {
				out, err := m.Predict(context.Background(), []tensor.Tensor{features(row)})
				if err != nil {
					t.Fatal(err)
				}
				p, _ := tensor.Data[float32](out[0])
				if math.Abs(float64(p[0]-probs[i])) > 1e-5 {
					t.Fatalf("row %d: single-row %v != batched %v", i, p[0], probs[i])
				}
				if (p[0] >= 0.5) == (set.Labels[i] == 1) {
					correct++
				}
			}
			acc := float64(correct) / float64(len(set.Rows))
			t.Logf("%s accuracy %.4f on %d held-out rows", file, acc, len(set.Rows))
			if acc < 0.95 {
				t.Fatalf("accuracy %.4f < 0.95", acc)
			}
		})
	}
}

func TestInvalidInput(t *testing.T) {
	row := make([]float32, 30)
	tests := []struct {
		name    string
		inputs  []tensor.Tensor
		input   string // the input the error must name
		problem string
		want    string // a fragment of the expected-value text
	}{
		{"no inputs", nil, "features", "missing input", "float32[?,30]"},
		{"missing input", []tensor.Tensor{tensor.New("x", []int64{1, 30}, row)}, "features", "missing input", "float32[?,30]"},
		{"unknown extra input",
			[]tensor.Tensor{tensor.New("features", []int64{1, 30}, row), tensor.New("extra", []int64{1}, []float32{1})},
			"extra", "unknown input", "features"},
		{"wrong element type", []tensor.Tensor{tensor.New("features", []int64{1, 30}, make([]float64, 30))}, "features", "wrong element type", "float32"},
		{"unsupported Go type", []tensor.Tensor{{Name: "features", Shape: []int64{1, 30}, Data: make([]uint8, 30)}}, "features", "wrong element type", "float32"},
		{"wrong rank", []tensor.Tensor{tensor.New("features", []int64{30}, row)}, "features", "wrong rank", "float32[?,30]"},
		{"wrong dimension", []tensor.Tensor{tensor.New("features", []int64{1, 29}, row[:29])}, "features", "wrong size of dimension 1", "float32[?,30]"},
		{"negative dimension", []tensor.Tensor{tensor.New("features", []int64{-1, 30}, row)}, "features", "wrong size of dimension 0", "float32[?,30]"},
		{"data shorter than shape", []tensor.Tensor{tensor.New("features", []int64{2, 30}, row)}, "features", "data length does not match shape", "60 elements"},
		{"data longer than shape", []tensor.Tensor{tensor.New("features", []int64{1, 30}, make([]float32, 31))}, "features", "data length does not match shape", "30 elements"},
		{"nil data", []tensor.Tensor{{Name: "features", Shape: []int64{1, 30}}}, "features", "wrong element type", "float32"},
	}
	m := testenv.Load(t, "primary.onnx")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := m.Predict(context.Background(), tt.inputs)
			if err == nil {
				t.Fatalf("Predict succeeded with %v", out)
			}
			if !errors.Is(err, tensor.ErrInvalidInput) {
				t.Fatalf("errors.Is(%v, ErrInvalidInput) = false", err)
			}
			var ie *tensor.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T is not *InputError", err)
			}
			if ie.Input != tt.input || ie.Problem != tt.problem || !strings.Contains(ie.Expected, tt.want) || ie.Model != "primary" {
				t.Errorf("got %+v, want input %q, problem %q, expected containing %q", ie, tt.input, tt.problem, tt.want)
			}
			if !strings.Contains(err.Error(), tt.input) || !strings.Contains(err.Error(), "expected") {
				t.Errorf("message %q does not name the input and what was expected", err)
			}
		})
	}
	// The model keeps serving after every bad request.
	if _, err := m.Predict(context.Background(), []tensor.Tensor{features(row)}); err != nil {
		t.Fatalf("valid request after invalid ones: %v", err)
	}
}

func TestConcurrentPredictions(t *testing.T) {
	set := heldout(t)
	m := testenv.Load(t, "primary.onnx")
	want := make([]float32, len(set.Rows))
	for i, row := range set.Rows {
		out, err := m.Predict(context.Background(), []tensor.Tensor{features(row)})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = out[0].Data.([]float32)[0]
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 300 {
				i := (g*31 + k) % len(set.Rows)
				rows := set.Rows[i : i+1]
				if k%5 == 0 && i+3 <= len(set.Rows) { // mix batch sizes
					rows = set.Rows[i : i+3]
				}
				out, err := m.Predict(context.Background(), []tensor.Tensor{features(rows...)})
				if err != nil {
					errs <- err
					return
				}
				got := out[0].Data.([]float32)
				for j := range rows {
					if math.Abs(float64(got[j]-want[i+j])) > 1e-5 {
						errs <- errors.New("concurrent result differs from sequential result")
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// The tensors Predict returns belong to the caller: a later run, a
// garbage collection, or the caller growing or writing one output's data
// changes no other result, whether the outputs are small enough to share
// one allocation with their shapes or not.
func TestResultsAreTheCallers(t *testing.T) {
	rows := heldout(t).Rows
	cases := []struct {
		name  string
		model string
		in    func(k int) []tensor.Tensor
	}{
		{"one small output", "primary.onnx", func(k int) []tensor.Tensor {
			return []tensor.Tensor{features(rows[k])}
		}},
		{"one output too large to share", "primary.onnx", func(k int) []tensor.Tensor {
			return []tensor.Tensor{features(rows[k : k+20]...)}
		}},
		{"two outputs", "multi_io.onnx", func(k int) []tensor.Tensor {
			return []tensor.Tensor{
				tensor.New("a", []int64{2, 3}, []float32{1, 2, 3, float32(k), 0, 0}),
				tensor.New("b", []int64{2, 2}, []int64{1, 2, int64(k), 40}),
			}
		}},
		{"two scalars out", "scalars.onnx", func(k int) []tensor.Tensor {
			return []tensor.Tensor{tensor.New("x", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}), tensor.Scalar("rate", int64(k))}
		}},
		{"four outputs", "types.onnx", func(k int) []tensor.Tensor {
			return []tensor.Tensor{
				tensor.New("f64", []int64{2}, []float64{1.5, float64(k)}),
				tensor.New("i32", []int64{2}, []int32{7, int32(k)}),
				tensor.New("flag", []int64{2}, []bool{true, k%2 == 0}),
				tensor.New("text", []int64{2}, []string{"héllo", strconv.Itoa(k)}),
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := testenv.Load(t, c.model)
			ctx := context.Background()
			// Given the results of a run, and copies of them,
			kept, err := m.Predict(ctx, c.in(1))
			if err != nil {
				t.Fatal(err)
			}
			want := tensor.CloneAll(kept)
			// when the caller appends to the first output's data and later
			// runs on other inputs write their own results,
			grown := tensor.Tensor{Name: kept[0].Name, Shape: kept[0].Shape, Data: appendOne(kept[0].Data)}
			for k := 2; k < 5; k++ {
				out, err := m.Predict(ctx, c.in(k))
				if err != nil {
					t.Fatal(err)
				}
				fillZero(out)
				runtime.GC()
			}
			// then the kept results are unchanged.
			if !reflect.DeepEqual(kept, want) {
				t.Fatalf("kept results changed:\n got %#v\nwant %#v", kept, want)
			}
			if grown.Len() != kept[0].Len()+1 {
				t.Fatalf("appending to the data gave %d elements, want %d", grown.Len(), kept[0].Len()+1)
			}
		})
	}
}

// appendOne returns data with its first element appended.
func appendOne(data any) any {
	v := reflect.ValueOf(data)
	return reflect.Append(v, v.Index(0)).Interface()
}

// fillZero overwrites the data and shapes of ts with zeros.
func fillZero(ts []tensor.Tensor) {
	for _, t := range ts {
		v := reflect.ValueOf(t.Data)
		for i := range v.Len() {
			v.Index(i).SetZero()
		}
		clear(t.Shape)
	}
}

// slowRun loads slow.onnx and returns it with an input of four rows and how
// long one full run of it takes. A full run takes a few hundred ms, so a
// run stopped after a few ms stands out even on a busy machine, where both
// stretch alike.
func slowRun(t *testing.T) (*models.Model, []tensor.Tensor, time.Duration) {
	t.Helper()
	m := testenv.Load(t, "slow.onnx")
	row := make([]float32, 30)
	in := []tensor.Tensor{features(row, row, row, row)}
	start := time.Now()
	if _, err := m.Predict(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	return m, in, time.Since(start)
}

func TestCancellationStopsTheNativeRun(t *testing.T) {
	m, in, full := slowRun(t)

	tests := []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		target error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 5*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(5*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			_, err := m.Predict(ctx, in)
			took := time.Since(start)
			if !errors.Is(err, tt.target) {
				t.Fatalf("err = %v, want %v", err, tt.target)
			}
			// A terminated run stops within a few ms of the deadline: far
			// sooner than a full run.
			if bound := full / 4; took > bound {
				t.Fatalf("returned after %v, want ≤ %v (a quarter of a full run, %v)", took, bound, full)
			}
		})
	}
	// A terminated run leaves the model fit to serve.
	if _, err := m.Predict(context.Background(), in); err != nil {
		t.Fatalf("run after cancellation: %v", err)
	}
}

func TestCloseWaitsForInFlightRuns(t *testing.T) {
	testenv.MustHaveRuntime(t)
	m, err := models.Load(testenv.Testdata("slow.onnx"), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := []tensor.Tensor{features(make([]float32, 30))}
	var wg sync.WaitGroup
	results := make(chan error, 4)
	started := make(chan struct{}, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			_, err := m.Predict(context.Background(), in)
			results <- err
		}()
	}
	for range 4 {
		<-started
	}
	time.Sleep(5 * time.Millisecond) // let the runs enter ONNX Runtime
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	close(results)
	for err := range results {
		// Every run either finished before Close or was refused after it.
		if err != nil && !errors.Is(err, models.ErrClosed) {
			t.Errorf("in-flight run: %v", err)
		}
	}
	if _, err := m.Predict(context.Background(), in); !errors.Is(err, models.ErrClosed) {
		t.Fatalf("Predict after Close: %v, want ErrClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestLoadErrors covers in-memory models; TestLoadErrorWording covers
// files and the wording for each cause.
func TestLoadErrors(t *testing.T) {
	testenv.MustHaveRuntime(t)
	if _, err := models.LoadBytes(nil, models.Options{}); !errors.Is(err, models.ErrLoad) ||
		!strings.Contains(err.Error(), "expected a complete ONNX model file") {
		t.Errorf("LoadBytes(nil) = %v, want ErrLoad saying the file is incomplete", err)
	}
	// Failed loads leave the runtime serving.
	testenv.Load(t, "primary.onnx")
}

func TestLoadBytes(t *testing.T) {
	testenv.MustHaveRuntime(t)
	data, err := os.ReadFile(testenv.Testdata("backup.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.LoadBytes(data, models.Options{Name: "backup-v1", IntraOpThreads: 2, Optimization: models.OptimizeBasic})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Name() != "backup-v1" || m.Version() != "1" {
		t.Errorf("Name, Version = %q, %q", m.Name(), m.Version())
	}
	if err := m.Warmup(context.Background()); err != nil {
		t.Fatalf("Warmup: %v", err)
	}
}

func TestNaNModelOutputsNaN(t *testing.T) {
	// The router must catch these; the models layer passes them through.
	m := testenv.Load(t, "nan.onnx")
	row := make([]float32, 30)
	row[0] = 20 // mean radius above 15 yields NaN
	out, err := m.Predict(context.Background(), []tensor.Tensor{features(row)})
	if err != nil {
		t.Fatal(err)
	}
	if p := out[0].Data.([]float32)[0]; !math.IsNaN(float64(p)) {
		t.Fatalf("probability = %v, want NaN", p)
	}
}

func TestPredictTimeoutWatchesEachRunToItsOwnDeadline(t *testing.T) {
	// Given a run with a long timeout in flight, which armed the Model's
	// one timer far ahead
	m, in, full := slowRun(t)
	long := make(chan error, 1)
	go func() {
		_, err := m.PredictTimeout(context.Background(), 10*time.Second, in)
		long <- err
	}()
	time.Sleep(time.Millisecond)

	// When runs with a short timeout start beside it
	for i := range 3 {
		start := time.Now()
		_, err := m.PredictTimeout(context.Background(), 5*time.Millisecond, in)

		// Then each stops at its own timeout
		if !errors.Is(err, models.ErrTimeout) {
			t.Fatalf("short run %d: err = %v, want ErrTimeout", i, err)
		}
		if took := time.Since(start); took > full/4 {
			t.Fatalf("short run %d: returned after %v, want ≤ %v (a quarter of a full run)", i, took, full/4)
		}
	}
	// And the long one is not cut short by them
	if err := <-long; err != nil {
		t.Fatalf("long run: %v", err)
	}
}

func TestShutdownRefusedWhileModelsOpen(t *testing.T) {
	m := testenv.Load(t, "backup.onnx")
	_ = m
	if err := models.ShutdownRuntime(); err == nil {
		t.Fatal("ShutdownRuntime succeeded with a model open")
	}
	if err := models.InitRuntime(""); err != nil {
		t.Fatalf("InitRuntime while up = %v, want nil", err)
	}
}

func TestPredictTimeoutStopsTheNativeRun(t *testing.T) {
	m, in, full := slowRun(t)
	for i := range 3 { // the watchdog's timer is reused across runs
		start := time.Now()
		_, err := m.PredictTimeout(context.Background(), 5*time.Millisecond, in)
		took := time.Since(start)
		if !errors.Is(err, models.ErrTimeout) {
			t.Fatalf("run %d: err = %v, want ErrTimeout", i, err)
		}
		if took > full/4 {
			t.Fatalf("run %d: returned after %v, want ≤ %v (a quarter of a full run, %v)", i, took, full/4, full)
		}
	}
	// A generous timeout lets the run finish, and leaves no terminate flag
	// behind for the next run.
	for range 2 {
		if _, err := m.PredictTimeout(context.Background(), 5*time.Second, in); err != nil {
			t.Fatalf("run within its timeout: %v", err)
		}
	}
}
