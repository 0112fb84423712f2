package chaos

import "time"

// Fault says which faults a [Faulty] injects. The zero value injects none:
// every call goes straight to the inner model.
//
// A rate is the fraction of calls that get a fault, from 0 (none, the
// default) to 1 (every call); rates below 0 count as 0 and above 1 as 1.
// Each rate is drawn on its own, so faults can be combined. A negative
// duration counts as zero. See the package doc for the order in which the
// faults apply.
type Fault struct {
	// ErrorRate is the fraction of calls that fail with an error wrapping
	// [ErrInjected] without calling the inner model. Default 0.
	ErrorRate float64

	// DownFor is how long each outage lasts, counted from Start. While the
	// model is down, every call fails with an error wrapping [ErrInjected]
	// without calling the inner model. Default 0: never down.
	DownFor time.Duration

	// UpFor is how long the model stays up after each outage before the
	// next one begins, so the model flaps: down for DownFor, up for UpFor,
	// down again, for ever. Default 0: one outage of DownFor, then up for
	// good.
	UpFor time.Duration

	// Start is when the first outage begins; before it the model is up.
	// Default (the zero time): the moment [Wrap] or [Faulty.Set] installs
	// the fault, read from the clock given by [WithClock].
	Start time.Time

	// HangRate is the fraction of calls that block until their context is
	// done and then return its error, without calling the inner model. A
	// call whose context is never done never returns. Default 0.
	HangRate float64

	// Latency is added to every call that reaches the inner model: the call
	// sleeps this long first, on the clock given by [WithClock]. If the context is done during the sleep, the
	// call returns the context's error at once, without calling the inner
	// model. Default 0.
	Latency time.Duration

	// SlowRate is the fraction of calls that sleep SlowLatency on top of
	// Latency, to make a slow tail. Default 0.
	SlowRate float64

	// SlowLatency is the extra sleep of the calls chosen by SlowRate.
	// Default 0.
	SlowLatency time.Duration

	// NaNRate is the fraction of calls whose outputs have every floating
	// point element (float32, float64, float16, bfloat16) replaced by NaN.
	// The inner model is called, and its
	// float tensors are copied before they are overwritten, so its own
	// slices are never touched; other tensors pass through as they are. A
	// call on which the inner model fails keeps its error and outputs.
	// Default 0.
	NaNRate float64

	// PanicRate is the fraction of calls that panic with [ErrPanic] without
	// calling the inner model. Default 0.
	PanicRate float64
}

// down reports whether a model with fault f, installed at start, is inside
// an outage at now.
func (f *Fault) down(now, start time.Time) bool {
	if f.DownFor <= 0 {
		return false
	}
	if !f.Start.IsZero() {
		start = f.Start
	}
	since := now.Sub(start)
	if since < 0 {
		return false
	}
	if f.UpFor <= 0 {
		return since < f.DownFor
	}
	return since%(f.DownFor+f.UpFor) < f.DownFor
}

// A draw names one of the random draws a call makes. Each call owns
// drawsPerCall slots of the seeded stream, so a call's draws do not depend
// on which faults are set or on what other calls drew.
type draw uint64

const (
	drawHang draw = iota
	drawError
	drawPanic
	drawSlow
	drawNaN
	drawsPerCall = 8
)

// fires reports whether the fault of rate rate hits call n (counted from
// 1) for draw d, given seed.
func fires(rate float64, seed, n uint64, d draw) bool {
	if !(rate > 0) { // also false for NaN
		return false
	}
	if rate >= 1 {
		return true
	}
	return uniform(seed, n*drawsPerCall+uint64(d)) < rate
}

// uniform returns the i-th value of the splitmix64 stream seeded by seed,
// as a float64 in [0, 1). It is a pure function, so it needs no lock.
func uniform(seed, i uint64) float64 {
	z := seed + (i+1)*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) * 0x1p-53
}
