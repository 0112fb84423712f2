package ladderprom_test

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

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
