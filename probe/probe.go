// Package probe checks a model tier's health in the background with
// canaries: inputs with known answers. A [Prober] is a router.Manager: it
// runs every canary on the tier's serving version at an interval, outside
// the tier's breaker, takes the tier out of service (router.Unhealthy)
// after FailAfter failed probes in a row, and readmits it after PassAfter
// passed ones. [Check] runs canaries once, as package reload does before
// it swaps a new version in.
//
//	canaries := []probe.Canary{{Inputs: in, Want: out}}
//	tier := router.Tier{Name: "primary", Model: m,
//		Manage: []router.Manager{probe.New(probe.Config{Canaries: canaries})}}
package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/ladder-ml/ladder/internal/jitter"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// Canary is an input with a known answer.
type Canary struct {
	// Inputs are given to the model as a request's would be (through
	// router.Tier.Inputs when set).
	Inputs []tensor.Tensor
	// Want are the expected outputs, in order. Nil means any answer that
	// passes the ladder's validation (finite, the output contract,
	// router.Config.Check).
	Want []tensor.Tensor
	// Tolerance is the largest absolute difference allowed between a
	// numeric output and Want. Zero means 1e-4; negative means exactly
	// equal.
	Tolerance float64
}

// Config configures a [Prober]. Every zero value means the default on
// its field.
//
// A probe runs every canary on the tier's serving version, each bounded
// by Timeout, outside the tier's breaker and retries. While a call the
// router stopped waiting for at its timeout is still running on that
// version (a model ignoring ctx), the next probes fail without running.
// While the tier's breaker is half-open, a passing probe also runs its
// canaries through the breaker, as requests would, so that a healed
// tier's breaker closes without traffic.
type Config struct {
	// Canaries are the inputs probed. Required.
	Canaries []Canary
	// Interval is the time between probes, varied by Jitter. Zero means
	// 5s; it must be at least 1ms.
	Interval time.Duration
	// Jitter is the fraction by which each interval is varied at random.
	// Zero means 0.1; negative means none.
	Jitter float64
	// Timeout bounds each canary. Zero means the tier's policy.Config
	// Timeout.
	Timeout time.Duration
	// FailAfter is the number of failed probes in a row that mark the tier
	// Unhealthy. Zero means 3.
	FailAfter int
	// PassAfter is the number of passed probes in a row that readmit an
	// Unhealthy tier. Zero means 2.
	PassAfter int
}

// ErrInvalidConfig matches every configuration error of a [Prober],
// returned by router.New when it starts the prober. It also matches
// router.ErrInvalidConfig, as every configuration error of New does.
var ErrInvalidConfig error = configError("probe: invalid config")

type configError string

func (e configError) Error() string { return string(e) }

// Is reports whether target is router.ErrInvalidConfig.
func (e configError) Is(target error) bool { return target == router.ErrInvalidConfig }

func (c Config) resolve(tierTimeout time.Duration) (Config, error) {
	switch {
	case len(c.Canaries) == 0:
		return c, fmt.Errorf("%w: no Canaries; expected at least one input with a known answer", ErrInvalidConfig)
	case c.Interval < 0 || (c.Interval > 0 && c.Interval < time.Millisecond):
		return c, fmt.Errorf("%w: Interval is %v; expected at least 1ms, or 0 for the default 5s", ErrInvalidConfig, c.Interval)
	case c.Interval == 0:
		c.Interval = 5 * time.Second
	}
	switch {
	case c.Jitter == 0:
		c.Jitter = 0.1
	case c.Jitter < 0:
		c.Jitter = 0
	}
	if c.Timeout <= 0 {
		c.Timeout = tierTimeout
	}
	if c.FailAfter <= 0 {
		c.FailAfter = 3
	}
	if c.PassAfter <= 0 {
		c.PassAfter = 2
	}
	return c, nil
}

// Prober probes one tier; it is a router.Manager. Give each tier a
// Prober of its own.
type Prober struct{ cfg Config }

// New returns a prober of cfg, checked when the router starts it.
func New(cfg Config) *Prober { return &Prober{cfg: cfg} }

// Start checks the configuration and starts the probes, which stop when
// the router closes.
func (p *Prober) Start(_ context.Context, h *router.Handle) error {
	cfg, err := p.cfg.resolve(h.Timeout())
	if err != nil {
		return fmt.Errorf("tier %q: %w", h.Name(), err)
	}
	h.Go(func(ctx context.Context) { run(ctx, h, cfg) })
	return nil
}

// run probes the tier at its interval until ctx ends.
func run(ctx context.Context, h *router.Handle, cfg Config) {
	clk := h.Clock()
	timer := clk.NewTimer(jitter.Of(cfg.Interval, cfg.Jitter))
	defer timer.Stop()
	var (
		streak    int // consecutive results on version: > 0 passes, < 0 failures
		unhealthy bool
		version   *router.Version
	)
	record := func(err error) {
		if err == nil {
			streak = max(streak, 0) + 1
			if unhealthy && streak >= cfg.PassAfter {
				unhealthy = false
			}
		} else {
			streak = min(streak, 0) - 1
			if -streak >= cfg.FailAfter {
				unhealthy = true
			}
		}
		h.Probed(err, unhealthy)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
		}
		timer.Reset(jitter.Of(cfg.Interval, cfg.Jitter))
		v := h.Current()
		if v == nil {
			continue // loading
		}
		if v != version { // a new version starts afresh
			version, streak, unhealthy = v, 0, false
		}
		if v.Running() > 0 {
			// A call left running past its timeout still has not returned:
			// the model is hung, and this probe fails too, so that a model
			// ignoring ctx is taken out like a slow one.
			record(fmt.Errorf("%w: a call is still running past its timeout", policy.ErrTimeout))
			continue
		}
		err := Check(ctx, v, cfg.Canaries, cfg.Timeout)
		switch {
		case ctx.Err() != nil, errors.Is(err, router.ErrClosed):
			// The router is closing, or the version was replaced meanwhile.
		case err != nil:
			record(err)
		default:
			record(nil)
			for _, c := range cfg.Canaries {
				if ran, err := h.Nudge(ctx, c.Inputs); !ran || err != nil {
					break
				}
			}
		}
	}
}

// ErrCanary matches every [*CanaryError].
var ErrCanary = errors.New("probe: canary failed")

// CanaryError reports a canary whose answer was wrong or missing.
type CanaryError struct {
	Tier    string // the tier probed
	Version string // the version that answered
	Index   int    // the canary's index
	Err     error  // why: the model's error, a validation error, or a mismatch
}

func (e *CanaryError) Error() string {
	return fmt.Sprintf("%v: %s %s canary %d: %v", ErrCanary, e.Tier, e.Version, e.Index, e.Err)
}

// Unwrap returns the cause.
func (e *CanaryError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrCanary].
func (e *CanaryError) Is(target error) bool { return target == ErrCanary }

// Check runs every canary on v, each bounded by timeout, and returns the
// first failure as a [*CanaryError], or ctx's error once ctx ends. A
// model that ignores ctx is left running at the timeout, and v is not
// closed under it.
func Check(ctx context.Context, v *router.Version, canaries []Canary, timeout time.Duration) error {
	for i, c := range canaries {
		out, err := v.Predict(ctx, timeout, c.Inputs)
		if err == nil && c.Want != nil {
			err = match(out, c.Want, c.Tolerance)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, router.ErrClosed) {
				return err
			}
			return &CanaryError{Tier: v.Tier(), Version: v.Label(), Index: i, Err: err}
		}
	}
	return nil
}

// match compares got with want within tol.
func match(got, want []tensor.Tensor, tol float64) error {
	switch {
	case tol == 0:
		tol = 1e-4
	case tol < 0:
		tol = 0
	}
	if len(got) != len(want) {
		return fmt.Errorf("got %d outputs, want %d", len(got), len(want))
	}
	for i := range want {
		g, gok := floats(got[i])
		w, wok := floats(want[i])
		if !gok || !wok {
			if !reflect.DeepEqual(got[i].Data, want[i].Data) {
				return fmt.Errorf("output %d is %v, want %v", i, got[i].Data, want[i].Data)
			}
			continue
		}
		if len(g) != len(w) {
			return fmt.Errorf("output %d has %d values, want %d", i, len(g), len(w))
		}
		for j := range w {
			if d := math.Abs(g[j] - w[j]); !(d <= tol) {
				return fmt.Errorf("output %d value %d is %v, want %v ± %v", i, j, g[j], w[j], tol)
			}
		}
	}
	return nil
}

// floats returns t's numeric values as float64s.
func floats(t tensor.Tensor) ([]float64, bool) { return tensor.Float64s(t) }
