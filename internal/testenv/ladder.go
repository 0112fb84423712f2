package testenv

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/internal/dataset"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/probe"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// Fast is the policy of a [Ladder]'s tiers, which keeps scenarios short:
// a 50ms attempt timeout, and a breaker that lets probes through 50ms
// after it opens (on the ladder's clock).
var Fast = policy.Config{Timeout: 50 * time.Millisecond, OpenFor: 50 * time.Millisecond}

// Ladder is the ladder the router, reload and probe tests drive: a
// primary and a backup model, each wrapped in a fault injector, the
// last-good cache and a heuristic on the mean radius, on a [clock.Fake]
// that the test advances instead of sleeping.
type Ladder struct {
	R       *router.Router
	Primary *chaos.Faulty
	Backup  *chaos.Faulty
	Rows    [][]float32 // the held-out rows, for [Ladder.In]
	// Clock is the router's clock: breakers, poison windows, probes,
	// reloads and rollback windows move only when the test advances it.
	// Attempt timeouts, and the fault injectors, are on real time.
	Clock *clock.Fake
	// CannotServe marks a primary that cannot answer in time even when
	// healthy, so the after-scenario check does not apply.
	CannotServe bool
}

// NewLadder builds primary → backup → cache → heuristic, with [Fast]
// policies and the router on a fake clock that reads the wall time at
// start, then applies opts to the config. primary and backup (such as
// loaded ONNX models) are wrapped in fault injectors; load them before
// the ladder, so that they are closed after its cleanup. That cleanup
// clears the faults, checks that a healthy request is served by the
// primary again (advancing the clock past open breakers and poison
// windows), and closes the router.
func NewLadder(t *testing.T, primary, backup router.Model, opts ...func(*router.Config)) *Ladder {
	t.Helper()
	l := &Ladder{
		Primary: chaos.Wrap(primary, chaos.Fault{}, chaos.WithSeed(1)),
		Backup:  chaos.Wrap(backup, chaos.Fault{}, chaos.WithSeed(2)),
		Rows:    Heldout(t),
		Clock:   clock.NewFake(time.Now()),
	}
	cfg := router.Config{
		Tiers: []router.Tier{
			{Name: "primary", Model: l.Primary, Policy: Fast},
			{Name: "backup", Model: l.Backup, Policy: Fast},
		},
		Heuristic: MeanRadius,
		Clock:     l.Clock,
	}
	for _, o := range opts {
		o(&cfg)
	}
	var err error
	if l.R, err = router.New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Primary.Set(chaos.Fault{})
		l.Backup.Set(chaos.Fault{})
		served := l.CannotServe || within(10*time.Second, func() bool {
			a, err := l.R.Predict(context.Background(), l.In(0))
			if err == nil && a.Tier == "primary" && !a.Degraded {
				return true
			}
			l.Clock.Advance(time.Second) // past any OpenFor and poison window
			return false
		})
		if !served {
			t.Errorf("after the scenario the primary did not serve again: %v", l.R.Health()["primary"])
		}
		if err := l.R.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// MeanRadius is the heuristic of a [Ladder]: the base rate, as most
// tumours in the data are benign, or 0.1 for a large mean radius.
func MeanRadius(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	f := in[0].Data.([]float32)
	p := float32(0.9)
	if f[0] > 15 {
		p = 0.1
	}
	return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{p})}, nil
}

// In returns held-out row i (modulo their number) as a request.
func (l *Ladder) In(i int) []tensor.Tensor {
	return []tensor.Tensor{tensor.New("features", []int64{1, 30}, l.Rows[i%len(l.Rows)])}
}

// Predict asks for row i, failing t on an error.
func (l *Ladder) Predict(t testing.TB, i int, opts ...router.CallOption) router.Answer {
	t.Helper()
	a, err := l.R.Predict(context.Background(), l.In(i), opts...)
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	return a
}

// OpenBreakers sends requests until the breaker of every named tier is
// open, failing t after 100.
func (l *Ladder) OpenBreakers(t testing.TB, tiers ...string) {
	t.Helper()
	for i := 0; ; i++ {
		open := 0
		for _, name := range tiers {
			if l.R.Health()[name].State == policy.Open {
				open++
			}
		}
		if open == len(tiers) {
			return
		}
		if i == 100 {
			t.Fatalf("breakers %v not open after 100 requests", l.R.Health())
		}
		l.Predict(t, i)
	}
}

// Heldout returns the rows of testdata/heldout.csv.
func Heldout(t testing.TB) [][]float32 {
	t.Helper()
	set, err := dataset.Load(Testdata("heldout.csv"))
	if err != nil {
		t.Fatal(err)
	}
	return set.Rows
}

// Canaries are the first held-out row and the first with a large mean
// radius, each accepting any valid answer.
func Canaries(t testing.TB) []probe.Canary {
	t.Helper()
	rows := Heldout(t)
	large := slices.IndexFunc(rows, func(r []float32) bool { return r[0] > 15 })
	in := func(r []float32) []tensor.Tensor { return []tensor.Tensor{tensor.New("features", []int64{1, 30}, r)} }
	return []probe.Canary{{Inputs: in(rows[0])}, {Inputs: in(rows[large])}}
}

// Events records a router's events for a test; its Add is a
// router.Config.OnEvent. It is safe for concurrent use.
type Events struct {
	mu  sync.Mutex
	all []router.Event
}

// Add records ev.
func (e *Events) Add(ev router.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

// Of returns the events of kind, in order.
func (e *Events) Of(kind router.EventKind) []router.Event {
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

// HookPanics returns the hooks whose panics were reported.
func (e *Events) HookPanics() []string {
	var hooks []string
	for _, ev := range e.Of(router.HookPanicked) {
		var pe *router.PanicError
		if errors.As(ev.Err, &pe) {
			hooks = append(hooks, pe.Hook)
		}
	}
	return hooks
}

// Eventually polls cond every 5ms for up to 10s of real time, and fails t
// naming what when cond is still false.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !within(10*time.Second, cond) {
		t.Fatalf("timed out waiting until %s", what)
	}
}

// within polls cond every 5ms until it is true or d has passed, and
// reports whether it was.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// Advance waits until at least n timers are armed on f, so that the
// goroutines the test is about to wake have armed theirs, then advances f
// by d. It fails t when they are not armed within 10s.
func Advance(t testing.TB, f *clock.Fake, n int, d time.Duration) {
	t.Helper()
	if !f.WaitTimers(n, 10*time.Second) {
		t.Fatalf("%d timers armed on the fake clock, want %d", f.Timers(), n)
	}
	f.Advance(d)
}

// NoLeaks checks, after t's cleanups (a router's Close among them), that
// every goroutine t started has stopped. Call it first, so that its check
// runs last.
func NoLeaks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}
