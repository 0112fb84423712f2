package router_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// The README promises five things. These scenarios try to break each of
// them as an adversary would, through the public API only.

// events records a router's events for a test.
type events struct {
	mu  sync.Mutex
	all []router.Event
}

func (e *events) add(ev router.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) of(kind router.EventKind) []router.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []router.Event
	for _, ev := range e.all {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// hookPanics returns the hooks whose panics were reported.
func (e *events) hookPanics() []string {
	var hooks []string
	for _, ev := range e.of(router.HookPanicked) {
		var pe *router.PanicError
		if errors.As(ev.Err, &pe) {
			hooks = append(hooks, pe.Hook)
		}
	}
	return hooks
}

// sigModel is a hand-written model with a signature.
type sigModel struct {
	sig tensor.Signature
	fn  func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error)
}

func (m sigModel) Predict(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	return m.fn(ctx, in)
}
func (m sigModel) Signature() tensor.Signature { return m.sig }

func probability(p float32) []tensor.Tensor {
	return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{p})}
}

// openBreakers drives requests until every model tier's breaker is open.
func openBreakers(t *testing.T, l *ladder, tiers ...string) {
	t.Helper()
	for i := 0; ; i++ {
		open := 0
		for _, name := range tiers {
			if l.r.Health()[name].State == policy.Open {
				open++
			}
		}
		if open == len(tiers) {
			return
		}
		if i == 100 {
			t.Fatalf("breakers %v not open after 100 requests", l.r.Health())
		}
		l.predict(t, i)
	}
}

func TestInvalidInputIsRefusedWhateverTheBreakers(t *testing.T) {
	testenv.RequireRuntime(t, haveRuntime)
	// Given a ladder whose model tiers are down, with their breakers open,
	var heuristicCalls atomic.Int32
	l := newLadder(t, "primary.onnx", func(c *router.Config) {
		h := c.Heuristic
		c.Heuristic = func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			heuristicCalls.Add(1)
			return h(ctx, in)
		}
	})
	l.primary.Set(chaos.Fault{ErrorRate: 1})
	l.backup.Set(chaos.Fault{ErrorRate: 1})
	openBreakers(t, l, "primary", "backup")
	before := heuristicCalls.Load()

	for name, in := range map[string][]tensor.Tensor{
		"wrong dtype":   {tensor.New("features", []int64{1, 30}, make([]float64, 30))},
		"wrong shape":   {tensor.New("features", []int64{1, 29}, make([]float32, 29))},
		"wrong name":    {tensor.New("x", []int64{1, 30}, make([]float32, 30))},
		"no inputs":     nil,
		"extra input":   {tensor.New("features", []int64{1, 30}, make([]float32, 30)), tensor.New("x", []int64{1}, []float32{1})},
		"short of data": {tensor.New("features", []int64{1, 30}, make([]float32, 3))},
	} {
		// when a request that does not fit the contract arrives,
		a, err := l.r.Predict(context.Background(), in)
		// then it is the caller's error, not a degraded answer.
		var ie *tensor.InputError
		if !errors.Is(err, tensor.ErrInvalidInput) || !errors.As(err, &ie) {
			t.Errorf("%s: got %+v, %v; want an *InputError", name, a, err)
		}
	}
	if n := heuristicCalls.Load() - before; n != 0 {
		t.Errorf("the heuristic saw %d invalid requests", n)
	}
}

// idsSignature is a backup that takes other inputs than the primary.
var idsSignature = tensor.Signature{
	Inputs:  []tensor.Info{{Name: "ids", DType: tensor.Int64, Shape: []int64{-1, 4}}},
	Outputs: []tensor.Info{{Name: "probability", DType: tensor.Float32, Shape: []int64{-1, 1}}},
}

func TestTiersWithOtherInputs(t *testing.T) {
	testenv.RequireRuntime(t, haveRuntime)
	idsBackup := sigModel{sig: idsSignature, fn: func(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
		if err := tensor.CheckInputs("ids-backup", idsSignature.Inputs, in, make([]tensor.Tensor, 1)); err != nil {
			return nil, err
		}
		return probability(0.7), nil
	}}
	toIDs := func(in []tensor.Tensor) ([]tensor.Tensor, error) {
		f := in[0].Data.([]float32)
		ids := []int64{int64(f[0]), int64(f[1]), int64(f[2]), int64(f[3])}
		return []tensor.Tensor{tensor.New("ids", []int64{1, 4}, ids)}, nil
	}

	t.Run("without an adapter New names the mismatch", func(t *testing.T) {
		_, err := router.New(router.Config{Tiers: []router.Tier{
			{Name: "primary", Model: load(t, "primary.onnx")},
			{Name: "backup", Model: idsBackup},
		}})
		if !errors.Is(err, router.ErrInvalidConfig) || !strings.Contains(err.Error(), `"backup"`) || !strings.Contains(err.Error(), "ids") {
			t.Fatalf("err = %v; want ErrInvalidConfig naming the backup and its inputs", err)
		}
	})

	t.Run("with an adapter the backup serves", func(t *testing.T) {
		l := newLadder(t, "primary.onnx", func(c *router.Config) {
			c.Tiers[1] = router.Tier{Name: "backup", Model: idsBackup, Inputs: toIDs, Policy: fast}
		})
		l.primary.Set(chaos.Fault{ErrorRate: 1})
		if a := l.predict(t, 0); a.Tier != "backup" {
			t.Fatalf("served by %s, want the adapted backup", a.Tier)
		}
	})

	t.Run("a lower tier refusing a valid input falls, and the heuristic answers", func(t *testing.T) {
		// Given a backup whose adapter produces what it cannot take,
		l := newLadder(t, "primary.onnx", func(c *router.Config) {
			c.Tiers[1] = router.Tier{Name: "backup", Model: idsBackup, Policy: fast,
				Inputs: func(in []tensor.Tensor) ([]tensor.Tensor, error) { return in, nil }}
		})
		l.primary.Set(chaos.Fault{ErrorRate: 1})
		// when the primary is down,
		a, err := l.r.Predict(context.Background(), l.in(1))
		// then the backup's refusal is its own failure, not the caller's.
		if err != nil || a.Tier != router.RungHeuristic {
			t.Fatalf("got %+v, %v; want the heuristic", a, err)
		}
		if !errors.Is(a.Fell[1].Err, tensor.ErrInvalidInput) {
			t.Errorf("backup fell with %v, want its input refusal", a.Fell[1].Err)
		}
	})
}

func TestUserCodeCannotBreakTheRouter(t *testing.T) {
	testenv.RequireRuntime(t, haveRuntime)

	t.Run("a panicking OnEvent and Logger during a breaker change", func(t *testing.T) {
		// Given listeners that panic on every breaker change,
		var ev events
		logger := slog.New(panicHandler{})
		l := newLadder(t, "primary.onnx", func(c *router.Config) {
			c.Logger = logger
			c.OnEvent = func(e router.Event) {
				ev.add(e)
				if e.Kind == router.BreakerChanged {
					panic("listener bug")
				}
			}
		})
		// when the primary fails until its breaker opens,
		l.primary.Set(chaos.Fault{ErrorRate: 1})
		openBreakers(t, l, "primary")
		// then the process lives, the backup serves, and the panics are
		// reported.
		if a := l.predict(t, 0); a.Tier != "backup" {
			t.Fatalf("served by %s, want backup", a.Tier)
		}
		hooks := strings.Join(ev.hookPanics(), ",")
		if !strings.Contains(hooks, "OnEvent") || !strings.Contains(hooks, "Logger") {
			t.Errorf("reported hook panics %q, want OnEvent and Logger", hooks)
		}
	})

	t.Run("a panicking Key or OnEvent never loses the answer", func(t *testing.T) {
		var ev events
		l := newLadder(t, "primary.onnx", func(c *router.Config) {
			c.Key = func([]tensor.Tensor) string { panic("key bug") }
			c.OnEvent = func(e router.Event) {
				ev.add(e)
				if e.Kind == router.Served {
					panic("listener bug")
				}
			}
		})
		for i := range 5 {
			a, err := l.r.Predict(context.Background(), l.in(i))
			if err != nil || a.Tier != "primary" {
				t.Fatalf("got %+v, %v; want the primary's answer", a, err)
			}
		}
		hooks := strings.Join(ev.hookPanics(), ",")
		if !strings.Contains(hooks, "Key") || !strings.Contains(hooks, "OnEvent") {
			t.Errorf("reported hook panics %q, want Key and OnEvent", hooks)
		}
	})

	t.Run("a panicking Check is not blamed on the tiers", func(t *testing.T) {
		var ev events
		l := newLadder(t, "primary.onnx", func(c *router.Config) {
			c.Check = func([]tensor.Tensor) error { panic("check bug") }
			c.OnEvent = ev.add
		})
		for i := range 40 {
			if a := l.predict(t, i); a.Tier != "primary" || a.Fell != nil {
				t.Fatalf("request %d: served by %s after %v; want the primary", i, a.Tier, a.Fell)
			}
		}
		if h := l.r.Health()["primary"]; h.State != policy.Closed {
			t.Errorf("primary breaker %v, want closed", h)
		}
		if len(ev.hookPanics()) == 0 {
			t.Error("Check's panics were not reported")
		}
	})

	t.Run("a panicking store falls to the heuristic", func(t *testing.T) {
		var ev events
		l := newLadder(t, "primary.onnx", func(c *router.Config) {
			c.Cache = panicStore{}
			c.OnEvent = ev.add
		})
		l.predict(t, 0) // the Put panics
		l.primary.Set(chaos.Fault{ErrorRate: 1})
		l.backup.Set(chaos.Fault{ErrorRate: 1})
		a := l.predict(t, 0) // the Get panics
		if a.Tier != router.RungHeuristic || !errors.Is(a.Fell[2].Err, router.ErrPanic) {
			t.Fatalf("got %+v; want the heuristic after the cache's panic", a)
		}
		hooks := strings.Join(ev.hookPanics(), ",")
		if !strings.Contains(hooks, "Cache.Put") {
			t.Errorf("reported hook panics %q, want Cache.Put", hooks)
		}
	})
}

type panicHandler struct{}

func (panicHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (panicHandler) Handle(context.Context, slog.Record) error { panic("handler bug") }
func (h panicHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h panicHandler) WithGroup(string) slog.Handler           { return h }

type panicStore struct{}

func (panicStore) Get(context.Context, string) (cache.Entry, bool, error) { panic("store bug") }
func (panicStore) Put(context.Context, string, cache.Entry) error         { panic("store bug") }

func TestCallersDoNotResetAHalfOpenBreaker(t *testing.T) {
	testenv.RequireRuntime(t, haveRuntime)
	// Given a primary that hangs until ctx is done on marked rows,
	var ev events
	l := newLadder(t, "primary.onnx", func(c *router.Config) {
		inner := c.Tiers[0].Model
		c.Tiers[0].Model = router.ModelFunc(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			if in[0].Data.([]float32)[29] == -1 {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return inner.Predict(ctx, in)
		})
		c.OnEvent = ev.add
	})
	marked := append([]float32(nil), l.rows[0]...)
	marked[29] = -1
	// and whose breaker opened during an outage that has ended,
	l.primary.Set(chaos.Fault{ErrorRate: 1})
	openBreakers(t, l, "primary")
	l.primary.Set(chaos.Fault{})
	healed := len(ev.of(router.BreakerChanged))
	time.Sleep(fast.OpenFor + 20*time.Millisecond)

	// when every third request is cancelled by its caller during a probe,
	for i := range 9 {
		if i%3 == 2 {
			ctx, cancel := context.WithCancel(context.Background())
			stop := time.AfterFunc(5*time.Millisecond, cancel)
			_, err := l.r.Predict(ctx, []tensor.Tensor{tensor.New("features", []int64{1, 30}, marked)})
			stop.Stop()
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled request: %v", err)
			}
			continue
		}
		l.predict(t, i)
	}
	// then the probes' progress is kept: the breaker closes after three
	// successful probes, and never reopened.
	if h := l.r.Health()["primary"]; h.State != policy.Closed {
		t.Fatalf("primary breaker %v after 6 good probes, want closed", h)
	}
	for _, e := range ev.of(router.BreakerChanged)[healed:] {
		if e.Breaker.To == policy.Open {
			t.Errorf("the breaker reopened after healing: %+v", e.Breaker)
		}
	}
}

// store is a custom LastGood: a map anyone can fill, which copies
// entries in and out.
type store struct {
	mu sync.Mutex
	m  map[string]cache.Entry
}

func (s *store) Get(_ context.Context, k string) (cache.Entry, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[k]
	e.Outputs = tensor.CloneAll(e.Outputs)
	return e, ok, nil
}

func (s *store) Put(_ context.Context, k string, e cache.Entry) error {
	e.Outputs = tensor.CloneAll(e.Outputs)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = e
	return nil
}

func TestEveryRungIsValidated(t *testing.T) {
	testenv.RequireRuntime(t, haveRuntime)
	def := probability(0.5)
	inRange := func(out []tensor.Tensor) error {
		if p := out[0].Data.([]float32)[0]; p < 0 || p > 1 {
			return errors.New("probability out of range")
		}
		return nil
	}

	t.Run("cached answers", func(t *testing.T) {
		for name, held := range map[string][]tensor.Tensor{
			"NaN":           probability(float32(nanValue())),
			"refused":       probability(1.5),
			"wrong dtype":   {tensor.New("probability", []int64{1, 1}, []float64{0.2})},
			"no outputs":    nil,
			"wrong name":    {tensor.New("score", []int64{1, 1}, []float32{0.2})},
			"wrong shape":   {tensor.New("probability", []int64{1, 2}, []float32{0.2, 0.3})},
			"short of data": {tensor.New("probability", []int64{2, 1}, []float32{0.2})},
		} {
			// Given a store shared with another router, holding an answer
			// this router would never serve,
			s := &store{m: map[string]cache.Entry{}}
			l := newLadder(t, "primary.onnx", func(c *router.Config) {
				c.Cache, c.Check = s, inRange
			})
			s.Put(context.Background(), cache.Key(l.in(0)), cache.Entry{Outputs: held, Tier: "primary", Stored: time.Now()})
			// when the models are down,
			l.primary.Set(chaos.Fault{ErrorRate: 1})
			l.backup.Set(chaos.Fault{ErrorRate: 1})
			a := l.predict(t, 0)
			// then the cached answer is refused and the heuristic serves.
			if a.Tier != router.RungHeuristic || !errors.Is(a.Fell[2].Err, router.ErrInvalidOutput) {
				t.Errorf("%s: got %+v; want the heuristic after the cache's answer was refused", name, a)
			}
		}
	})

	t.Run("heuristic answers", func(t *testing.T) {
		for name, out := range map[string][]tensor.Tensor{
			"wrong dtype": {tensor.New("probability", []int64{1, 1}, []float64{0.2})},
			"wrong shape": {tensor.New("probability", []int64{1, 2}, []float32{0.2, 0.3})},
			"wrong name":  {tensor.New("score", []int64{1, 1}, []float32{0.2})},
			"no outputs":  {},
			"nil":         nil,
			"refused":     probability(-3),
		} {
			l := newLadder(t, "primary.onnx", func(c *router.Config) {
				c.Heuristic = func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return out, nil }
				c.Default, c.Check = def, inRange
			})
			l.primary.Set(chaos.Fault{ErrorRate: 1})
			l.backup.Set(chaos.Fault{ErrorRate: 1})
			a := l.predict(t, 3)
			if a.Tier != router.RungDefault || !errors.Is(a.Fell[3].Err, router.ErrInvalidOutput) {
				t.Errorf("%s: got %+v; want the default after the heuristic's answer was refused", name, a)
			}
		}
	})

	t.Run("a default that would never be served", func(t *testing.T) {
		for name, bad := range map[string][]tensor.Tensor{
			"wrong dtype": {tensor.New("probability", []int64{1, 1}, []float64{0.2})},
			"no outputs":  {},
			"refused":     probability(7),
			"NaN":         probability(float32(nanValue())),
		} {
			_, err := router.New(router.Config{
				Tiers:   []router.Tier{{Name: "primary", Model: load(t, "primary.onnx")}},
				Default: bad,
				Check:   inRange,
			})
			if !errors.Is(err, router.ErrInvalidConfig) {
				t.Errorf("%s: New err = %v, want ErrInvalidConfig", name, err)
			}
		}
	})
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func TestAFallKeepsTheAttemptsError(t *testing.T) {
	testenv.RequireRuntime(t, haveRuntime)
	// Given a primary whose breaker opens on its first failure,
	l := newLadder(t, "primary.onnx", func(c *router.Config) {
		c.Tiers[0].Policy.Executions = 2
		c.Tiers[0].Policy.FailureRate = 0.5
	})
	l.primary.Set(chaos.Fault{ErrorRate: 1})
	// when an attempt fails and the retry is refused by the breaker,
	a := l.predict(t, 0)
	// then the fall says both why the attempt failed and why it stopped.
	if err := a.Fell[0].Err; !errors.Is(err, chaos.ErrInjected) || !errors.Is(err, policy.ErrOpen) {
		t.Fatalf("primary fell with %v; want the injected failure and the open breaker", err)
	}
}

func TestAModelThatIgnoresCtxIsLeftAtTheTimeout(t *testing.T) {
	testenv.RequireRuntime(t, haveRuntime)
	// Given a primary that ignores ctx and hangs until the test ends,
	release := make(chan struct{})
	var started atomic.Int32
	l := newLadder(t, "primary.onnx", func(c *router.Config) {
		inner := c.Tiers[0].Model
		c.Tiers[0].Model = router.ModelFunc(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			select {
			case <-release:
				return inner.Predict(ctx, in)
			default:
			}
			started.Add(1)
			<-release
			return nil, errors.New("too late")
		})
		c.Tiers[0].Policy.MaxConcurrent = 2
		c.Tiers[0].Policy.Timeout = 20 * time.Millisecond
	})
	t.Cleanup(func() { close(release) }) // runs before newLadder's cleanup

	// when requests arrive,
	for i := range 4 {
		start := time.Now()
		a := l.predict(t, i)
		took := time.Since(start)
		// then each is answered by the backup within the timeout and a
		// generous margin,
		if a.Tier != "backup" || took > 500*time.Millisecond {
			t.Fatalf("request %d: served by %s after %v; want the backup soon after 20ms", i, a.Tier, took)
		}
		if i < 2 && !errors.Is(a.Fell[0].Err, policy.ErrTimeout) {
			t.Errorf("request %d: primary fell with %v, want a timeout", i, a.Fell[0].Err)
		}
		// and once two calls are left running, the tier is skipped.
		if i >= 2 && !errors.Is(a.Fell[0].Err, router.ErrAbandoned) {
			t.Errorf("request %d: primary fell with %v, want it skipped", i, a.Fell[0].Err)
		}
	}
	if n := started.Load(); n != 2 {
		t.Errorf("%d calls started, want 2: the abandoned calls are bounded", n)
	}
	if h := l.r.Health()["primary"]; h.Abandoned != 2 {
		t.Errorf("health %v, want 2 abandoned calls", h)
	}
}

func TestShortDeadlinesAreBudgeted(t *testing.T) {
	testenv.RequireRuntime(t, haveRuntime)
	// Given a hanging primary with a 100ms timeout,
	l := newLadder(t, "primary.onnx", func(c *router.Config) {
		c.Tiers[0].Policy.Timeout = 100 * time.Millisecond
	})
	l.primary.Set(chaos.Fault{HangRate: 1})
	// when 40 callers each allow 50ms,
	answered := 0
	for i := range 40 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		a, err := l.r.Predict(ctx, l.in(i))
		cancel()
		if err != nil {
			// A loaded machine may fire a timer late; the reserve of 10ms
			// covers the backup's 5µs run with a wide margin, not a stall.
			continue
		}
		answered++
		// then they are answered below the primary, and a shortened
		// attempt is the primary's timeout, not the caller's.
		if a.Tier == "primary" {
			t.Fatalf("request %d served by the hanging primary", i)
		}
		if f := a.Fell[0]; !errors.Is(f.Err, policy.ErrTimeout) && !errors.Is(f.Err, policy.ErrOpen) {
			t.Fatalf("request %d: primary fell with %v, want its timeout", i, f.Err)
		}
	}
	if answered < 30 {
		t.Errorf("%d of 40 requests answered in time, want nearly all", answered)
	}
	// and the breaker stops paying for the hang.
	if h := l.r.Health()["primary"]; h.State == policy.Closed {
		t.Errorf("primary breaker %v after 40 hangs, want it open", h)
	}
}

func TestAPoisonInputDoesNotDegradeEveryone(t *testing.T) {
	testenv.RequireRuntime(t, haveRuntime)
	l := newLadder(t, "nan.onnx")
	poison := make([]float32, 30)
	poison[0] = 20 // nan.onnx answers NaN when mean radius > 15
	in := []tensor.Tensor{tensor.New("features", []int64{1, 30}, poison)}

	// Given one client sending the same poison input 15 times,
	for range 15 {
		if a, err := l.r.Predict(context.Background(), in); err != nil || a.Tier != "backup" {
			t.Fatalf("poison: got %+v, %v; want the backup", a, err)
		}
	}
	// when other clients send healthy inputs,
	healthy := 0
	for i := 0; healthy < 11; i++ {
		if l.rows[i][0] > 15 {
			continue
		}
		healthy++
		// then the primary serves them: the repeats counted once.
		if a := l.predict(t, i); a.Tier != "primary" {
			t.Fatalf("healthy row %d served by %s after %v; want the primary", i, a.Tier, a.Fell)
		}
	}

	// But distinct failing inputs each count: a tier broken for many
	// inputs still opens its breaker.
	for i := range 40 {
		row := append([]float32(nil), poison...)
		row[1] = float32(i)
		l.r.Predict(context.Background(), []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)})
	}
	if h := l.r.Health()["primary"]; h.State != policy.Open {
		t.Errorf("primary breaker %v after 40 distinct poison inputs, want open", h)
	}
}

func TestHealthReportsAHealedTierTruthfully(t *testing.T) {
	testenv.RequireRuntime(t, haveRuntime)
	// Given a primary whose breaker opened,
	l := newLadder(t, "primary.onnx")
	l.primary.Set(chaos.Fault{ErrorRate: 1})
	openBreakers(t, l, "primary")
	h := l.r.Health()["primary"]
	if h.RetryAfter.IsZero() || h.Since.IsZero() || !strings.Contains(h.String(), "open since") || !strings.Contains(h.String(), "retry after") {
		t.Fatalf("open health %q, want since when and when it retries", h)
	}
	// when OpenFor passes with no traffic,
	l.primary.Set(chaos.Fault{})
	time.Sleep(fast.OpenFor + 20*time.Millisecond)
	// then Health says the tier is ready to probe, not open.
	if h := l.r.Health()["primary"]; h.State != policy.HalfOpen {
		t.Fatalf("health %v after OpenFor, want half-open", h)
	}
}

func TestWrappersKeepTheModelsCapabilities(t *testing.T) {
	testenv.RequireRuntime(t, haveRuntime)
	var (
		_ router.TimeoutPredictor  = (*chaos.Faulty)(nil)
		_ router.Versioner         = (*chaos.Faulty)(nil)
		_ router.SignatureReporter = (*chaos.Faulty)(nil)
		_ router.Warmer            = (*chaos.Faulty)(nil)
		_ io.Closer                = (*chaos.Faulty)(nil)
	)
	// Given an ONNX model wrapped in a fault injector,
	l := newLadder(t, "primary.onnx", func(c *router.Config) {
		c.Heuristic = func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("score", []int64{1, 1}, []float32{0.5})}, nil
		}
	})
	if err := l.r.Warmup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sig, ok := router.SignatureOf(l.primary); !ok || sig.Inputs[0].Name != "features" {
		t.Fatalf("SignatureOf(wrapped) = %+v, %v", sig, ok)
	}
	// then its answers carry the model's version,
	if a := l.predict(t, 0); a.Version != "1" {
		t.Errorf("answer version %q, want the model's 1", a.Version)
	}
	// outputs are still validated against its signature,
	l.primary.Set(chaos.Fault{ErrorRate: 1})
	l.backup.Set(chaos.Fault{ErrorRate: 1})
	if _, err := l.r.Predict(context.Background(), l.in(7)); !errors.Is(err, router.ErrNoAnswer) || !errors.Is(err, router.ErrInvalidOutput) {
		t.Errorf("err = %v; want the heuristic's misnamed output refused", err)
	}
	// and a hang is cut by the model's own timeout, on the request's
	// goroutine: no call is left running behind.
	l.primary.Set(chaos.Fault{HangRate: 1})
	l.backup.Set(chaos.Fault{})
	for i := range 3 {
		a := l.predict(t, 20+i)
		if a.Tier != "backup" || l.r.Health()["primary"].Abandoned != 0 {
			t.Fatalf("got %+v, health %v; want the backup and nothing abandoned", a, l.r.Health()["primary"])
		}
	}
}

func TestConfigHasOneMeaningPerValue(t *testing.T) {
	tier := router.Tier{Name: "m", Model: router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return probability(0.5), nil
	})}
	for name, cfg := range map[string]router.Config{
		"Reserve of 1":     {Tiers: []router.Tier{tier}, Reserve: 1},
		"negative timeout": {Tiers: []router.Tier{tier}, StoreTimeout: -time.Second},
	} {
		if _, err := router.New(cfg); !errors.Is(err, router.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
	if got := policy.HalfOpen.String(); got != "half-open" {
		t.Errorf("HalfOpen.String() = %q", got)
	}
	var buf bytes.Buffer
	r, err := router.New(router.Config{Tiers: []router.Tier{tier}, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if h := r.Health()["m"]; h.State != policy.Closed {
		t.Errorf("new tier health %v, want closed", h)
	}
}

// Half-precision outputs get the same NaN check as float32 ones.
func TestHalfPrecisionNaNIsNeverServed(t *testing.T) {
	for name, bad := range map[string]tensor.Tensor{
		"float16":  tensor.New("score", []int64{2}, []tensor.F16{tensor.NewF16(0.5), tensor.NewF16(float32(nanValue()))}),
		"bfloat16": tensor.New("score", []int64{2}, []tensor.BF16{tensor.NewBF16(float32(nanValue())), tensor.NewBF16(0.5)}),
	} {
		t.Run(name, func(t *testing.T) {
			// Given a tier whose half-precision output holds a NaN,
			r, err := router.New(router.Config{
				Tiers: []router.Tier{{Name: "primary", Model: router.ModelFunc(
					func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
						return []tensor.Tensor{bad}, nil
					})}},
				Default: []tensor.Tensor{tensor.New("score", []int64{2}, []tensor.F16{0, 0})},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// when a request comes,
			a, err := r.Predict(context.Background(), []tensor.Tensor{tensor.New("x", []int64{1}, []float32{1})})
			// then the NaN is refused and the default serves.
			if err != nil || a.Tier != router.RungDefault || !errors.Is(a.Fell[0].Err, router.ErrInvalidOutput) {
				t.Fatalf("got %+v, %v; want the default after the NaN was refused", a, err)
			}
		})
	}
}
