package ladderprom_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ladder-ml/ladder/ladderhttp"
	"github.com/ladder-ml/ladder/ladderprom"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// Metrics of a heuristic-only ladder, fed by its events and its answers,
// on a registry of its own. The empty cache comes first, so the
// heuristic's answer is degraded.
func Example() {
	reg := prometheus.NewRegistry()
	m, _ := ladderprom.New(reg, ladderprom.Options{})
	r, _ := router.New(router.Config{
		Heuristic: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.Scalar("p", float32(0.5))}, nil
		},
		OnEvent: m.OnEvent,
	})
	defer r.Close()
	_ = m.Watch(r)

	a, err := r.Predict(context.Background(), []tensor.Tensor{tensor.Scalar("x", float32(1))})
	m.Observe(a, err)

	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "ladder_predictions_total", "ladder_availability_ratio":
			for _, s := range mf.GetMetric() {
				v := s.GetGauge().GetValue() + s.GetCounter().GetValue()
				if v == 0 {
					continue
				}
				labels := ""
				for _, l := range s.GetLabel() {
					labels += " " + l.GetName() + "=" + l.GetValue()
				}
				fmt.Printf("%s%s %v\n", mf.GetName(), labels, v)
			}
		}
	}
	// Output:
	// ladder_availability_ratio 1
	// ladder_predictions_total outcome=degraded tier=heuristic 1
}

// Metrics on a registry of their own, fed by the router's events, its
// state and the HTTP handler's answers, and served at /metrics beside the
// predictions.
func Example_http() {
	down := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("model file missing")
	})
	tiers := []router.Tier{{Name: "primary", Model: down}}
	rule := func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{0.5})}, nil
	}
	mux := http.NewServeMux()

	reg := prometheus.NewRegistry()
	m, err := ladderprom.New(reg, ladderprom.Options{})
	if err != nil {
		log.Fatal(err)
	}
	r, err := router.New(router.Config{Tiers: tiers, Heuristic: rule, OnEvent: m.OnEvent})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	if err := m.Watch(r); err != nil {
		log.Fatal(err)
	}
	h, err := ladderhttp.New(r, ladderhttp.Options{Observer: m})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("POST /v1/predict", h)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	predict := httptest.NewRequest(http.MethodPost, "/v1/predict", strings.NewReader(`{"vector": [1, 2]}`))
	mux.ServeHTTP(httptest.NewRecorder(), predict)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		counted := strings.HasPrefix(line, "ladder_predictions_total") || strings.HasPrefix(line, "ladder_falls_total")
		if counted && !strings.HasSuffix(line, " 0\n") {
			fmt.Print(line)
		}
	}
	// Output:
	// ladder_falls_total{reason="error",tier="primary"} 1
	// ladder_falls_total{reason="not_cached",tier="cache"} 1
	// ladder_predictions_total{outcome="degraded",tier="heuristic"} 1
}
