package chaos_test

import (
	"context"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/tensor"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }

// probs is the fixed output of the inner model the tests wrap.
var probs = []float32{0.25, 0.75}

// fixed is an inner model that always answers probs, shared, as a real
// model's cached output might be.
var fixed = chaos.Func(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
	return []tensor.Tensor{tensor.New("probs", []int64{1, 2}, probs)}, nil
})

// newClock returns a hand-turned clock for [chaos.WithClock].
func newClock() *clock.Fake { return clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) }

// call calls m, turning a panic into an error so counts can go on.
func call(ctx context.Context, m chaos.Model) (out []tensor.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = r.(error)
		}
	}()
	return m.Predict(ctx, nil)
}

func TestRatesAreHonoured(t *testing.T) {
	const n = 4000
	faults := []struct {
		name  string
		fault func(rate float64) chaos.Fault
	}{
		{"error", func(r float64) chaos.Fault { return chaos.Fault{ErrorRate: r} }},
		{"hang", func(r float64) chaos.Fault { return chaos.Fault{HangRate: r} }},
		{"slow", func(r float64) chaos.Fault { return chaos.Fault{SlowRate: r, SlowLatency: time.Nanosecond} }},
		{"nan", func(r float64) chaos.Fault { return chaos.Fault{NaNRate: r} }},
		{"panic", func(r float64) chaos.Fault { return chaos.Fault{PanicRate: r} }},
	}
	rates := []float64{-1, 0, 0.01, 0.3, 0.5, 0.9, 1, 2, math.NaN()}

	// Given a context that is already done, so that hangs and sleeps end at once,
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, f := range faults {
		for _, rate := range rates {
			t.Run(f.name+"/"+strconv.FormatFloat(rate, 'g', -1, 64), func(t *testing.T) {
				// When n calls go through a model with that fault,
				m := chaos.Wrap(fixed, f.fault(rate), chaos.WithSeed(7))
				for range n {
					call(ctx, m)
				}

				// Then about rate of them get it.
				p := min(max(rate, 0), 1)
				if math.IsNaN(rate) {
					p = 0
				}
				want := p * n
				slack := 5*math.Sqrt(n*p*(1-p)) + 0.5
				if got := float64(m.Injected()); math.Abs(got-want) > slack {
					t.Errorf("Injected() = %v after %d calls, want %v ± %.0f", got, n, want, slack)
				}
				if got := m.Calls(); got != n {
					t.Errorf("Calls() = %d, want %d", got, n)
				}
			})
		}
	}
}

// outcomes returns, call by call, whether each of n calls failed.
func outcomes(m *chaos.Faulty, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		_, err := m.Predict(context.Background(), nil)
		out[i] = err != nil
	}
	return out
}

func TestErrorRateIsReproducible(t *testing.T) {
	const n = 1000
	fault := chaos.Fault{ErrorRate: 0.3}

	// Given two models wrapped with the same seed,
	a := chaos.Wrap(fixed, fault, chaos.WithSeed(42))
	b := chaos.Wrap(fixed, fault, chaos.WithSeed(42))
	other := chaos.Wrap(fixed, fault, chaos.WithSeed(43))

	// When each serves n calls,
	got, again, differs := outcomes(a, n), outcomes(b, n), outcomes(other, n)

	// Then they fail on the same calls, and a different seed fails on others.
	if !slices.Equal(got, again) {
		t.Error("two wraps with seed 42 failed on different calls")
	}
	if slices.Equal(got, differs) {
		t.Error("seeds 42 and 43 failed on the same calls")
	}
	if a.Injected()+a.Reached() != n {
		t.Errorf("Injected() + Reached() = %d + %d, want %d", a.Injected(), a.Reached(), n)
	}

	// And n calls spread over goroutines fail as often as n calls in a row.
	c := chaos.Wrap(fixed, fault, chaos.WithSeed(42))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range n / 8 {
				c.Predict(context.Background(), nil)
			}
		})
	}
	wg.Wait()
	if c.Injected() != a.Injected() {
		t.Errorf("concurrent Injected() = %d, sequential = %d", c.Injected(), a.Injected())
	}
}

func TestInjectedErrors(t *testing.T) {
	tests := []struct {
		name  string
		fault chaos.Fault
	}{
		{"error rate", chaos.Fault{ErrorRate: 1}},
		{"down", chaos.Fault{DownFor: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := chaos.Wrap(fixed, tt.fault)
			out, err := m.Predict(context.Background(), nil)
			if !errors.Is(err, chaos.ErrInjected) {
				t.Fatalf("Predict() error = %v, want ErrInjected", err)
			}
			if out != nil || m.Reached() != 0 || m.Injected() != 1 {
				t.Errorf("out, Reached(), Injected() = %v, %d, %d; want nil, 0, 1", out, m.Reached(), m.Injected())
			}
		})
	}
	if got, want := chaos.ErrInjected.Error(), "chaos: injected failure"; got != want {
		t.Errorf("ErrInjected = %q, want %q", got, want)
	}
}

func TestFlap(t *testing.T) {
	type step struct {
		at   time.Duration // since the fault was installed
		down bool
	}
	tests := []struct {
		name  string
		fault func(installed time.Time) chaos.Fault
		steps []step
	}{{
		name:  "no fault is never down",
		fault: func(time.Time) chaos.Fault { return chaos.Fault{} },
		steps: []step{{0, false}, {time.Hour, false}},
	}, {
		name:  "one outage then recovery",
		fault: func(time.Time) chaos.Fault { return chaos.Fault{DownFor: 10 * time.Second} },
		steps: []step{
			{0, true}, {10*time.Second - 1, true},
			{10 * time.Second, false}, {time.Hour, false},
		},
	}, {
		name:  "flaps down and up",
		fault: func(time.Time) chaos.Fault { return chaos.Fault{DownFor: 10 * time.Second, UpFor: 5 * time.Second} },
		steps: []step{
			{0, true}, {9 * time.Second, true},
			{10 * time.Second, false}, {14 * time.Second, false},
			{15 * time.Second, true}, {24 * time.Second, true},
			{25 * time.Second, false},
			{15*time.Second*1000 + time.Second, true},
		},
	}, {
		name: "outage starts later",
		fault: func(installed time.Time) chaos.Fault {
			return chaos.Fault{Start: installed.Add(time.Minute), DownFor: 10 * time.Second}
		},
		steps: []step{
			{0, false}, {time.Minute - 1, false},
			{time.Minute, true}, {time.Minute + 10*time.Second, false},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given a fault installed on a clock we turn by hand,
			clk := newClock()
			installed := clk.Now()
			m := chaos.Wrap(fixed, tt.fault(installed), chaos.WithClock(clk), chaos.WithSeed(1))
			for _, s := range tt.steps {
				// When the clock reads s.at,
				clk.Set(installed.Add(s.at))
				_, err := m.Predict(context.Background(), nil)

				// Then the model is down exactly inside the outage.
				if down := errors.Is(err, chaos.ErrInjected); down != s.down || (err != nil && !down) {
					t.Errorf("at %v: Predict() error = %v, want down = %v", s.at, err, s.down)
				}
			}
		})
	}
}

func TestSetRestartsTheOutage(t *testing.T) {
	// Given a single outage that has long ended,
	clk := newClock()
	m := chaos.Wrap(fixed, chaos.Fault{DownFor: time.Minute}, chaos.WithClock(clk))
	clk.Advance(time.Hour)
	if _, err := m.Predict(context.Background(), nil); err != nil {
		t.Fatalf("Predict() after the outage: %v", err)
	}

	// When the same fault is set again,
	m.Set(m.Fault())

	// Then the outage starts over from now.
	if _, err := m.Predict(context.Background(), nil); !errors.Is(err, chaos.ErrInjected) {
		t.Fatalf("Predict() after Set = %v, want ErrInjected", err)
	}
}

func TestLatency(t *testing.T) {
	const short = 20 * time.Millisecond
	tests := []struct {
		name    string
		fault   chaos.Fault
		timeout time.Duration // of PredictTimeout; zero for Predict
		wantErr error
		reached bool
	}{
		{"latency is added", chaos.Fault{Latency: short}, 0, nil, true},
		{"slow tail is added", chaos.Fault{SlowRate: 1, SlowLatency: short}, 0, nil, true},
		{"latency and slow tail add up", chaos.Fault{Latency: short / 4, SlowRate: 1, SlowLatency: short * 3 / 4}, 0, nil, true},
		{"latency within the timeout is added", chaos.Fault{Latency: short}, time.Hour, nil, true},
		{"latency stops at the timeout", chaos.Fault{Latency: time.Hour}, short, context.DeadlineExceeded, false},
		{"slow tail stops at the timeout", chaos.Fault{SlowRate: 1, SlowLatency: time.Hour}, short, context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given a call to a model with the fault, on a clock we turn
			// by hand,
			clk := newClock()
			m := chaos.Wrap(fixed, tt.fault, chaos.WithClock(clk))
			errc := make(chan error, 1)
			go func() {
				var err error
				if tt.timeout > 0 {
					_, err = m.PredictTimeout(t.Context(), tt.timeout, nil)
				} else {
					_, err = m.Predict(t.Context(), nil)
				}
				errc <- err
			}()

			// when the clock is a moment short of the delay, then the
			// call still waits,
			if !clk.WaitTimers(1, 5*time.Second) {
				t.Fatal("Predict() armed no timer on the clock within 5s")
			}
			clk.Advance(short - 1)
			select {
			case err := <-errc:
				t.Fatalf("Predict() returned %v before %v had passed", err, short)
			default:
			}
			if m.Reached() != 0 {
				t.Fatal("the inner model was reached before the delay had passed")
			}

			// and once the delay has passed it ends.
			clk.Advance(1)
			if err := waitErr(t, errc); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Predict() error = %v, want %v", err, tt.wantErr)
			}
			if got := m.Reached() == 1; got != tt.reached {
				t.Errorf("inner model reached = %v, want %v", got, tt.reached)
			}
			if m.Injected() != 1 {
				t.Errorf("Injected() = %d, want 1", m.Injected())
			}
		})
	}
}

func TestLatencyOnTheRealClock(t *testing.T) {
	// Real time is the point: without WithClock, latency waits on real
	// timers. Only the lower bound is tight; a loaded machine may take
	// longer.
	const short = 20 * time.Millisecond
	m := chaos.Wrap(fixed, chaos.Fault{Latency: short})
	start := time.Now()
	_, err := m.Predict(t.Context(), nil)
	if took := time.Since(start); err != nil || took < short || took > 5*time.Second {
		t.Fatalf("Predict() = %v after %v, want nil after at least %v", err, took, short)
	}
}

func TestLatencyStopsWhenTheContextIsDone(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func(context.Context) (context.Context, context.CancelFunc)
		cancel  bool // whether the test cancels ctx once the call waits
		wantErr error
	}{
		{"cancelled", context.WithCancel, true, context.Canceled},
		{"deadline", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 20*time.Millisecond)
		}, false, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given a call waiting out an hour's latency on a clock that
			// never moves,
			clk := newClock()
			m := chaos.Wrap(fixed, chaos.Fault{Latency: time.Hour}, chaos.WithClock(clk))
			ctx, cancel := tt.ctx(t.Context())
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := m.Predict(ctx, nil)
				errc <- err
			}()
			if !clk.WaitTimers(1, 5*time.Second) {
				t.Fatal("Predict() armed no timer on the clock within 5s")
			}
			// when its context is done, then it returns the context's
			// error, without reaching the inner model.
			if tt.cancel {
				cancel()
			}
			if err := waitErr(t, errc); !errors.Is(err, tt.wantErr) {
				t.Errorf("Predict() error = %v, want %v", err, tt.wantErr)
			}
			if m.Reached() != 0 {
				t.Error("the inner model was reached")
			}
			if n := clk.Timers(); n != 0 {
				t.Errorf("%d timers still armed after the call returned, want 0", n)
			}
		})
	}
}

func TestHangReturnsOnlyWhenContextIsDone(t *testing.T) {
	tests := []struct {
		name string
		// done returns the call's context and a function that makes it
		// done, or does nothing when the context ends by itself.
		done    func(context.Context) (ctx context.Context, finish, cancel context.CancelFunc)
		wantErr error
	}{{
		name: "cancelled",
		done: func(ctx context.Context) (context.Context, context.CancelFunc, context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctx)
			return ctx, cancel, cancel
		},
		wantErr: context.Canceled,
	}, {
		name: "deadline",
		done: func(ctx context.Context) (context.Context, context.CancelFunc, context.CancelFunc) {
			ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			return ctx, func() {}, cancel
		},
		wantErr: context.DeadlineExceeded,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given a model that hangs,
			m := chaos.Wrap(fixed, chaos.Fault{HangRate: 1})
			ctx, finish, cancel := tt.done(t.Context())
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := m.Predict(ctx, nil)
				errc <- err
			}()

			// When a call has been hanging a while,
			waitCalls(t, m, 1)
			select {
			case err := <-errc:
				t.Fatalf("Predict() returned %v before its context was done", err)
			case <-time.After(20 * time.Millisecond):
			}

			// Then it returns the context's error as soon as that is done.
			finish()
			if err := waitErr(t, errc); !errors.Is(err, tt.wantErr) {
				t.Errorf("Predict() error = %v, want %v", err, tt.wantErr)
			}
			if m.Reached() != 0 || m.Injected() != 1 {
				t.Errorf("Reached(), Injected() = %d, %d; want 0, 1", m.Reached(), m.Injected())
			}
		})
	}
}

func TestNaN(t *testing.T) {
	f64 := []float64{1, 2, 3}
	ids := []int64{7, 8}
	inner := chaos.Func(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return []tensor.Tensor{
			tensor.New("probs", []int64{1, 2}, probs),
			tensor.New("scores", []int64{3}, f64),
			tensor.New("ids", []int64{2}, ids),
		}, nil
	})
	wantProbs, wantF64 := slices.Clone(probs), slices.Clone(f64)

	// Given a model whose every answer is turned to NaN,
	m := chaos.Wrap(inner, chaos.Fault{NaNRate: 1})

	// When it answers,
	out, err := m.Predict(context.Background(), nil)
	if err != nil {
		t.Fatalf("Predict(): %v", err)
	}

	// Then every float is NaN,
	if len(out) != 3 {
		t.Fatalf("Predict() returned %d tensors, want 3", len(out))
	}
	p, _ := tensor.Data[float32](out[0])
	s, _ := tensor.Data[float64](out[1])
	if len(p) != len(probs) || len(s) != len(f64) {
		t.Fatalf("lengths = %d, %d; want %d, %d", len(p), len(s), len(probs), len(f64))
	}
	for _, v := range p {
		if !math.IsNaN(float64(v)) {
			t.Errorf("probs = %v, want all NaN", p)
			break
		}
	}
	for _, v := range s {
		if !math.IsNaN(v) {
			t.Errorf("scores = %v, want all NaN", s)
			break
		}
	}
	// names and shapes survive, other tensors pass through,
	for i, name := range []string{"probs", "scores", "ids"} {
		if out[i].Name != name {
			t.Errorf("out[%d].Name = %q, want %q", i, out[i].Name, name)
		}
	}
	if !slices.Equal(out[0].Shape, []int64{1, 2}) {
		t.Errorf("probs shape = %v, want [1 2]", out[0].Shape)
	}
	if got, _ := tensor.Data[int64](out[2]); !slices.Equal(got, ids) {
		t.Errorf("ids = %v, want %v", got, ids)
	}
	// and the inner model's own slices are untouched.
	if !slices.Equal(probs, wantProbs) || !slices.Equal(f64, wantF64) {
		t.Errorf("inner slices = %v, %v; want %v, %v", probs, f64, wantProbs, wantF64)
	}
	if m.Reached() != 1 || m.Injected() != 1 {
		t.Errorf("Reached(), Injected() = %d, %d; want 1, 1", m.Reached(), m.Injected())
	}
}

func TestNaNKeepsTheInnerError(t *testing.T) {
	boom := errors.New("boom")
	m := chaos.Wrap(chaos.Func(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, boom
	}), chaos.Fault{NaNRate: 1})
	if _, err := m.Predict(context.Background(), nil); err != boom {
		t.Errorf("Predict() error = %v, want %v", err, boom)
	}
	if m.Injected() != 0 {
		t.Errorf("Injected() = %d, want 0", m.Injected())
	}
}

func TestPanic(t *testing.T) {
	m := chaos.Wrap(fixed, chaos.Fault{PanicRate: 1})
	defer func() {
		r := recover()
		if r != chaos.ErrPanic {
			t.Fatalf("recovered %v, want chaos.ErrPanic", r)
		}
		if !errors.Is(r.(error), chaos.ErrInjected) {
			t.Error("ErrPanic does not match ErrInjected")
		}
		if m.Reached() != 0 {
			t.Errorf("Reached() = %d, want 0", m.Reached())
		}
	}()
	m.Predict(context.Background(), nil)
	t.Fatal("Predict() returned, want a panic")
}

func TestSetWhileCalling(t *testing.T) {
	// Given callers hammering a healthy model,
	m := chaos.Wrap(fixed, chaos.Fault{}, chaos.WithSeed(3))

	// phase says which fault is set: even phases are stable (0 healthy,
	// 2 failing, 4 healthy again), odd ones mark a Set in progress. A call
	// that reads the same even phase before and after itself ran wholly
	// under that phase's fault.
	var phase atomic.Int32
	var checked, wrong atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				before := phase.Load()
				_, err := m.Predict(context.Background(), nil)
				if after := phase.Load(); before != after || before%2 == 1 {
					continue
				}
				checked.Add(1)
				if failing := before == 2; failing != (err != nil) {
					wrong.Add(1)
				}
			}
		})
	}
	set := func(f chaos.Fault) {
		phase.Add(1)
		m.Set(f)
		phase.Add(1)
		waitCalls(t, m, m.Calls()+200)
	}

	// When the fault is set and then cleared,
	waitCalls(t, m, 200)
	set(chaos.Fault{ErrorRate: 1})
	set(chaos.Fault{})
	close(stop)
	wg.Wait()

	// Then every call saw the fault that was set while it ran.
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d of %d calls saw a fault other than the one set while they ran", n, checked.Load())
	}
	if m.Injected() == 0 || m.Reached()+m.Injected() != m.Calls() {
		t.Errorf("Reached() + Injected() = %d + %d, Calls() = %d", m.Reached(), m.Injected(), m.Calls())
	}
}

func TestFaultReturnsWhatWasSet(t *testing.T) {
	want := chaos.Fault{ErrorRate: 0.5, DownFor: time.Second, Latency: time.Millisecond}
	m := chaos.Wrap(fixed, chaos.Fault{})
	m.Set(want)
	if got := m.Fault(); got != want {
		t.Errorf("Fault() = %+v, want %+v", got, want)
	}
}

type closer struct {
	chaos.Func
	closed int
	err    error
}

func (c *closer) Close() error { c.closed++; return c.err }

func TestClose(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		inner   chaos.Model
		wantErr error
		closed  int
	}{
		{"closes a closer once", &closer{Func: fixed}, nil, 1},
		{"returns its error every time", &closer{Func: fixed, err: boom}, boom, 1},
		{"is a no-op otherwise", fixed, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := chaos.Wrap(tt.inner, chaos.Fault{})
			var _ io.Closer = m
			for range 2 {
				if err := m.Close(); err != tt.wantErr {
					t.Errorf("Close() = %v, want %v", err, tt.wantErr)
				}
			}
			if c, ok := tt.inner.(*closer); ok && c.closed != tt.closed {
				t.Errorf("inner closed %d times, want %d", c.closed, tt.closed)
			}
		})
	}
}

func TestWrapNilPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Wrap(nil) did not panic")
		}
	}()
	chaos.Wrap(nil, chaos.Fault{})
}

// waitCalls waits until m has seen at least n calls. It polls, as Calls
// has nothing to wait on.
func waitCalls(t *testing.T, m *chaos.Faulty, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for m.Calls() < n {
		if time.Now().After(deadline) {
			t.Fatalf("Calls() = %d after 5s, want %d", m.Calls(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitErr receives from errc, failing if nothing comes promptly.
func waitErr(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Predict() did not return within 5s of its context being done")
		return nil
	}
}

func BenchmarkPredict(b *testing.B) {
	ctx := context.Background()
	for _, bb := range []struct {
		name string
		m    chaos.Model
	}{
		{"inner", fixed}, // the baseline
		{"no fault", chaos.Wrap(fixed, chaos.Fault{})},
		{"rates", chaos.Wrap(fixed, chaos.Fault{ErrorRate: 0.1, NaNRate: 0.1})},
		{"flapping", chaos.Wrap(fixed, chaos.Fault{DownFor: time.Hour, Start: time.Now().Add(time.Hour)})},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bb.m.Predict(ctx, nil)
				}
			})
		})
	}
}

func TestPredictTimeoutBoundsInjectedFaults(t *testing.T) {
	const timeout = 20 * time.Millisecond
	tests := []struct {
		name  string
		fault chaos.Fault
	}{
		{"hang", chaos.Fault{HangRate: 1}},
		{"delay longer than the timeout", chaos.Fault{Latency: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given a call with a timeout to a model whose fault outlasts
			// it, on a clock we turn by hand,
			clk := newClock()
			f := chaos.Wrap(fixed, tt.fault, chaos.WithSeed(1), chaos.WithClock(clk))
			errc := make(chan error, 1)
			go func() {
				_, err := f.PredictTimeout(t.Context(), timeout, nil)
				errc <- err
			}()
			if !clk.WaitTimers(1, 5*time.Second) {
				t.Fatal("PredictTimeout() armed no timer on the clock within 5s")
			}
			// when the timeout has all but passed, the call still waits,
			clk.Advance(timeout - 1)
			select {
			case err := <-errc:
				t.Fatalf("PredictTimeout() returned %v before its timeout", err)
			default:
			}
			// and when it has passed, the call ends with a deadline error.
			clk.Advance(1)
			if err := waitErr(t, errc); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want context.DeadlineExceeded", err)
			}
		})
	}
}

func TestPredictTimeoutBoundsTheInnerModel(t *testing.T) {
	// Real time is the point: the inner model's call is bounded by a
	// context deadline, which is real time whatever the clock. The inner
	// model would take a minute, so a bound of seconds tells the timeout
	// apart from the model's own end even on a loaded machine.
	var sawDeadline atomic.Bool
	inner := chaos.Func(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
		_, ok := ctx.Deadline()
		sawDeadline.Store(ok)
		later := time.NewTimer(time.Minute)
		defer later.Stop()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-later.C:
			return in, nil
		}
	})
	const timeout = 20 * time.Millisecond
	f := chaos.Wrap(inner, chaos.Fault{}, chaos.WithSeed(1))
	start := time.Now()
	_, err := f.PredictTimeout(context.Background(), timeout, nil)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if took < timeout || took > 5*time.Second {
		t.Fatalf("returned after %v, want about %v", took, timeout)
	}
	if !sawDeadline.Load() {
		t.Error("the inner model's context carried no deadline")
	}
}

// warmer is an inner model that counts its warm-ups.
type warmer struct {
	chaos.Func
	warmed int
}

func (w *warmer) Warmup(context.Context) error { w.warmed++; return nil }

func TestWarmupIsForwarded(t *testing.T) {
	// Given a model that warms up, wrapped with every fault,
	w := &warmer{Func: fixed}
	m := chaos.Wrap(w, chaos.Fault{ErrorRate: 1, PanicRate: 1})
	// when the wrapper is warmed up, then the inner model is, without faults.
	if err := m.Warmup(context.Background()); err != nil || w.warmed != 1 {
		t.Fatalf("Warmup() = %v, inner warmed %d times; want nil and 1", err, w.warmed)
	}
	// A model that cannot warm up makes Warmup a no-op.
	if err := chaos.Wrap(fixed, chaos.Fault{}).Warmup(context.Background()); err != nil {
		t.Fatalf("Warmup() = %v, want nil", err)
	}
}
