// Package policy guards a model: a [Guard] runs its attempts under the
// resilience of a [Config] (timeout, retries, circuit breaker, bulkhead,
// the poison-input rule) on failsafe-go, and judges each attempt once
// ([Outcome], [Judge], [Done]).
//
// A router's model tier is a Guard around its model; a composite rung
// (replicas, a hedged pair, an ensemble) guards each of its members with
// one, exactly as a tier is guarded, and reads each attempt's verdict
// from [Options].OnDone instead of judging errors again. The marks a
// model puts on its errors ([Permanent], [Uncounted]), the errors a
// member's failure can match, and the breaker's typed [State] live here
// too.
package policy

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/ladder-ml/ladder/internal/mark"
)

// Config is a model tier's resilience settings. The zero value of every
// field means the documented default; the defaults suit a 3 µs model and a
// 30 ms one alike.
type Config struct {
	// Timeout bounds one attempt. A timed-out attempt is terminated (ONNX
	// runs really stop), counts against the breaker and is not retried on
	// the same tier. Default 100ms: above three times a 30 ms model's
	// latency, and the breaker stops paying it after a few hangs. Set it to
	// a few times your model's p99.
	Timeout time.Duration

	// MaxAttempts is the most attempts one request makes on this tier,
	// counting the first. Default 2 (one retry). Use 1 to disable retries.
	MaxAttempts int

	// Backoff is the delay before the first retry; it doubles each retry
	// up to MaxBackoff, varied by Jitter. Defaults 1ms and 20ms.
	Backoff    time.Duration
	MaxBackoff time.Duration

	// Jitter is the fraction by which each retry delay is varied at random,
	// in [0, 1]. Default 0.5. Set a negative value for none.
	Jitter float64

	// RetryBudget is the largest fraction of in-flight executions that may
	// be retries, in (0, 1]; at least 3 retries are always allowed. Default
	// 0.2. It stops a failing tier from doubling its own load.
	RetryBudget float64

	// FailureRate opens the breaker when this fraction of the last
	// Executions executions failed. Defaults 0.5 of the last 30: a tier
	// that fails every call trips after 15 failed attempts (8 requests with
	// one retry each), however much traffic it served before the outage,
	// while a tier failing 10% of calls at random practically never trips
	// (the chance that a window of 30 holds 15 failures is about 3e-8).
	FailureRate float64
	Executions  uint

	// Window, when set, measures FailureRate over this time window instead
	// of over the last Executions executions; Executions then is the
	// fewest executions in the window before the breaker may open.
	// Default 0: count-based.
	Window time.Duration

	// OpenFor is how long an open breaker refuses calls before it lets
	// trials through (half-open). Default 1s.
	OpenFor time.Duration

	// Trials is the number of half-open trials, requests let through an
	// open breaker once OpenFor has passed, that must all succeed to
	// close it; any failure re-opens it. Default 3. Together with OpenFor
	// it bounds recovery: traffic returns to a healed tier within OpenFor
	// plus the time to serve Trials requests. (A tier's canary probes are
	// package probe's.)
	Trials uint

	// MaxConcurrent is the bulkhead: the most attempts running at once on
	// this tier. A request that finds it full skips the tier at once,
	// without counting a failure. Default 4 × GOMAXPROCS: in-process
	// CPU-bound models gain nothing from many more runs than cores.
	MaxConcurrent int
}

// ErrInvalidConfig matches every configuration error from [Config.Resolve],
// and so from the router's New.
var ErrInvalidConfig = errors.New("policy: invalid config")

// Resolve returns c with every default filled in, as the router uses it
// on this machine (MaxConcurrent's default scales with GOMAXPROCS), or an
// error matching [ErrInvalidConfig] that names the bad field.
func (c Config) Resolve() (Config, error) {
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c.withDefaults(max(runtime.GOMAXPROCS(0), 1)), nil
}

func (c Config) withDefaults(procs int) Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Timeout, 100*time.Millisecond)
	def(&c.Backoff, time.Millisecond)
	def(&c.MaxBackoff, 20*time.Millisecond)
	def(&c.OpenFor, time.Second)
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 2
	}
	if c.Jitter == 0 {
		c.Jitter = 0.5
	} else if c.Jitter < 0 {
		c.Jitter = 0
	}
	if c.RetryBudget == 0 {
		c.RetryBudget = 0.2
	}
	if c.FailureRate == 0 {
		c.FailureRate = 0.5
	}
	if c.Executions == 0 {
		c.Executions = 30
	}
	if c.Trials == 0 {
		c.Trials = 3
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = 4 * procs
	}
	return c
}

func (c Config) validate() error {
	bad := func(field, want string, got any) error {
		return fmt.Errorf("%w: %s is %v, expected %s", ErrInvalidConfig, field, got, want)
	}
	switch {
	case c.Timeout < 0:
		return bad("Timeout", "a positive duration, or 0 for the default", c.Timeout)
	case c.MaxAttempts < 0:
		return bad("MaxAttempts", "at least 1, or 0 for the default", c.MaxAttempts)
	case c.Backoff < 0 || c.MaxBackoff < 0:
		return bad("Backoff/MaxBackoff", "positive durations", fmt.Sprint(c.Backoff, "/", c.MaxBackoff))
	case c.MaxBackoff < c.Backoff:
		return bad("MaxBackoff", "at least Backoff ("+c.Backoff.String()+")", c.MaxBackoff)
	case c.Jitter > 1:
		return bad("Jitter", "a fraction in [0, 1]", c.Jitter)
	case c.RetryBudget < 0 || c.RetryBudget > 1:
		return bad("RetryBudget", "a fraction in (0, 1]", c.RetryBudget)
	case c.FailureRate < 0 || c.FailureRate > 1:
		return bad("FailureRate", "a fraction in (0, 1]", c.FailureRate)
	case c.Window < 0 || c.OpenFor < 0:
		return bad("Window/OpenFor", "positive durations", fmt.Sprint(c.Window, "/", c.OpenFor))
	case c.MaxConcurrent < 0:
		return bad("MaxConcurrent", "at least 1, or 0 for the default", c.MaxConcurrent)
	}
	return nil
}

// Errors a tier's failure can match. The router reports them in
// the Fall of an answer and in events; match them with errors.Is.
var (
	// ErrTimeout matches an attempt that ran past the tier's Timeout.
	ErrTimeout = errors.New("policy: attempt timed out")
	// ErrOpen matches a tier skipped because its breaker is open.
	ErrOpen = circuitbreaker.ErrOpen
	// ErrFull matches a tier skipped because its bulkhead is full.
	ErrFull = bulkhead.ErrFull
	// ErrBudget matches a retry refused because the retry budget is spent.
	ErrBudget = budget.ErrExceeded
)

// Permanent marks err as a deterministic failure of the model: retrying the
// same input on the same tier would fail the same way. The router does not
// retry it and falls to the next rung at once; it still counts against the
// tier's breaker. It returns nil for a nil err.
func Permanent(err error) error { return mark.AsPermanent(err) }

// Uncounted marks err as a failure the breaker must not count, because
// it says nothing new about the tier's health: for example the same input
// failing again in the same way. Like [Permanent] it is not retried, and
// the request falls to the next rung. It returns nil for a nil err.
func Uncounted(err error) error { return mark.AsUncounted(err) }

// State is a circuit breaker's state.
type State int

// The breaker states. The zero value is Closed.
const (
	// Closed: the tier is tried and its failures are counted.
	Closed State = iota
	// Open: the tier is skipped without an attempt until OpenFor passes.
	Open
	// HalfOpen: up to Trials requests at a time try the tier; Trials
	// successes close the breaker, any counted failure opens it again.
	HalfOpen
)

var stateNames = [...]string{"closed", "open", "half-open"}

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("State(%d)", int(s))
	}
	return stateNames[s]
}

// StateChange reports a breaker moving from one [State] to another.
type StateChange struct {
	From State     // the state the breaker left
	To   State     // the state it entered
	At   time.Time // when the breaker changed state
}

// Status is a breaker's state as it stands, for health checks.
type Status struct {
	// State is the breaker's state now.
	State State
	// Since is when the breaker entered State.
	Since time.Time
	// RetryAfter is when an open breaker lets trials through; zero in the
	// other states.
	RetryAfter time.Time
}

// String reads like "closed since 12:00:00.000" or "open since
// 12:00:00.000, retry after 12:00:01.000".
func (s Status) String() string {
	const layout = "15:04:05.000"
	out := s.State.String() + " since " + s.Since.Format(layout)
	if !s.RetryAfter.IsZero() {
		out += ", retry after " + s.RetryAfter.Format(layout)
	}
	return out
}
