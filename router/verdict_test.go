package router_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// contract is the one-input, one-output contract of these tests.
var contract = struct{ in, out []tensor.Info }{
	in:  []tensor.Info{{Name: "x", DType: tensor.Float32, Shape: []int64{1, 1}}},
	out: []tensor.Info{{Name: "p", DType: tensor.Float32, Shape: []int64{1, 1}}},
}

func row(v float32) []tensor.Tensor {
	return []tensor.Tensor{tensor.New("x", []int64{1, 1}, []float32{v})}
}

func answerOf(p float32) []tensor.Tensor {
	return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{p})}
}

func TestEveryFallCarriesTheVerdictDecidedWhereTheRungFell(t *testing.T) {
	testenv.NoLeaks(t)
	refuse := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, &tensor.InputError{Input: "x", Problem: "this model takes no ones"}
	})
	nan := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return answerOf(float32NaN()), nil })
	var mu sync.Mutex
	var done []policy.Done
	r, err := router.New(router.Config{
		Tiers: []router.Tier{
			{Name: "primary", Model: refuse, Policy: policy.Config{MaxAttempts: 1}},
			{Name: "backup", Model: nan, Policy: policy.Config{MaxAttempts: 1}},
		},
		Inputs: contract.in, Outputs: contract.out,
		Heuristic: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return answerOf(0.5), nil },
		OnDone: func(d policy.Done) {
			mu.Lock()
			done = append(done, d)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Given a primary that refuses an input that fits the contract and a
	// backup that answers NaN, when a request falls to the heuristic,
	a, err := r.Predict(context.Background(), row(1))
	if err != nil || a.Tier != router.RungHeuristic {
		t.Fatalf("got %+v, %v; want the heuristic", a, err)
	}
	// then each fall carries its verdict: the refusal is the primary's
	// failure, not the caller's invalid input, the NaN an invalid output,
	// and the cache a miss.
	want := map[string]policy.Outcome{"primary": policy.Refused, "backup": policy.InvalidOutput, router.RungCache: router.NotCached}
	for _, f := range a.Fell {
		if f.Outcome != want[f.Tier] {
			t.Errorf("%s fell with %q (%v), want %q", f.Tier, f.Outcome, f.Err, want[f.Tier])
		}
	}
	if len(a.Fell) != 3 {
		t.Fatalf("falls %v, want three", a.Fell)
	}
	// The refusal counted against the primary's breaker, as its verdict
	// says.
	if h := r.Health()["primary"]; h.Failed != 1 {
		t.Errorf("primary health %v: %d failed, want 1", h, h.Failed)
	}
	// And every attempt reported that same verdict through OnDone, with
	// its tier, version and whether the breaker counted it.
	mu.Lock()
	defer mu.Unlock()
	if len(done) != 2 || done[0].Member != "primary" || done[0].Outcome != policy.Refused || !done[0].Counted ||
		done[1].Member != "backup" || done[1].Outcome != policy.InvalidOutput || done[0].Attempt != 1 || done[0].Latency < 0 {
		t.Fatalf("OnDone saw %+v; want the primary's refusal and the backup's invalid output, both counted", done)
	}
}

func float32NaN() float32 {
	var zero float32
	return zero / zero
}

func TestAPanickingOnDoneIsReportedAndChangesNothing(t *testing.T) {
	testenv.NoLeaks(t)
	var ev testenv.Events
	ok := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return answerOf(0.9), nil })
	r, err := router.New(router.Config{
		Tiers:   []router.Tier{{Name: "primary", Model: ok}},
		OnDone:  func(policy.Done) { panic("listener bug") },
		OnEvent: ev.Add,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if a, err := r.Predict(context.Background(), row(1)); err != nil || a.Tier != "primary" {
		t.Fatalf("got %+v, %v; want the primary", a, err)
	}
	if got := ev.HookPanics(); len(got) != 1 || got[0] != "OnDone" {
		t.Fatalf("hook panics %v, want OnDone's", got)
	}
}

func TestTheBreakerRunsOnTheRoutersClock(t *testing.T) {
	testenv.NoLeaks(t)
	clk := clock.NewFake(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	var down bool
	var mu sync.Mutex
	flaky := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return nil, errors.New("down")
		}
		return answerOf(0.9), nil
	})
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: flaky,
			Policy: policy.Config{MaxAttempts: 1, Executions: 2, FailureRate: 0.5, OpenFor: time.Minute, Trials: 1}}},
		Heuristic: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return answerOf(0.5), nil },
		Clock:     clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Given a primary whose failures opened its breaker for a minute,
	mu.Lock()
	down = true
	mu.Unlock()
	for range 2 {
		r.Predict(context.Background(), row(1))
	}
	h := r.Health()["primary"]
	if h.State != policy.Open || !h.RetryAfter.Equal(clk.Now().Add(time.Minute)) || h.Condition != router.BreakerOpen {
		t.Fatalf("health %v; want open until a minute from now on the router's clock", h)
	}
	// when it heals, the breaker stays open while the clock stands still,
	mu.Lock()
	down = false
	mu.Unlock()
	if a, _ := r.Predict(context.Background(), row(1)); a.Tier == "primary" || a.Fell[0].Outcome != policy.BreakerOpen {
		t.Fatalf("got %+v before OpenFor passed; want the primary skipped as breaker_open", a)
	}
	// and once the clock passes OpenFor, the next request probes it and
	// it serves again, with no real time spent.
	clk.Advance(time.Minute)
	if s := r.Status()[0]; s.State != "half-open" || !s.Since.Equal(clk.Now()) {
		t.Fatalf("status %+v; want half-open since now", s)
	}
	if a, err := r.Predict(context.Background(), row(1)); err != nil || a.Tier != "primary" {
		t.Fatalf("got %+v, %v; want the healed primary", a, err)
	}
	if s := r.Health()["primary"].State; s != policy.Closed {
		t.Fatalf("breaker %v after a good probe, want closed", s)
	}
}

// vote is a custom rung of a kind of its own that reports its own state.
type vote struct {
	mu    sync.Mutex
	state router.RungStatus
}

func (v *vote) Name() string      { return "vote" }
func (v *vote) Kind() router.Kind { return "ensemble" }
func (v *vote) Serve(context.Context, router.Request) (router.Answer, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.state.CanServe {
		return router.Answer{}, errors.New("no quorum")
	}
	return router.Answer{Outputs: answerOf(0.7)}, nil
}
func (v *vote) Status() router.RungStatus {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.state
}

func TestStatusReportsEachRungsOwnKindStateAndLastVerdict(t *testing.T) {
	testenv.NoLeaks(t)
	failing := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("down")
	})
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v := &vote{state: router.RungStatus{State: "no-quorum", Since: since}}
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: failing, Required: true, Policy: policy.Config{MaxAttempts: 1}}},
		Rungs: []router.Rung{v},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Given a custom rung of kind "ensemble" that says it cannot serve,
	st := r.Status()
	if len(st) != 3 || st[1].Name != "vote" || st[1].Kind != "ensemble" || st[1].State != "no-quorum" || st[1].CanServe || !st[1].Since.Equal(since) {
		t.Fatalf("status %+v; want the vote rung with its own kind and state", st)
	}
	if st[0].Kind != router.KindModel || !st[0].Required || st[0].State != "closed" || !st[0].CanServe || st[0].Outcome != "" {
		t.Fatalf("primary %+v; want a required model tier, closed, with no verdict yet", st[0])
	}
	if st[2].Name != router.RungCache || st[2].State != "on-hit" || st[2].CanServe {
		t.Fatalf("cache %+v; want on-hit, not counted", st[2])
	}
	// when a request falls through every rung,
	if _, err := r.Predict(context.Background(), row(1)); !errors.Is(err, router.ErrNoAnswer) {
		t.Fatalf("err %v, want no answer", err)
	}
	// then each rung's last verdict says why,
	st = r.Status()
	for i, want := range []policy.Outcome{policy.Failed, policy.Failed, router.NotCached} {
		if st[i].Outcome != want || st[i].Err == nil || st[i].At.IsZero() {
			t.Errorf("%s: verdict %q (%v at %v), want %q", st[i].Name, st[i].Outcome, st[i].Err, st[i].At, want)
		}
	}
	// the ladder is ready by the primary, and Readiness names the custom
	// rung when it is required.
	if ready, why := router.Readiness(st); !ready || why != "" || !r.Ready() {
		t.Fatalf("Readiness = %v, %q; want ready by the primary", ready, why)
	}
	if ready, why := router.Readiness(st, "vote"); ready || why != "required rung vote cannot serve: no-quorum" {
		t.Fatalf("Readiness(vote) = %v, %q; want not ready, naming the vote's state", ready, why)
	}
	if ready, why := router.Readiness(st, "gpu"); ready || why != "required rung gpu is not in the ladder" {
		t.Fatalf("Readiness(gpu) = %v, %q", ready, why)
	}
	// When the vote regains its quorum, it serves and reads served.
	v.mu.Lock()
	v.state = router.RungStatus{State: "quorum", CanServe: true}
	v.mu.Unlock()
	if a, err := r.Predict(context.Background(), row(1)); err != nil || a.Tier != "vote" || a.Kind != "ensemble" {
		t.Fatalf("got %+v, %v; want the vote", a, err)
	}
	if s := r.Status()[1]; s.Outcome != policy.Served || !s.CanServe || s.State != "quorum" {
		t.Fatalf("vote %+v; want served, quorum", s)
	}
	// After Close nothing is ready.
	r.Close()
	if ready, why := router.Readiness(r.Status()); ready || why != "the router is closed" || r.Ready() {
		t.Fatalf("after Close: Readiness = %v, %q", ready, why)
	}
}

func TestARequiredTierThatCannotServeMakesTheRouterUnready(t *testing.T) {
	testenv.NoLeaks(t)
	failing := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return nil, errors.New("down") })
	r, err := router.New(router.Config{
		Tiers:     []router.Tier{{Name: "primary", Model: failing, Required: true, Policy: policy.Config{MaxAttempts: 1, Executions: 1}}},
		Heuristic: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return answerOf(0.5), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Predict(context.Background(), row(1)) // opens the breaker
	if ready, why := router.Readiness(r.Status()); ready || why != "required tier primary cannot serve: open" || r.Ready() {
		t.Fatalf("Readiness = %v, %q; want unready by the required primary", ready, why)
	}
}

type streamKey struct{}

func TestACallValueReachesARung(t *testing.T) {
	testenv.NoLeaks(t)
	var got []any
	var mu sync.Mutex
	rung := rungFunc{name: "stream", serve: func(_ context.Context, req router.Request) (router.Answer, error) {
		mu.Lock()
		got = append(got, req.Value(streamKey{}))
		mu.Unlock()
		return router.Answer{Outputs: answerOf(0.1)}, nil
	}}
	r, err := router.New(router.Config{Rungs: []router.Rung{rung}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Predict(context.Background(), row(1), router.CallValue(streamKey{}, "a"), router.CallValue(streamKey{}, "b"))
	r.Predict(context.Background(), row(1))
	if len(got) != 2 || got[0] != "b" || got[1] != nil {
		t.Fatalf("values %v, want the last one attached, then none", got)
	}
	// A key that cannot be compared is refused, not a panic in a rung.
	for _, key := range []any{nil, []int{1}} {
		if _, err := r.Predict(context.Background(), row(1), router.CallValue(key, "x")); err == nil || !strings.Contains(err.Error(), "not comparable") {
			t.Fatalf("CallValue(%v): err %v, want one saying the key is not comparable", key, err)
		}
	}
}

// rungFunc is a custom rung made of a function.
type rungFunc struct {
	name  string
	serve func(context.Context, router.Request) (router.Answer, error)
}

func (f rungFunc) Name() string      { return f.name }
func (f rungFunc) Kind() router.Kind { return "func" }
func (f rungFunc) Serve(ctx context.Context, req router.Request) (router.Answer, error) {
	return f.serve(ctx, req)
}

func TestMaxStalenessMeansTheSameOnConfigAndOnACall(t *testing.T) {
	testenv.NoLeaks(t)
	for name, tc := range map[string]struct {
		config, call time.Duration
		callSet      bool
		cached       bool
	}{
		"zero on both is any age":       {config: 0, cached: true},
		"negative on Config is none":    {config: -1, cached: false},
		"zero on a call is any age":     {config: -1, call: 0, callSet: true, cached: true},
		"negative on a call is none":    {config: 0, call: -1, callSet: true, cached: false},
		"a bound older than the answer": {config: 0, call: time.Nanosecond, callSet: true, cached: false},
	} {
		t.Run(name, func(t *testing.T) {
			clk := clock.NewFake(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
			var mu sync.Mutex
			up := true
			primary := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
				mu.Lock()
				defer mu.Unlock()
				if !up {
					return nil, errors.New("down")
				}
				return answerOf(0.9), nil
			})
			store, err := cache.New(cache.Config{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			r, err := router.New(router.Config{
				Tiers:        []router.Tier{{Name: "primary", Model: primary, Policy: policy.Config{MaxAttempts: 1}}},
				MaxStaleness: tc.config,
				Clock:        clk,
				Cache:        store,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := r.Predict(context.Background(), row(1)); err != nil {
				t.Fatal(err)
			}
			if err := store.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Second)
			mu.Lock()
			up = false
			mu.Unlock()
			var opts []router.CallOption
			if tc.callSet {
				opts = append(opts, router.MaxStaleness(tc.call))
			}
			a, err := r.Predict(context.Background(), row(1), opts...)
			if cached := err == nil && a.Tier == router.RungCache; cached != tc.cached {
				t.Fatalf("got %+v, %v; want cached %v", a, err, tc.cached)
			}
		})
	}
}
