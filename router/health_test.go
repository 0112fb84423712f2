package router_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/probe"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// idle is a manager that does nothing: a tier with no Model that it
// manages stays Loading.
type idle struct{}

func (idle) Start(context.Context, *router.Handle) error { return nil }

func TestReadyFollowsTheTiersThatCanServe(t *testing.T) {
	answer := func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return probability(0.5), nil }
	var healthy = true
	model := router.ModelFunc(func(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
		if !healthy {
			return nil, errors.New("down")
		}
		return answer(ctx, in)
	})
	// loading never loads the tier it manages: the tier stays Loading.
	loading := []router.Manager{idle{}}
	probed := []router.Manager{probe.New(probe.Config{Canaries: []probe.Canary{{Inputs: probability(0.1)}}, Interval: time.Hour})}
	for _, tc := range []struct {
		name string
		cfg  router.Config
		want bool
	}{
		{"a healthy tier", router.Config{Tiers: []router.Tier{{Name: "m", Model: model}}}, true},
		{"only a tier still loading", router.Config{Tiers: []router.Tier{{Name: "m", Manage: loading}}}, false},
		{"a tier still loading and a heuristic", router.Config{Tiers: []router.Tier{{Name: "m", Manage: loading}}, Heuristic: answer}, true},
		{"a required tier still loading and a heuristic", router.Config{Tiers: []router.Tier{{Name: "m", Required: true, Manage: loading}}, Heuristic: answer}, false},
		{"a tier probed, before its first probe", router.Config{Tiers: []router.Tier{{Name: "m", Model: model, Manage: probed}}}, true},
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
