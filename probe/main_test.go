package probe_test

import (
	"os"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/router"
)

var haveRuntime bool

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &haveRuntime)) }

// load loads testdata/name, closed when t ends; it skips t without ONNX
// Runtime.
func load(t testing.TB, name string) *models.Model {
	t.Helper()
	testenv.RequireRuntime(t, haveRuntime)
	m, err := models.Load(testenv.Testdata(name), models.Options{})
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// The timers armed on a prober's router clock: the default cache's
// sweeper (every 5 minutes) and the prober's own.
const armed = 2

// probeOnce advances clk to the next probe of tier, interval away, once
// the prober waits for it, and waits until the probe's result is
// recorded. (The condition it leads to may be recorded a moment later.)
func probeOnce(t *testing.T, r *router.Router, clk *clock.Fake, tier string, interval time.Duration) {
	t.Helper()
	probes := func() uint64 { h := r.Health()[tier]; return h.ProbesPassed + h.ProbesFailed }
	n := probes()
	testenv.Advance(t, clk, armed, interval)
	testenv.Eventually(t, "the probe is recorded", func() bool { return probes() > n })
}
