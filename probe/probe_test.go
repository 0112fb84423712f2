package probe_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/probe"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// interval is the probes' interval, on the router's fake clock, without
// jitter.
const interval = 5 * time.Millisecond

// probed is a ladder whose primary is probed every interval, each canary
// bounded by 30ms of real time.
func probed(t *testing.T, ev *testenv.Events, failAfter int) *testenv.Ladder {
	t.Helper()
	testenv.MustHaveRuntime(t)
	return testenv.NewLadder(t, testenv.Load(t, "primary.onnx"), testenv.Load(t, "backup.onnx"), func(c *router.Config) {
		c.Tiers[0].Manage = []router.Manager{probe.New(probe.Config{Canaries: testenv.Canaries(t),
			Interval: interval, Jitter: -1, Timeout: 30 * time.Millisecond, FailAfter: failAfter, PassAfter: 2})}
		c.OnEvent = ev.Add
	})
}

func TestProbesTakeAHungTierOutAndBringItBack(t *testing.T) {
	testenv.NoLeaks(t)
	var ev testenv.Events
	l := probed(t, &ev, 2)
	// Given a primary that hangs, with no traffic to notice,
	l.Primary.Set(chaos.Fault{HangRate: 1})
	// when its probes time out, it is marked unhealthy,
	for range 2 {
		probeOnce(t, l.R, l.Clock, "primary", interval)
	}
	testenv.Eventually(t, "the primary is unhealthy", func() bool { return l.R.Health()["primary"].Condition == router.Unhealthy })
	h := l.R.Health()["primary"]
	if h.ProbesFailed < 2 || !errors.Is(h.LastError, policy.ErrTimeout) {
		t.Fatalf("health %v (%d failed probes, last error %v), want two failed probes or more, timed out", h, h.ProbesFailed, h.LastError)
	}
	// and traffic moves off it with no attempt.
	calls := l.Primary.Calls()
	for i := range 5 {
		a := l.Predict(t, i)
		if a.Tier != "backup" || a.Fell[0].Attempts != 0 || !errors.Is(a.Fell[0].Err, router.ErrUnavailable) {
			t.Fatalf("got %+v; want the backup, the primary skipped as unhealthy", a)
		}
	}
	if got := l.Primary.Calls() - calls; got != 0 { // and no probe runs while the clock stands still
		t.Errorf("%d calls reached the primary during 5 requests; want none", got)
	}
	if !l.R.Ready() {
		t.Error("not ready, though the backup can answer")
	}
	// When it heals, its probes readmit it and it serves again, with no
	// unlucky request needed.
	// (Two passed probes in a row readmit it; on a loaded machine a
	// canary may outlast its 30ms and fail, and the next ones pass.)
	l.Primary.Set(chaos.Fault{})
	for i := 0; l.R.Health()["primary"].Condition != router.Healthy; i++ {
		if i == 20 {
			t.Fatalf("the primary is %v after %d probes of it healed", l.R.Health()["primary"], i)
		}
		probeOnce(t, l.R, l.Clock, "primary", interval)
	}
	if a := l.Predict(t, 0); a.Tier != "primary" {
		t.Fatalf("served by %s, want the primary", a.Tier)
	}
	var down, up bool
	for _, e := range ev.Of(router.HealthChanged) {
		down = down || e.Tier == "primary" && e.Health.To == router.Unhealthy && e.Err != nil
		up = up || e.Tier == "primary" && e.Health == router.HealthChange{From: router.Unhealthy, To: router.Healthy}
	}
	if !down || !up {
		t.Errorf("health events %+v, want the primary going unhealthy and back", ev.Of(router.HealthChanged))
	}
}

func TestProbesCloseAHealedTiersBreakerWithoutTraffic(t *testing.T) {
	testenv.NoLeaks(t)
	var ev testenv.Events
	l := probed(t, &ev, 1000) // the breaker's signal alone
	// Given a primary whose breaker opened under traffic,
	l.Primary.Set(chaos.Fault{ErrorRate: 1})
	l.OpenBreakers(t, "primary")
	// when it heals and no request comes,
	l.Primary.Set(chaos.Fault{})
	// then once OpenFor has passed, its probes close the breaker,
	l.Clock.Advance(testenv.Fast.OpenFor)
	if s := l.R.Health()["primary"].State; s != policy.HalfOpen {
		t.Fatalf("breaker %v after OpenFor, want half-open", s)
	}
	// Each passed probe runs its two canaries through the half-open
	// breaker, and three successes close it. (On a loaded machine a
	// canary may outlast its timeout: its probe fails, or its run through
	// the breaker re-opens it, and the next probes try again.)
	for i := 0; l.R.Health()["primary"].State != policy.Closed; i++ {
		if i == 20 {
			t.Fatalf("the breaker is %v after %d probes, want closed", l.R.Health()["primary"].State, i)
		}
		if l.R.Health()["primary"].State == policy.Open {
			l.Clock.Advance(testenv.Fast.OpenFor)
		}
		probeOnce(t, l.R, l.Clock, "primary", interval)
	}
	// and the next request is served by the primary at once.
	if a := l.Predict(t, 0); a.Tier != "primary" || a.Degraded {
		t.Fatalf("got %+v, want the primary", a)
	}
}

// hung answers only once released, ignoring ctx.
type hung struct{ release chan struct{} }

func (m hung) Predict(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
	<-m.release
	return []tensor.Tensor{tensor.New("y", []int64{1}, []float32{0.5})}, nil
}

func answerY(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
	return []tensor.Tensor{tensor.New("y", []int64{1}, []float32{1})}, nil
}

func yIn() []tensor.Tensor { return []tensor.Tensor{tensor.New("x", []int64{1}, []float32{1})} }

func TestAProbeStillHangingCountsAsAFailedProbe(t *testing.T) {
	testenv.NoLeaks(t)
	// Given a model that hangs ignoring ctx, probed every interval, each
	// probe bounded by 10ms of real time,
	m := hung{release: make(chan struct{})}
	f := clock.NewFake(time.Now())
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "m", Model: m, Manage: []router.Manager{probe.New(probe.Config{
			Canaries: []probe.Canary{{Inputs: yIn()}},
			Interval: interval, Jitter: -1, Timeout: 10 * time.Millisecond, FailAfter: 3})}}},
		Heuristic: answerY,
		Clock:     f,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer close(m.release) // after Close, which does not wait for the call
	defer r.Close()
	// when its first probe never returns, the probes that find it still
	// running fail, and the tier is taken out of service.
	for range 3 {
		probeOnce(t, r, f, "m", interval)
	}
	testenv.Eventually(t, "the tier is unhealthy", func() bool { return r.Health()["m"].Condition == router.Unhealthy })
	if h := r.Health()["m"]; h.ProbesFailed != 3 || !errors.Is(h.LastError, policy.ErrTimeout) {
		t.Fatalf("health %v (%d failed probes, last error %v), want three failed probes, timed out", h, h.ProbesFailed, h.LastError)
	}
}

func TestNewRefusesAProbeIntervalThatWouldSpin(t *testing.T) {
	// Given an interval of a nanosecond, which would spin a core,
	p := probe.New(probe.Config{Canaries: []probe.Canary{{Inputs: yIn()}}, Interval: time.Nanosecond})
	_, err := router.New(router.Config{Tiers: []router.Tier{{Name: "m", Model: router.ModelFunc(answerY), Manage: []router.Manager{p}}}})
	// then New refuses it, naming the interval.
	if !errors.Is(err, probe.ErrInvalidConfig) || !strings.Contains(err.Error(), "Interval") {
		t.Fatalf("New err = %v, want probe.ErrInvalidConfig naming the interval", err)
	}
}
