package router_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/internal/dataset"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// fast policies keep the scenarios short: a breaker that re-probes after
// 50ms and a 50ms attempt timeout.
var fast = policy.Config{Timeout: 50 * time.Millisecond, OpenFor: 50 * time.Millisecond}

type ladder struct {
	r       *router.Router
	primary *chaos.Faulty
	backup  *chaos.Faulty
	rows    [][]float32
	// cannotServe marks a primary that cannot answer in time even when
	// healthy, so the after-scenario check does not apply.
	cannotServe bool
}

// newLadder builds primary.onnx → backup.onnx → cache → heuristic, each
// model wrapped in a fault injector, with the given primary model file.
func newLadder(t *testing.T, primaryFile string, opts ...func(*router.Config)) *ladder {
	t.Helper()
	set, err := dataset.Load(testenv.Testdata("heldout.csv"))
	if err != nil {
		t.Fatal(err)
	}
	l := &ladder{
		primary: chaos.Wrap(load(t, primaryFile), chaos.Fault{}, chaos.WithSeed(1)),
		backup:  chaos.Wrap(load(t, "backup.onnx"), chaos.Fault{}, chaos.WithSeed(2)),
		rows:    set.Rows,
	}
	cfg := router.Config{
		Tiers: []router.Tier{
			{Name: "primary", Model: l.primary, Policy: fast},
			{Name: "backup", Model: l.backup, Policy: fast},
		},
		Heuristic: func(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			f := in[0].Data.([]float32)
			p := float32(0.9) // base rate: most tumours in the data are benign
			if f[0] > 15 {    // large mean radius
				p = 0.1
			}
			return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{p})}, nil
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	l.r, err = router.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// After every scenario, a healthy request is served by the primary.
		l.primary.Set(chaos.Fault{})
		l.backup.Set(chaos.Fault{})
		deadline := time.Now().Add(2 * time.Second)
		for !l.cannotServe {
			a, err := l.r.Predict(context.Background(), l.in(0))
			if err == nil && a.Tier == "primary" && !a.Degraded {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("after the scenario the primary did not serve again: %+v, %v", a, err)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := l.r.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

func (l *ladder) in(i int) []tensor.Tensor {
	return []tensor.Tensor{tensor.New("features", []int64{1, 30}, l.rows[i%len(l.rows)])}
}

func (l *ladder) predict(t *testing.T, i int, opts ...router.CallOption) router.Answer {
	t.Helper()
	a, err := l.r.Predict(context.Background(), l.in(i), opts...)
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	return a
}

func TestScenarios(t *testing.T) {
	testenv.RequireRuntime(t, haveRuntime)

	t.Run("a transient error is retried and the primary serves", func(t *testing.T) {
		// Given a primary whose next call fails once,
		l := newLadder(t, "primary.onnx")
		var calls atomic.Int32
		flaky := router.ModelFunc(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			if calls.Add(1) == 1 {
				return nil, errors.New("connection reset")
			}
			return l.primary.Predict(ctx, in)
		})
		r, err := router.New(router.Config{Tiers: []router.Tier{{Name: "primary", Model: flaky}, {Name: "backup", Model: l.backup}}})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		// when a request arrives,
		a, err := r.Predict(context.Background(), l.in(0))
		// then it is retried on the primary, which serves.
		if err != nil || a.Tier != "primary" || a.Attempts != 2 || a.Degraded {
			t.Fatalf("got %+v, %v; want primary after 2 attempts", a, err)
		}
		if l.backup.Calls() != 0 {
			t.Errorf("backup saw %d calls, want 0", l.backup.Calls())
		}
	})

	t.Run("persistent errors open the breaker and later requests skip the primary", func(t *testing.T) {
		l := newLadder(t, "primary.onnx")
		l.primary.Set(chaos.Fault{ErrorRate: 1})
		for i := range 20 {
			if a := l.predict(t, i); a.Tier != "backup" || !a.Degraded {
				t.Fatalf("request %d served by %s, want backup", i, a.Tier)
			}
		}
		// Fifteen failed attempts among the last 30 trip the default
		// breaker, whatever the traffic before.
		if n := l.primary.Calls(); n > 16 {
			t.Errorf("primary saw %d attempts for 20 requests, want ≤ 16", n)
		}
		if h := l.r.Health()["primary"]; h.State != policy.Open {
			t.Fatalf("primary breaker %q, want open", h)
		}
		before := l.primary.Calls()
		for i := range 20 {
			a := l.predict(t, i)
			if len(a.Fell) != 1 || !errors.Is(a.Fell[0].Err, policy.ErrOpen) || a.Fell[0].Attempts != 0 {
				t.Fatalf("fell %+v, want the primary skipped with an open breaker", a.Fell)
			}
		}
		if n := l.primary.Calls() - before; n != 0 {
			t.Errorf("an open breaker let %d attempts through", n)
		}
	})

	t.Run("a hang is cut at the timeout and not retried", func(t *testing.T) {
		l := newLadder(t, "primary.onnx")
		l.primary.Set(chaos.Fault{HangRate: 1})
		start := time.Now()
		a := l.predict(t, 0)
		took := time.Since(start)
		if a.Tier != "backup" || l.primary.Calls() != 1 {
			t.Fatalf("served by %s after %d primary attempts; want backup after 1", a.Tier, l.primary.Calls())
		}
		if !errors.Is(a.Fell[0].Err, policy.ErrTimeout) {
			t.Errorf("primary fell with %v, want a timeout", a.Fell[0].Err)
		}
		if bound := fast.Timeout + 30*time.Millisecond; took > bound {
			t.Errorf("took %v, want ≤ %v", took, bound)
		}
	})

	t.Run("a slow native run is terminated at the timeout", func(t *testing.T) {
		// slow.onnx takes tens of ms; with a 5ms timeout ONNX Runtime must
		// stop it, or the call would last the whole run.
		l := newLadder(t, "slow.onnx", func(c *router.Config) {
			c.Tiers[0].Policy.Timeout = 5 * time.Millisecond
		})
		l.cannotServe = true
		for range 3 {
			start := time.Now()
			a := l.predict(t, 0)
			if took := time.Since(start); took > 25*time.Millisecond {
				t.Fatalf("took %v, want ≤ 25ms", took)
			}
			if a.Tier != "backup" || a.Fell[0].Attempts != 1 || !errors.Is(a.Fell[0].Err, policy.ErrTimeout) {
				t.Fatalf("got %+v; want backup after one terminated primary run", a)
			}
		}
	})

	t.Run("NaN output is never served", func(t *testing.T) {
		l := newLadder(t, "nan.onnx")
		row := make([]float32, 30)
		row[0] = 20 // nan.onnx returns NaN when mean radius > 15
		a, err := l.r.Predict(context.Background(), []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)})
		if err != nil {
			t.Fatal(err)
		}
		var oe *router.OutputError
		if a.Tier != "backup" || !errors.As(a.Fell[0].Err, &oe) || !errors.Is(a.Fell[0].Err, router.ErrInvalidOutput) {
			t.Fatalf("got %+v; want backup after the primary's output was rejected", a)
		}
		if p := a.Outputs[0].Data.([]float32)[0]; p != p {
			t.Fatal("served NaN")
		}
		if l.primary.Calls() != 1 {
			t.Errorf("NaN output retried: %d primary attempts, want 1", l.primary.Calls())
		}
	})

	t.Run("invalid input gets a clean error before any rung runs", func(t *testing.T) {
		l := newLadder(t, "primary.onnx")
		bad := []tensor.Tensor{tensor.New("features", []int64{1, 29}, make([]float32, 29))}
		for range 10 {
			_, err := l.r.Predict(context.Background(), bad)
			var ie *tensor.InputError
			if !errors.Is(err, tensor.ErrInvalidInput) || !errors.As(err, &ie) || ie.Input != "features" {
				t.Fatalf("err = %v, want an *InputError naming features", err)
			}
		}
		if l.primary.Calls() != 0 || l.backup.Calls() != 0 {
			t.Errorf("primary %d, backup %d calls; want none", l.primary.Calls(), l.backup.Calls())
		}
		if h := l.r.Health()["primary"]; h.State != policy.Closed {
			t.Errorf("invalid input moved the breaker to %q", h)
		}
	})

	t.Run("a flap fails over to the backup and returns to the primary", func(t *testing.T) {
		l := newLadder(t, "primary.onnx")
		const outage = 300 * time.Millisecond
		start := time.Now()
		l.primary.Set(chaos.Fault{DownFor: outage, Start: start})
		served := map[string]int{}
		var backAt time.Duration
		for i := 0; time.Since(start) < outage+time.Second; i++ {
			a := l.predict(t, i)
			served[a.Tier]++
			if a.Tier == "primary" && time.Since(start) > outage && backAt == 0 {
				backAt = time.Since(start) - outage
			}
			time.Sleep(2 * time.Millisecond)
		}
		if served["backup"] == 0 || served["primary"] == 0 {
			t.Fatalf("tier mix %v, want both tiers serving", served)
		}
		// During the outage the breaker lets through the first failures
		// and a few probes every OpenFor.
		if n := l.primary.Injected(); n > 40 {
			t.Errorf("%d attempts reached the primary during a %v outage, want ≤ 40", n, outage)
		}
		bound := fast.OpenFor + 50*time.Millisecond
		if backAt == 0 || backAt > bound {
			t.Errorf("primary served again %v after recovery, want within %v", backAt, bound)
		}
	})

	t.Run("with every model down the cache, then the heuristic, serves", func(t *testing.T) {
		l := newLadder(t, "primary.onnx")
		seen := l.predict(t, 0)
		l.primary.Set(chaos.Fault{ErrorRate: 1})
		l.backup.Set(chaos.Fault{ErrorRate: 1})
		a := l.predict(t, 0)
		if a.Tier != router.RungCache || a.Kind != router.KindCache || a.Origin != "primary" || a.Age <= 0 || !a.Degraded {
			t.Fatalf("got %+v; want a labelled cached answer", a)
		}
		if a.Outputs[0].Data.([]float32)[0] != seen.Outputs[0].Data.([]float32)[0] {
			t.Errorf("cached %v, primary said %v", a.Outputs, seen.Outputs)
		}
		h := l.predict(t, 1) // never seen: nothing cached
		if h.Tier != router.RungHeuristic || len(h.Fell) != 3 || !errors.Is(h.Fell[2].Err, router.ErrNotCached) {
			t.Fatalf("got %+v; want the heuristic after primary, backup and cache fell", h)
		}
	})

	t.Run("a consistency request with every model down gets a typed error", func(t *testing.T) {
		l := newLadder(t, "primary.onnx")
		l.predict(t, 0)
		l.primary.Set(chaos.Fault{ErrorRate: 1})
		l.backup.Set(chaos.Fault{ErrorRate: 1})
		for name, opts := range map[string][]router.CallOption{
			"no stale answers": {router.MaxStaleness(-1), router.LowestTier("cache")},
			"models only":      {router.LowestTier("backup")},
		} {
			a, err := l.r.Predict(context.Background(), l.in(0), opts...)
			var na *router.NoAnswerError
			if !errors.As(err, &na) || !errors.Is(err, router.ErrNoAnswer) || !errors.Is(err, chaos.ErrInjected) {
				t.Fatalf("%s: got %+v, %v; want a NoAnswerError unwrapping the injected failures", name, a, err)
			}
			if len(na.Falls) != 4 || !errors.Is(na.Falls[3].Err, router.ErrNotAccepted) {
				t.Errorf("%s: falls %v", name, na.Falls)
			}
		}
		if _, err := l.r.Predict(context.Background(), l.in(0), router.LowestTier("nope")); err == nil {
			t.Error("LowestTier with an unknown rung succeeded")
		}
	})

	t.Run("a panicking heuristic is recovered and the next rung serves", func(t *testing.T) {
		l := newLadder(t, "primary.onnx", func(c *router.Config) {
			c.Heuristic = func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { panic("rule table missing") }
			c.Default = []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{0.63})}
		})
		l.primary.Set(chaos.Fault{ErrorRate: 1})
		l.backup.Set(chaos.Fault{PanicRate: 1})
		a := l.predict(t, 5)
		var pe *router.PanicError
		if a.Tier != router.RungDefault || !errors.As(a.Fell[3].Err, &pe) || pe.Value != "rule table missing" || len(pe.Stack) == 0 {
			t.Fatalf("got %+v; want the default after a recovered heuristic panic", a)
		}
		if !errors.Is(a.Fell[1].Err, router.ErrPanic) {
			t.Errorf("backup's panic not recovered into a PanicError: %v", a.Fell[1].Err)
		}
	})

	t.Run("the caller's cancellation returns promptly and never opens the breaker", func(t *testing.T) {
		l := newLadder(t, "primary.onnx", func(c *router.Config) { c.Tiers[0].Policy.Timeout = time.Second })
		l.primary.Set(chaos.Fault{HangRate: 1})
		for range 10 {
			// A cancellation, not a deadline: a deadline would be budgeted.
			ctx, cancel := context.WithCancel(context.Background())
			stop := time.AfterFunc(5*time.Millisecond, cancel)
			start := time.Now()
			_, err := l.r.Predict(ctx, l.in(0))
			stop.Stop()
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want the caller's cancellation", err)
			}
			if took := time.Since(start); took > 30*time.Millisecond {
				t.Fatalf("took %v, want ≤ 30ms", took)
			}
		}
		if h := l.r.Health()["primary"]; h.State != policy.Closed {
			t.Fatalf("caller cancellations moved the breaker to %q", h)
		}
		if l.backup.Calls() != 0 {
			t.Errorf("the backup was tried for a caller who had left")
		}
	})
}
