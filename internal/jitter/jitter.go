// Package jitter varies intervals at random, so that probes and retries
// across a fleet do not beat in step.
package jitter

import (
	"math/rand/v2"
	"time"
)

// Of returns d varied at random by up to ±fraction of itself; d itself
// when fraction is zero or less.
func Of(d time.Duration, fraction float64) time.Duration {
	if fraction <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + fraction*(2*rand.Float64()-1)))
}
