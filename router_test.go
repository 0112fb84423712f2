// Package ladder_test drives the assembled ladder end to end: real ONNX
// models from testdata/, the failsafe-go policies, the last-good cache and
// the heuristic, with faults injected on purpose.
package ladder_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/internal/dataset"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }

// ticking is a fake clock that moves a microsecond at every reading, so
// that every answer has a latency while OpenFor passes only when the test
// says so.
type ticking struct{ *clock.Fake }

func (t ticking) Now() time.Time {
	t.Fake.Advance(time.Microsecond)
	return t.Fake.Now()
}

// TestDegradedAnswersStayAccurate scores every held-out row in each phase
// of an outage and checks that what was served stays accurate, that every
// answer is labelled, and that failover and the return are both reported.
func TestDegradedAnswersStayAccurate(t *testing.T) {
	testenv.MustHaveRuntime(t)
	set, err := dataset.Load(testenv.Testdata("heldout.csv"))
	if err != nil {
		t.Fatal(err)
	}
	primary := chaos.Wrap(testenv.Load(t, "primary.onnx"), chaos.Fault{}, chaos.WithSeed(1))
	backup := chaos.Wrap(testenv.Load(t, "backup.onnx"), chaos.Fault{}, chaos.WithSeed(2))
	var (
		mu       sync.Mutex
		switches []string
	)
	quick := policy.Config{OpenFor: 50 * time.Millisecond, Timeout: 20 * time.Millisecond}
	clk := ticking{clock.NewFake(time.Now())}
	r, err := router.New(router.Config{
		Clock: clk,
		Tiers: []router.Tier{
			{Name: "primary", Model: primary, Policy: quick},
			{Name: "backup", Model: backup, Policy: quick},
		},
		Heuristic: func(_ context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
			p := float32(0.85)
			if in[0].Data.([]float32)[0] > 15 {
				p = 0.15
			}
			return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{p})}, nil
		},
		OnEvent: func(e router.Event) {
			if e.Kind == router.Switched {
				mu.Lock()
				switches = append(switches, e.From+"→"+e.To)
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	phases := []struct {
		name            string
		primary, backup chaos.Fault
		wait            time.Duration
		wantTier        string
		minAccuracy     float64
	}{
		{"healthy", chaos.Fault{}, chaos.Fault{}, 0, "primary", 0.95},
		{"primary down", chaos.Fault{ErrorRate: 1}, chaos.Fault{}, 0, "backup", 0.95},
		{"primary NaN, backup hangs", chaos.Fault{NaNRate: 1}, chaos.Fault{HangRate: 1}, 0, "cache", 0.95},
		{"recovered", chaos.Fault{}, chaos.Fault{}, 100 * time.Millisecond, "primary", 0.95},
	}
	for _, ph := range phases {
		primary.Set(ph.primary)
		backup.Set(ph.backup)
		clk.Advance(ph.wait) // past the breakers' OpenFor
		tiers := map[string]int{}
		correct := 0
		for i, row := range set.Rows {
			a, err := r.Predict(context.Background(), []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)})
			if err != nil {
				t.Fatalf("%s: row %d: %v", ph.name, i, err)
			}
			p := a.Outputs[0].Data.([]float32)[0]
			if p != p || p < 0 || p > 1 {
				t.Fatalf("%s: served %v from %s", ph.name, p, a.Tier)
			}
			if a.Degraded != (a.Tier != "primary") || a.Latency <= 0 {
				t.Fatalf("%s: unlabelled answer %+v", ph.name, a)
			}
			tiers[a.Tier]++
			if (p >= 0.5) == (set.Labels[i] == 1) {
				correct++
			}
		}
		acc := float64(correct) / float64(len(set.Rows))
		t.Logf("%-26s tiers %v accuracy %.3f", ph.name, tiers, acc)
		// The breakers may take a few requests to open; after that one
		// tier serves the phase.
		if tiers[ph.wantTier] < len(set.Rows)-12 {
			t.Errorf("%s: tiers %v, want nearly all from %s", ph.name, tiers, ph.wantTier)
		}
		if acc < ph.minAccuracy {
			t.Errorf("%s: accuracy %.3f < %.2f", ph.name, acc, ph.minAccuracy)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"primary→backup", "backup→cache", "cache→primary"}
	if len(switches) < len(want) {
		t.Fatalf("switch events %v, want at least %v", switches, want)
	}
	for _, w := range want {
		found := false
		for _, s := range switches {
			found = found || s == w
		}
		if !found {
			t.Errorf("no %s switch among %v", w, switches)
		}
	}
}
