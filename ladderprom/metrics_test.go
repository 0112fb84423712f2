package ladderprom_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/ladderhttp"
	"github.com/ladder-ml/ladder/ladderprom"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/probe"
	"github.com/ladder-ml/ladder/reload"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Metrics is the Observer of ladderhttp's handler.
var _ ladderhttp.Observer = (*ladderprom.Metrics)(nil)

func score(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{0.25})}, nil
}

func TestMetricsThroughTheHandler(t *testing.T) {
	// Given a watched ladder behind the HTTP handler,
	reg := prometheus.NewRegistry()
	m, err := ladderprom.New(reg, ladderprom.Options{})
	if err != nil {
		t.Fatal(err)
	}
	primary := chaos.Wrap(router.ModelFunc(score), chaos.Fault{})
	pol := policy.Config{MaxAttempts: 1, FailureRate: 1, Executions: 2, OpenFor: time.Hour}
	r, err := router.New(router.Config{
		Tiers:     []router.Tier{{Name: "primary", Model: primary, Version: "7", Policy: pol}},
		Inputs:    []tensor.Info{{Name: "features", DType: tensor.Float32, Shape: []int64{1, 1}}},
		Heuristic: score,
		OnEvent:   m.OnEvent,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := m.Watch(r); err != nil {
		t.Fatal(err)
	}
	if err := m.Watch(r); err == nil {
		t.Error("a second Watch was accepted")
	}
	h, _ := ladderhttp.New(r, ladderhttp.Options{Observer: m})
	send := func(body string) {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
	}

	// When the primary serves, then fails until its breaker opens, a
	// request is invalid, and the heuristic serves a new input,
	send(`{"vector":[1]}`)
	if got := value(t, reg, "ladder_degraded"); got != 0 {
		t.Errorf("degraded %v while the primary serves", got)
	}
	primary.Set(chaos.Fault{ErrorRate: 1})
	send(`{"vector":[2]}`)
	send(`{"vector":[3]}`)
	send(`{"vector":[1,2]}`)
	send(`{"vector":[4]}`)

	// Then the metrics say so. Since the scrape above, the primary failed
	// its three tries, the cache its three, the heuristic succeeded
	// always: R = 1 - (1)(1)(0) = 1.
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ladder_predictions_total", []string{"tier=primary", "outcome=ok"}, 1},
		{"ladder_predictions_total", []string{"tier=heuristic", "outcome=degraded"}, 3},
		{"ladder_predictions_total", []string{"tier=none", "outcome=invalid_input"}, 1},
		{"ladder_prediction_duration_seconds", []string{"tier=heuristic"}, 3},
		{"ladder_falls_total", []string{"tier=primary", "reason=error"}, 2},
		{"ladder_falls_total", []string{"tier=primary", "reason=breaker_open"}, 1},
		{"ladder_falls_total", []string{"tier=cache", "reason=not_cached"}, 3},
		{"ladder_cache_misses_total", nil, 3},
		{"ladder_cache_hits_total", nil, 0},
		{"ladder_model_info", []string{"tier=primary", "version=7"}, 1},
		{"ladder_degraded", nil, 1},
		{"ladder_in_flight_requests", nil, 0},
		{"ladder_breaker_state", []string{"tier=primary", "state=open"}, 1},
		{"ladder_breaker_state", []string{"tier=primary", "state=closed"}, 0},
		{"ladder_breaker_transitions_total", []string{"tier=primary", "to=open"}, 1},
		{"ladder_rung_success_ratio", []string{"tier=primary"}, 0},
		{"ladder_rung_success_ratio", []string{"tier=heuristic"}, 1},
		{"ladder_rung_success_ratio", []string{"tier=cache"}, 0},
		{"ladder_availability_ratio", nil, 1},
	} {
		if got := value(t, reg, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if got := value(t, reg, "ladder_breaker_next_probe_seconds", "tier=primary"); got < 3500 || got > 3600 {
		t.Errorf("next probe in %v s, want about an hour", got)
	}
}

// value gathers reg and returns the value of the series name{labels}: a
// counter's or gauge's value, a histogram's sample count. It fails the
// test when there is no such series.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == k && lp.GetValue() == v)
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func TestNewRefusesADuplicate(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := ladderprom.New(reg, ladderprom.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ladderprom.New(reg, ladderprom.Options{}); err == nil {
		t.Error("a second New on the same registry was accepted")
	}
	if _, err := ladderprom.New(reg, ladderprom.Options{Namespace: "other"}); err != nil {
		t.Errorf("another namespace: %v", err)
	}
}

func TestProbeAndConditionMetrics(t *testing.T) {
	// Given a primary whose canary probes fail, watched by the metrics,
	reg := prometheus.NewRegistry()
	m, err := ladderprom.New(reg, ladderprom.Options{})
	if err != nil {
		t.Fatal(err)
	}
	broken := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("weights gone")
	})
	const interval = 5 * time.Millisecond
	f := clock.NewFake(time.Now())
	prober := probe.New(probe.Config{Canaries: []probe.Canary{{Inputs: []tensor.Tensor{tensor.New("x", []int64{1}, []float32{1})}}},
		Interval: interval, Jitter: -1, FailAfter: 2})
	r, err := router.New(router.Config{
		Tiers:     []router.Tier{{Name: "primary", Model: broken, Manage: []router.Manager{prober}}},
		Heuristic: score,
		OnEvent:   m.OnEvent,
		Clock:     f,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := m.Watch(r); err != nil {
		t.Fatal(err)
	}
	// when its probes have marked it unhealthy, stepped on the router's
	// clock (on which the default cache's sweeper and the prober each
	// arm a timer),
	for i := 0; r.Health()["primary"].Condition != router.Unhealthy; i++ {
		if i == 100 {
			t.Fatalf("the primary is %v after 100 probes", r.Health()["primary"])
		}
		if !f.WaitTimers(2, 10*time.Second) {
			t.Fatal("the prober is not waiting for its next probe")
		}
		f.Advance(interval)
	}
	// then the scrape shows the failed probes and the condition.
	if got := value(t, reg, "ladder_probes_total", "tier=primary", "result=failed"); got < 2 {
		t.Errorf("failed probes = %v, want at least 2", got)
	}
	if got := value(t, reg, "ladder_tier_condition", "tier=primary", "condition=unhealthy"); got != 1 {
		t.Errorf("unhealthy = %v, want 1", got)
	}
	if got := value(t, reg, "ladder_tier_condition", "tier=primary", "condition=healthy"); got != 0 {
		t.Errorf("healthy = %v, want 0", got)
	}
	if got := value(t, reg, "ladder_reloads_total", "tier=primary", "outcome=accepted"); got != 0 {
		t.Errorf("accepted reloads = %v, want 0", got)
	}
}

// versions returns the versions ladder_model_info shows for tier.
func versions(t *testing.T, reg *prometheus.Registry, tier string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "ladder_model_info" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var tr, v string
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "tier":
					tr = lp.GetValue()
				case "version":
					v = lp.GetValue()
				}
			}
			if tr == tier && m.GetGauge().GetValue() == 1 {
				out = append(out, v)
			}
		}
	}
	return out
}

func TestModelInfoShowsOnlyTheVersionServingAfterAReload(t *testing.T) {
	for _, tc := range []struct {
		name  string
		watch bool
	}{
		{"watched", true},
		{"fed by events and answers", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Given a ladder whose primary serves version 1,
			reg := prometheus.NewRegistry()
			m, err := ladderprom.New(reg, ladderprom.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rl := reload.New(reload.Config{Load: reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
				return reload.Loaded{}, errors.New("reloaded by hand only")
			})})
			r, err := router.New(router.Config{
				Tiers:     []router.Tier{{Name: "primary", Model: router.ModelFunc(score), Version: "1", Manage: []router.Manager{rl}}},
				Heuristic: score,
				OnEvent:   m.OnEvent,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if tc.watch {
				if err := m.Watch(r); err != nil {
					t.Fatal(err)
				}
			}
			predict := func() router.Answer {
				t.Helper()
				a, err := r.Predict(context.Background(), []tensor.Tensor{tensor.New("x", []int64{1, 1}, []float32{1})})
				m.Observe(a, err)
				if err != nil {
					t.Fatal(err)
				}
				return a
			}
			old := predict()
			if got := versions(t, reg, "primary"); len(got) != 1 || got[0] != "1" {
				t.Fatalf("before the reload, versions %v, want [1]", got)
			}

			// when version 2 is reloaded, serves, and an answer of version
			// 1 that was in flight across the swap finishes late,
			err = rl.Reload(context.Background(), reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
				return reload.Loaded{Model: router.ModelFunc(score), Version: "2"}, nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			if a := predict(); a.Version != "2" {
				t.Fatalf("served version %q after the reload, want 2", a.Version)
			}
			m.Observe(old, nil)

			// then the scrape shows version 2 alone.
			if got := versions(t, reg, "primary"); len(got) != 1 || got[0] != "2" {
				t.Errorf("after the reload, versions %v, want [2]", got)
			}
		})
	}
}
