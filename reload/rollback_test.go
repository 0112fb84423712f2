package reload_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/probe"
	"github.com/ladder-ml/ladder/reload"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// A rollback watch arms two timers on the router's clock: its next look
// at the version's failures, every Window/50, and the window's end.
const watchTimers = 2

// picky is primary.onnx that answers its canaries and fails every other
// input: a version that passes its checks and fails under traffic.
type picky struct {
	m        *models.Model
	canaries []probe.Canary
	closed   atomic.Bool
}

func (p *picky) Predict(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	f, _ := tensor.Data[float32](in[0])
	for _, c := range p.canaries {
		if slices.Equal(f, c.Inputs[0].Data.([]float32)) {
			return p.m.Predict(ctx, in)
		}
	}
	return nil, errors.New("bad version")
}

func (p *picky) Signature() tensor.Signature { return p.m.Signature() }
func (p *picky) Close() error                { p.closed.Store(true); return p.m.Close() }

func TestAVersionFailingUnderTrafficIsRolledBack(t *testing.T) {
	testenv.NoLeaks(t)
	// The watch looks every window/50, 40ms: sooner than the breaker's
	// OpenFor, so the clock does not move past it meanwhile.
	const window = 2 * time.Second
	l := newReloadable(t, rollback(reload.Rollback{Window: window, MinRequests: 10}))
	m, err := models.Load(testenv.Testdata("primary.onnx"), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bad := &picky{m: m, canaries: testenv.Canaries(t)}
	// Given a version that passes its canary,
	if err := l.rl.Reload(context.Background(), modelLoader(bad, "v2-bad")); err != nil {
		t.Fatalf("Reload: %v; want the canary passed", err)
	}
	// when it fails under traffic,
	for i := 1; i <= 30; i++ {
		if a := l.Predict(t, 1); a.Tier == "primary" {
			t.Fatalf("the bad version served request %d", i)
		}
	}
	// then it is rolled back at the watch's next look, within its window,
	// and an event says so,
	testenv.Advance(t, l.Clock, sweeper+watchTimers, window/50)
	testenv.Eventually(t, "the bad version is rolled back", func() bool { return len(l.ev.Of(router.RolledBack)) == 1 })
	rb := l.ev.Of(router.RolledBack)[0]
	var rerr *reload.RollbackError
	if rb.Version != "v1" || !errors.As(rb.Err, &rerr) || rerr.Version != "v2-bad" || rerr.Restored != "v1" {
		t.Fatalf("event %+v, want v2-bad rolled back to v1", rb)
	}
	// the previous version serves again at once, though the bad one's
	// failures had opened the breaker,
	if a, err := l.R.Predict(context.Background(), l.In(0)); err != nil || a.Tier != "primary" || a.Version != "v1" {
		t.Fatalf("got %+v, %v; want v1 serving again", a, err)
	}
	h := l.R.Health()["primary"]
	if h.Rollbacks != 1 || h.Condition != router.ReloadFailed || !errors.Is(h.ReloadErr, reload.ErrRolledBack) || h.Version != "v1" {
		t.Fatalf("health %v, want one rollback, reload-failed, serving v1", h)
	}
	// and the bad version is closed once drained.
	testenv.Eventually(t, "the bad version is closed", bad.closed.Load)
}

// Regression: a rollback restored the previous version behind the breaker
// that the failed version's failures had opened, so the tier it was meant
// to heal stayed skipped, reported breaker-open, until OpenFor passed.
func TestARollbackServesTheRestoredVersionAtOnceBehindAnOpenBreaker(t *testing.T) {
	testenv.NoLeaks(t)
	// Given v1 serving, and a reload of v2 that passes its canary,
	const window = time.Minute
	f := clock.NewFake(time.Now())
	v1, v2 := &fake{}, &fake{}
	var ev testenv.Events
	rl := reload.New(reload.Config{Load: modelLoader(v1, "v1"), MustLoad: true,
		Canaries: []probe.Canary{{Inputs: yIn()}},
		Rollback: reload.Rollback{Window: window, MinRequests: 10}})
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "m", Manage: []router.Manager{rl},
			Policy: policy.Config{MaxAttempts: 1, OpenFor: time.Hour}}},
		Heuristic: answerY,
		Clock:     f,
		OnEvent:   ev.Add,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := rl.Reload(context.Background(), modelLoader(v2, "v2")); err != nil {
		t.Fatal(err)
	}
	// when v2 fails every request until the tier's breaker opens,
	v2.fail.Store(true)
	for i := 0; r.Health()["m"].State != policy.Open; i++ {
		if i == 100 {
			t.Fatalf("the breaker is not open after 100 failed requests: %v", r.Health()["m"])
		}
		if _, err := r.Predict(context.Background(), yIn()); err != nil {
			t.Fatal(err)
		}
	}
	if c := r.Health()["m"].Condition; c != router.BreakerOpen {
		t.Fatalf("condition %v before the rollback, want breaker-open", c)
	}
	// and its rollback watch restores v1,
	testenv.Advance(t, f, sweeper+watchTimers, window/50)
	testenv.Eventually(t, "v2 is rolled back", func() bool { return len(ev.Of(router.RolledBack)) == 1 })
	// then the next request is served by v1 at once, not skipped as
	// breaker-open,
	a, err := r.Predict(context.Background(), yIn())
	if err != nil || a.Tier != "m" || a.Version != "v1" || len(a.Fell) != 0 {
		t.Fatalf("got %+v, %v; want v1 serving at once", a, err)
	}
	// and the tier's condition is reload-failed, for the rollback.
	h := r.Health()["m"]
	if h.Condition != router.ReloadFailed || !errors.Is(h.ReloadErr, reload.ErrRolledBack) || h.State != policy.Closed {
		t.Fatalf("health %v, want reload-failed for the rollback, the breaker closed", h)
	}
}

func TestAVersionThatServesThroughItsWindowBecomesKnownGood(t *testing.T) {
	const window = 100 * time.Millisecond
	l := newReloadable(t, rollback(reload.Rollback{Window: window}))
	// Given v1, loaded at start-up, as the last known-good version,
	if h := l.R.Health()["primary"]; h.KnownGood != "v1" {
		t.Fatalf("health %v, want v1 last-good", h)
	}
	// when v2 is reloaded, it is watched: v1 is still the last good one,
	m, err := models.Load(testenv.Testdata("primary.onnx"), models.Options{}) // the router's to close
	if err != nil {
		t.Fatal(err)
	}
	if err := l.rl.Reload(context.Background(), modelLoader(m, "v2")); err != nil {
		t.Fatal(err)
	}
	if h := l.R.Health()["primary"]; h.Version != "v2" || h.KnownGood != "v1" {
		t.Fatalf("health %v, want v2 serving and v1 last-good during the window", h)
	}
	// and once it has served through its window, v2 is.
	l.Predict(t, 0)
	testenv.Advance(t, l.Clock, sweeper+watchTimers, window)
	testenv.Eventually(t, "v2 is last-good", func() bool {
		l.Predict(t, 0)
		return l.R.Health()["primary"].KnownGood == "v2"
	})
}

func TestAFailureOfTheOldVersionAfterASwapDoesNotRollBackTheNewOne(t *testing.T) {
	testenv.NoLeaks(t)
	entered := make(chan struct{})
	released, release := gate(t)
	v1 := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		close(entered)
		<-released
		return nil, errors.New("v1 lost its weights")
	})
	v2 := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{0.5})}, nil
	})
	const window = 500 * time.Millisecond
	f := clock.NewFake(time.Now())
	var ev testenv.Events
	rl := reload.New(reload.Config{Load: modelLoader(v2, "v2"), Rollback: reload.Rollback{Window: window, MinRequests: 1}})
	tier := managed("primary", v1, "v1", rl)
	tier.Policy = policy.Config{Timeout: 10 * time.Second, MaxAttempts: 1}
	r, err := router.New(router.Config{Tiers: []router.Tier{tier}, Heuristic: heuristic, Clock: f, OnEvent: ev.Add})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in := []tensor.Tensor{tensor.New("x", []int64{1, 1}, []float32{1})}
	// Given a request running on v1,
	done := make(chan router.Answer)
	go func() {
		a, _ := r.Predict(context.Background(), in)
		done <- a
	}()
	<-entered
	// when v2 is swapped in and the request on v1 then fails,
	if err := rl.Reload(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	release()
	if a := <-done; a.Tier != router.RungHeuristic {
		t.Fatalf("the request on v1 was served by %s, want the heuristic", a.Tier)
	}
	// then that failure is v1's, not v2's: v2's watch looks at its
	// failures twice (re-arming its timer after the second look means it
	// has made the first), and v2 is not rolled back and serves.
	for range 2 {
		if !f.WaitTimers(sweeper+watchTimers, 10*time.Second) {
			t.Fatalf("v2's rollback watch ended: %v", ev.Of(router.RolledBack))
		}
		f.Advance(window / 50)
	}
	if !f.WaitTimers(sweeper+watchTimers, 10*time.Second) {
		t.Fatalf("v2's rollback watch ended: %v", ev.Of(router.RolledBack))
	}
	if rb := ev.Of(router.RolledBack); len(rb) != 0 {
		t.Fatalf("v2 was rolled back for v1's failure: %v", rb[0].Err)
	}
	if a, err := r.Predict(context.Background(), in); err != nil || a.Version != "v2" {
		t.Fatalf("got %+v, %v; want v2 serving", a, err)
	}
}

func TestARejectedReloadKeepsTheRollbackWatchOfTheVersionBefore(t *testing.T) {
	testenv.NoLeaks(t)
	// Given v2 reloaded over v1 and watched for rollback,
	const window = time.Minute
	f := clock.NewFake(time.Now())
	v1, v2, v3 := &fake{}, &fake{}, &fake{}
	rl := reload.New(reload.Config{Load: loaderOf(v1), MustLoad: true,
		Rollback: reload.Rollback{Window: window, MinRequests: 5},
		Validate: func(_ context.Context, m router.Model) error {
			if m == router.Model(v3) {
				return errors.New("v3 is bad")
			}
			return nil
		}})
	r, err := router.New(router.Config{
		Tiers:     []router.Tier{{Name: "m", Manage: []router.Manager{rl}}},
		Heuristic: answerY,
		Clock:     f,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := rl.Reload(context.Background(), loaderOf(v2)); err != nil {
		t.Fatal(err)
	}
	// when a reload of v3 is rejected
	if err := rl.Reload(context.Background(), loaderOf(v3)); !errors.Is(err, reload.ErrReload) {
		t.Fatalf("Reload of v3 = %v, want it rejected", err)
	}
	// and v2 then fails under traffic,
	v2.fail.Store(true)
	for range 20 {
		if _, err := r.Predict(context.Background(), yIn()); err != nil {
			t.Fatal(err)
		}
	}
	// then v2 is still rolled back, at its watch's next look, to v1,
	// which was kept loaded.
	testenv.Advance(t, f, sweeper+watchTimers, window/50)
	testenv.Eventually(t, "v2 is rolled back", func() bool { return r.Health()["m"].Rollbacks == 1 })
	if a, err := r.Predict(context.Background(), yIn()); err != nil || a.Tier != "m" || v1.closes.Load() != 0 {
		t.Fatalf("after the rollback: %+v, %v, v1 closed %d times", a, err, v1.closes.Load())
	}
}
