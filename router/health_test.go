package router_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// noLeaks checks, after the test's cleanups (the router's Close among
// them), that every goroutine the test started has stopped.
func noLeaks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// probed is a ladder whose primary is probed every few milliseconds.
func probed(t *testing.T, ev *events, failAfter int) *ladder {
	t.Helper()
	testenv.RequireRuntime(t, haveRuntime)
	return newLadder(t, "primary.onnx", func(c *router.Config) {
		c.Tiers[0].Canaries = canaries(t)
		c.Tiers[0].Probe = router.Probe{Interval: 5 * time.Millisecond, Timeout: 30 * time.Millisecond, FailAfter: failAfter, PassAfter: 2}
		c.OnEvent = ev.add
	})
}

func TestProbesTakeAHungTierOutAndBringItBack(t *testing.T) {
	noLeaks(t)
	var ev events
	l := probed(t, &ev, 2)
	// Given a primary that hangs, with no traffic to notice,
	l.primary.Set(chaos.Fault{HangRate: 1})
	// when its probes time out, it is marked unhealthy,
	eventually(t, "the primary is unhealthy", func() bool { return l.r.Health()["primary"].Condition == router.Unhealthy })
	h := l.r.Health()["primary"]
	if h.ProbesFailed < 2 || !errors.Is(h.LastError, policy.ErrTimeout) {
		t.Fatalf("health %v (%d failed probes, last error %v), want two failed probes or more, timed out", h, h.ProbesFailed, h.LastError)
	}
	// and traffic moves off it with no attempt.
	calls := l.primary.Calls()
	for i := range 5 {
		a := l.predict(t, i)
		if a.Tier != "backup" || a.Fell[0].Attempts != 0 || !errors.Is(a.Fell[0].Err, router.ErrUnavailable) {
			t.Fatalf("got %+v; want the backup, the primary skipped as unhealthy", a)
		}
	}
	if got := l.primary.Calls() - calls; got > 3 { // the probes' own calls go on meanwhile
		t.Errorf("%d calls reached the primary during 5 requests; want only probes", got)
	}
	if !l.r.Ready() {
		t.Error("not ready, though the backup can answer")
	}
	// When it heals, its probes readmit it and it serves again, with no
	// unlucky request needed.
	l.primary.Set(chaos.Fault{})
	eventually(t, "the primary is healthy", func() bool { return l.r.Health()["primary"].Condition == router.Healthy })
	if a := l.predict(t, 0); a.Tier != "primary" {
		t.Fatalf("served by %s, want the primary", a.Tier)
	}
	var down, up bool
	for _, e := range ev.of(router.HealthChanged) {
		down = down || e.Tier == "primary" && e.Health.To == router.Unhealthy && e.Err != nil
		up = up || e.Tier == "primary" && e.Health == router.HealthChange{From: router.Unhealthy, To: router.Healthy}
	}
	if !down || !up {
		t.Errorf("health events %+v, want the primary going unhealthy and back", ev.of(router.HealthChanged))
	}
}

func TestReadyFollowsTheTiersThatCanServe(t *testing.T) {
	answer := func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return probability(0.5), nil }
	var healthy = true
	model := router.ModelFunc(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
		if !healthy {
			return nil, errors.New("down")
		}
		return answer(ctx, in)
	})
	canary := []router.Canary{{Inputs: probability(0.1)}}
	probe := router.Probe{Interval: -1}
	for _, tc := range []struct {
		name string
		cfg  router.Config
		want bool
	}{
		{"a healthy tier", router.Config{Tiers: []router.Tier{{Name: "m", Model: model}}}, true},
		{"only a tier still loading", router.Config{Tiers: []router.Tier{{Name: "m", Load: router.LoaderFunc(func(ctx context.Context) (router.Loaded, error) {
			<-ctx.Done()
			return router.Loaded{}, ctx.Err()
		})}}}, false},
		{"a tier still loading and a heuristic", router.Config{Tiers: []router.Tier{{Name: "m", Load: router.LoaderFunc(func(ctx context.Context) (router.Loaded, error) {
			<-ctx.Done()
			return router.Loaded{}, ctx.Err()
		})}}, Heuristic: answer}, true},
		{"a required tier still loading and a heuristic", router.Config{Tiers: []router.Tier{{Name: "m", Required: true, Load: router.LoaderFunc(func(ctx context.Context) (router.Loaded, error) {
			<-ctx.Done()
			return router.Loaded{}, ctx.Err()
		})}}, Heuristic: answer}, false},
		{"a tier with canaries", router.Config{Tiers: []router.Tier{{Name: "m", Model: model, Canaries: canary, Probe: probe}}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := router.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Ready(); got != tc.want {
				t.Errorf("Ready() = %v, want %v; health %v", got, tc.want, r.Health())
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if r.Ready() {
				t.Error("ready after Close")
			}
		})
	}
}

func TestHealthConditionsRead(t *testing.T) {
	for c, want := range map[router.Condition]string{router.Healthy: "healthy", router.Loading: "loading", router.Unhealthy: "unhealthy",
		router.BreakerOpen: "breaker-open", router.ReloadFailed: "reload-failed", router.Condition(9): "Condition(9)"} {
		if c.String() != want {
			t.Errorf("%d reads %q, want %q", int(c), c, want)
		}
	}
}

func TestProbesCloseAHealedTiersBreakerWithoutTraffic(t *testing.T) {
	noLeaks(t)
	var ev events
	l := probed(t, &ev, 1000) // the breaker's signal alone
	// Given a primary whose breaker opened under traffic,
	l.primary.Set(chaos.Fault{ErrorRate: 1})
	openBreakers(t, l, "primary")
	// when it heals and no request comes,
	l.primary.Set(chaos.Fault{})
	// then its probes close the breaker once OpenFor has passed,
	eventually(t, "the breaker is closed", func() bool { return l.r.Health()["primary"].State == policy.Closed })
	// and the next request is served by the primary at once.
	if a := l.predict(t, 0); a.Tier != "primary" || a.Degraded {
		t.Fatalf("got %+v, want the primary", a)
	}
}
