// Package policy turns a tier's settings into failsafe-go policies and
// classifies the errors a tier returns.
//
// A [Tier] holds one model tier's circuit breaker, bulkhead, retry budget
// and retry policy, built once from a [Config]. [Tier.Do] runs attempts
// under them. The first attempt takes a fast path that uses the breaker,
// bulkhead and budget directly, with no per-call allocation; only a failed
// attempt that deserves a retry enters failsafe-go's retry executor, which
// adds exponential backoff with jitter, bounded by the retry budget.
//
// [Classify] decides what an error means for the ladder: retry on the same
// tier, fall to the next tier, skip the tier, or stop because the caller
// sent bad input or went away.
package policy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/budget"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/ladder-ml/ladder/tensor"
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
	// probes through (half-open). Default 1s.
	OpenFor time.Duration

	// Probes is the number of half-open probes that must all succeed to
	// close the breaker; any failure re-opens it. Default 3. Together with
	// OpenFor it bounds recovery: traffic returns to a healed tier within
	// OpenFor plus the time to serve Probes requests.
	Probes uint

	// MaxConcurrent is the bulkhead: the most attempts running at once on
	// this tier. A request that finds it full skips the tier at once,
	// without counting a failure. Default 4 × GOMAXPROCS: in-process
	// CPU-bound models gain nothing from many more runs than cores.
	MaxConcurrent int
}

// ErrInvalidConfig matches every configuration error from [New].
var ErrInvalidConfig = errors.New("policy: invalid config")

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
	if c.Probes == 0 {
		c.Probes = 3
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

// Outcome is what an attempt's result means for the ladder.
type Outcome int

const (
	// OK: the tier answered.
	OK Outcome = iota
	// Retry: a transient failure. It counts against the breaker and the
	// request may try the same tier again.
	Retry
	// Fall: a failure not worth repeating on this tier (a timeout, an
	// invalid output, a panic, an error marked [Permanent]). It counts
	// against the breaker and the request falls to the next tier at once.
	Fall
	// Skip: the tier refused without running (breaker open, bulkhead full,
	// retry budget spent). Nothing is counted; the request moves on.
	Skip
	// Reject: the caller's input is invalid. Nothing is counted, nothing is
	// retried, no other tier is tried: the error goes back to the caller.
	Reject
	// Abandon: the caller's context is done. Nothing is counted and the
	// request returns at once with the context's error.
	Abandon
)

var outcomeNames = [...]string{"ok", "retry", "fall", "skip", "reject", "abandon"}

func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) {
		return fmt.Sprintf("Outcome(%d)", int(o))
	}
	return outcomeNames[o]
}

// Counts reports whether the outcome is recorded by the circuit breaker.
func (o Outcome) Counts() bool { return o == OK || o == Retry || o == Fall }

// Errors that [Classify] treats specially, besides [tensor.ErrInvalidInput]
// and those wrapped by [Permanent].
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

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as a deterministic failure of the model: retrying the
// same input on the same tier would fail the same way. [Classify] reports
// it as [Fall]. It returns nil for a nil err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// isPermanent reports whether err was marked by [Permanent]. It is a
// function of its own so that the successful path allocates nothing.
func isPermanent(err error) bool {
	var perm *permanentError
	return errors.As(err, &perm)
}

// Classify returns what err, from an attempt made under ctx, means for the
// ladder. ctx is the caller's context: when it is done, the failure is the
// caller's and not the tier's.
func Classify(ctx context.Context, err error) Outcome {
	switch {
	case err == nil:
		return OK
	case ctx.Err() != nil:
		return Abandon
	case errors.Is(err, tensor.ErrInvalidInput):
		return Reject
	case errors.Is(err, ErrOpen), errors.Is(err, ErrFull), errors.Is(err, ErrBudget):
		return Skip
	case errors.Is(err, ErrTimeout), isPermanent(err):
		return Fall
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// A context the tier made itself ran out: a timeout by another name.
		return Fall
	}
	return Retry
}

// budgetCounter is the part of failsafe-go's budget the fast path uses to
// count first attempts, so the budget sees every execution, not only those
// that reached the retry executor.
type budgetCounter interface {
	RecordExecution()
	ReleaseExecution()
}

// StateChange reports a breaker moving between "closed", "open" and
// "half-open".
type StateChange struct {
	From, To string
}

// Tier holds one model tier's failsafe-go policies, built once. It is safe
// for concurrent use.
type Tier struct {
	// The breaker's state is mirrored in atomics so that the request path
	// takes no lock in the two states it spends nearly all its time in.
	// Under load a mutex asked on every request becomes the hot spot and
	// puts parked goroutines in the tail latency.
	//
	// openUntil: while the breaker is open, the monotonic instant
	// (nanoseconds since epoch) until which requests skip the tier.
	// closed: the breaker is closed and counts by executions, so attempts
	// need no permit and successes are only counted (pendingOK), to be
	// recorded in front of the next failure: a success matters to a
	// count-based breaker only as one of the last Executions results
	// before a failure.
	openUntil atomic.Int64
	closed    atomic.Bool
	pendingOK atomic.Int64
	mirror    sync.Mutex // serialises updates of the mirror

	cfg      Config
	breaker  circuitbreaker.CircuitBreaker[[]tensor.Tensor]
	bulkhead bulkhead.Bulkhead[[]tensor.Tensor]
	budget   budgetCounter
	retry    failsafe.Executor[[]tensor.Tensor]
}

// Attempt is one try at a tier: it runs the model once under ctx.
type Attempt func(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error)

// New builds a tier's policies from cfg, filling in defaults. procs is the
// parallelism the bulkhead default scales with (usually GOMAXPROCS).
// onState, if not nil, is called on every breaker state change. A bad
// setting gives an error matching [ErrInvalidConfig].
func New(cfg Config, procs int, onState func(StateChange)) (*Tier, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults(max(procs, 1))

	cb := circuitbreaker.NewBuilder[[]tensor.Tensor]().
		WithDelay(cfg.OpenFor).
		WithSuccessThreshold(cfg.Probes)
	if cfg.Window > 0 {
		cb = cb.WithFailureRateThreshold(cfg.FailureRate, cfg.Executions, cfg.Window)
	} else {
		failures := uint(math.Ceil(cfg.FailureRate * float64(cfg.Executions)))
		cb = cb.WithFailureThresholdRatio(max(failures, 1), cfg.Executions)
	}
	t := &Tier{cfg: cfg}
	cb = cb.OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
		t.syncMirror()
		if onState != nil {
			onState(StateChange{From: stateName(e.OldState), To: stateName(e.NewState)})
		}
	})
	b := budget.NewBuilder().WithMaxRate(cfg.RetryBudget).WithMinConcurrency(3).Build()
	counter, ok := b.(budgetCounter)
	if !ok {
		return nil, fmt.Errorf("policy: failsafe-go's budget %T no longer counts executions", b)
	}
	rp := retrypolicy.NewBuilder[[]tensor.Tensor]().
		HandleIf(func(_ []tensor.Tensor, err error) bool { return err != nil }).
		AbortIf(func(_ []tensor.Tensor, err error) bool {
			return err != nil && (errors.Is(err, tensor.ErrInvalidInput) || errors.Is(err, ErrTimeout) ||
				errors.Is(err, ErrOpen) || errors.Is(err, ErrFull) || isPermanent(err))
		}).
		WithMaxAttempts(cfg.MaxAttempts).
		WithBackoff(cfg.Backoff, cfg.MaxBackoff).
		WithBudget(b).
		ReturnLastFailure()
	if cfg.Jitter > 0 {
		rp = rp.WithJitterFactor(cfg.Jitter)
	}
	t.breaker = cb.Build()
	t.closed.Store(cfg.Window == 0)
	t.bulkhead = bulkhead.NewBuilder[[]tensor.Tensor](uint(cfg.MaxConcurrent)).Build()
	t.budget = counter
	t.retry = failsafe.With[[]tensor.Tensor](rp.Build())
	return t, nil
}

// syncMirror copies the breaker's current state into the atomics. It runs
// after every transition, under t.mirror, and reads the state afresh, so
// the last update always reflects the last transition.
func (t *Tier) syncMirror() {
	t.mirror.Lock()
	defer t.mirror.Unlock()
	switch t.breaker.State() {
	case circuitbreaker.OpenState:
		t.closed.Store(false)
		t.openUntil.Store(monotonic() + int64(t.breaker.RemainingDelay()))
	case circuitbreaker.HalfOpenState:
		t.closed.Store(false)
		t.openUntil.Store(0)
	default:
		t.openUntil.Store(0)
		t.closed.Store(t.cfg.Window == 0)
	}
}

// epoch anchors monotonic.
var epoch = time.Now()

// monotonic returns nanoseconds since epoch on the monotonic clock.
func monotonic() int64 { return int64(time.Since(epoch)) }

func stateName(s circuitbreaker.State) string {
	switch s {
	case circuitbreaker.OpenState:
		return "open"
	case circuitbreaker.HalfOpenState:
		return "half-open"
	}
	return "closed"
}

// Config returns the tier's settings with every default filled in.
func (t *Tier) Config() Config { return t.cfg }

// State returns the breaker's state: "closed", "open" or "half-open".
func (t *Tier) State() string { return stateName(t.breaker.State()) }

// Do runs attempt on inputs under the tier's policies and returns the
// result, the number of attempts that ran, and the last error. A tier that
// refuses at once (open breaker, full bulkhead) returns 0 attempts and an
// error matching [ErrOpen] or [ErrFull]. Only failures that [Classify]
// reports as [Retry] are retried, with backoff, within the retry budget.
func (t *Tier) Do(ctx context.Context, inputs []tensor.Tensor, attempt Attempt) ([]tensor.Tensor, int, error) {
	t.budget.RecordExecution()
	out, ran, err := t.once(ctx, inputs, attempt)
	t.budget.ReleaseExecution()
	if err == nil || !ran || Classify(ctx, err) != Retry || t.cfg.MaxAttempts < 2 {
		return out, b2i(ran), err
	}

	// Slow path: failsafe-go's retry executor replays the first failure as
	// its own first attempt, then schedules the retries.
	attempts := 1
	first := err
	out, err = t.retry.WithContext(ctx).GetWithExecution(func(exec failsafe.Execution[[]tensor.Tensor]) ([]tensor.Tensor, error) {
		if exec.Attempts() == 1 {
			return nil, first
		}
		out, ran, err := t.once(exec.Context(), inputs, attempt)
		if ran {
			attempts++
		}
		return out, err
	})
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return out, attempts, err
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// once makes one attempt if the bulkhead and breaker allow it, and records
// its outcome with the breaker.
func (t *Tier) once(ctx context.Context, inputs []tensor.Tensor, attempt Attempt) ([]tensor.Tensor, bool, error) {
	if until := t.openUntil.Load(); until != 0 && monotonic() < until {
		return nil, false, ErrOpen
	}
	if !t.bulkhead.TryAcquirePermit() {
		return nil, false, ErrFull
	}
	defer t.bulkhead.ReleasePermit()
	closed := t.closed.Load()
	if !closed && !t.breaker.TryAcquirePermit() {
		return nil, false, ErrOpen
	}
	out, err := attempt(ctx, inputs)
	switch o := Classify(ctx, err); {
	case o == OK && closed:
		t.pendingOK.Add(1)
	case o == OK:
		t.breaker.RecordSuccess()
	case o.Counts():
		for n := min(t.pendingOK.Swap(0), int64(t.cfg.Executions)); n > 0; n-- {
			t.breaker.RecordSuccess()
		}
		t.breaker.RecordFailure()
	case !closed && t.breaker.IsHalfOpen():
		// A half-open probe that says nothing about the model's health
		// (the caller left, or sent bad input) still used a probe permit.
		// Start the probe round again so the permits are not lost.
		t.breaker.Open()
		t.breaker.HalfOpen()
	}
	return out, true, err
}
