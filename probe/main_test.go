package probe_test

import (
	"testing"
	"time"

	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/router"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }

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
