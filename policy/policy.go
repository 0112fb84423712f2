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
	// against the breaker, unless marked [Uncounted], and the request
	// falls to the next tier at once.
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

// Markers matched by the marking errors' Is methods, so that asking costs
// no allocation, unlike errors.As.
var (
	errMarkPermanent = errors.New("policy: permanent")
	errMarkUncounted = errors.New("policy: uncounted")
)

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == errMarkPermanent }

// Permanent marks err as a deterministic failure of the model: retrying the
// same input on the same tier would fail the same way. [Classify] reports
// it as [Fall]. It returns nil for a nil err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// isPermanent reports whether err was marked by [Permanent] or
// [Uncounted].
func isPermanent(err error) bool { return errors.Is(err, errMarkPermanent) }

type uncountedError struct{ err error }

func (e *uncountedError) Error() string { return e.err.Error() }
func (e *uncountedError) Unwrap() error { return e.err }
func (e *uncountedError) Is(target error) bool {
	return target == errMarkUncounted || target == errMarkPermanent
}

// Uncounted marks err as a failure the breaker must not count, because
// it says nothing new about the tier's health: for example the same input
// failing again in the same way. Like [Permanent] it is not retried, and
// [Classify] reports it as [Fall]. It returns nil for a nil err.
func Uncounted(err error) error {
	if err == nil {
		return nil
	}
	return &uncountedError{err}
}

func isUncounted(err error) bool { return errors.Is(err, errMarkUncounted) }

// Classify returns what err, from an attempt made under ctx, means for the
// ladder. ctx is the caller's context: when it is done, the failure is the
// caller's and not the tier's.
func Classify(ctx context.Context, err error) Outcome {
	switch {
	case err == nil:
		return OK
	case ctx.Err() != nil:
		return Abandon
	case isPermanent(err):
		// Marked by the one who decided: even an input error is then the
		// tier's failure.
		return Fall
	case errors.Is(err, tensor.ErrInvalidInput):
		return Reject
	case errors.Is(err, ErrOpen), errors.Is(err, ErrFull), errors.Is(err, ErrBudget):
		return Skip
	case errors.Is(err, ErrTimeout):
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

// State is a circuit breaker's state.
type State int

// The breaker states. The zero value is Closed.
const (
	// Closed: the tier is tried and its failures are counted.
	Closed State = iota
	// Open: the tier is skipped without an attempt until OpenFor passes.
	Open
	// HalfOpen: up to Probes requests at a time probe the tier; Probes
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
	From, To State
	At       time.Time // when the breaker changed state
}

// Status is a breaker's state as it stands, for health checks.
type Status struct {
	State State
	// Since is when the breaker entered State.
	Since time.Time
	// RetryAfter is when an open breaker lets probes through; zero in the
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
	// halfOpen: the breaker is half-open; the probes are gated by probe,
	// not by failsafe-go's permits, so that a probe which says nothing
	// about the tier (the caller left) gives its place back.
	openUntil atomic.Int64
	closed    atomic.Bool
	halfOpen  atomic.Bool
	since     atomic.Int64 // wall-clock Unix nanoseconds of the last change
	pendingOK atomic.Int64
	mirror    sync.Mutex // serialises updates of the mirror
	// transit serialises the transitions the tier makes itself (to
	// half-open when OpenFor has passed, and out of half-open), so a late
	// caller cannot act on a state that has already moved on.
	transit sync.Mutex

	probe struct {
		sync.Mutex
		round    uint64 // counts half-open rounds, so a late probe cannot count in the next
		inflight uint
		ok       uint
	}

	// Changes are recorded inside failsafe-go's state change callback and
	// delivered to onState after the call that caused them returns, so no
	// user code ever runs inside the breaker.
	changes struct {
		sync.Mutex
		queue []StateChange
	}
	hasChanges atomic.Bool
	onState    func(StateChange)

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
// onState, if not nil, is called for every breaker state change, in order,
// by the goroutine whose call caused it, after failsafe-go's breaker has
// released its lock: a panic in onState never reaches the breaker. A bad
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
	t := &Tier{cfg: cfg, onState: onState}
	t.since.Store(time.Now().UnixNano())
	cb = cb.OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
		// Runs inside failsafe-go's state change: record only.
		now := time.Now()
		t.syncMirror(now)
		t.changes.Lock()
		t.changes.queue = append(t.changes.queue, StateChange{From: state(e.OldState), To: state(e.NewState), At: now})
		t.changes.Unlock()
		t.hasChanges.Store(true)
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
func (t *Tier) syncMirror(now time.Time) {
	t.mirror.Lock()
	defer t.mirror.Unlock()
	t.since.Store(now.UnixNano())
	switch t.breaker.State() {
	case circuitbreaker.OpenState:
		t.closed.Store(false)
		t.halfOpen.Store(false)
		t.openUntil.Store(monotonic() + int64(max(t.breaker.RemainingDelay(), 1)))
	case circuitbreaker.HalfOpenState:
		t.probe.Lock()
		t.probe.round++
		t.probe.inflight, t.probe.ok = 0, 0
		t.probe.Unlock()
		t.closed.Store(false)
		t.openUntil.Store(0)
		t.halfOpen.Store(true)
	default:
		t.openUntil.Store(0)
		t.halfOpen.Store(false)
		t.closed.Store(t.cfg.Window == 0)
	}
}

// flush delivers the recorded state changes to onState, outside every
// lock.
func (t *Tier) flush() {
	if !t.hasChanges.Load() {
		return
	}
	t.changes.Lock()
	q := t.changes.queue
	t.changes.queue = nil
	t.hasChanges.Store(false)
	t.changes.Unlock()
	if t.onState == nil {
		return
	}
	for _, c := range q {
		t.onState(c)
	}
}

// epoch anchors monotonic.
var epoch = time.Now()

// monotonic returns nanoseconds since epoch on the monotonic clock.
func monotonic() int64 { return int64(time.Since(epoch)) }

func state(s circuitbreaker.State) State {
	switch s {
	case circuitbreaker.OpenState:
		return Open
	case circuitbreaker.HalfOpenState:
		return HalfOpen
	}
	return Closed
}

// Config returns the tier's settings with every default filled in.
func (t *Tier) Config() Config { return t.cfg }

// State returns the breaker's state. An open breaker whose OpenFor has
// passed is moved to [HalfOpen] first, as the next request would find it.
func (t *Tier) State() State { return t.Status().State }

// Status returns the breaker's state, since when, and for an open breaker
// when it lets probes through. An open breaker whose OpenFor has passed is
// moved to [HalfOpen] first, so a healed tier is not reported open until
// traffic happens to probe it.
func (t *Tier) Status() Status {
	t.probeDue()
	t.flush()
	t.mirror.Lock()
	defer t.mirror.Unlock()
	s := Status{State: state(t.breaker.State()), Since: time.Unix(0, t.since.Load())}
	if s.State == Open {
		s.RetryAfter = time.Now().Add(t.breaker.RemainingDelay())
	}
	return s
}

// probeDue moves an open breaker whose OpenFor has passed to half-open,
// and reports whether it did or the breaker was already half-open.
func (t *Tier) probeDue() bool {
	until := t.openUntil.Load()
	if until == 0 || monotonic() < until {
		return t.halfOpen.Load()
	}
	t.transit.Lock()
	if t.breaker.IsOpen() && t.breaker.RemainingDelay() <= 0 {
		t.breaker.HalfOpen()
	}
	t.transit.Unlock()
	return t.halfOpen.Load()
}

// Do runs attempt on inputs under the tier's policies and returns the
// result, the number of attempts that ran, and the last error. A tier that
// refuses at once (open breaker, full bulkhead) returns 0 attempts and an
// error matching [ErrOpen] or [ErrFull]. Only failures that [Classify]
// reports as [Retry] are retried, with backoff, within the retry budget.
// When a retry is refused (the breaker opened, the budget is spent) the
// error joins the last attempt's own error with the refusal.
func (t *Tier) Do(ctx context.Context, inputs []tensor.Tensor, attempt Attempt) ([]tensor.Tensor, int, error) {
	t.budget.RecordExecution()
	out, ran, err := t.once(ctx, inputs, attempt)
	t.budget.ReleaseExecution()
	if err == nil || !ran || Classify(ctx, err) != Retry || t.cfg.MaxAttempts < 2 {
		t.flush()
		return out, b2i(ran), err
	}

	// Slow path: failsafe-go's retry executor replays the first failure as
	// its own first attempt, then schedules the retries.
	attempts := 1
	last := err
	out, err = t.retry.WithContext(ctx).GetWithExecution(func(exec failsafe.Execution[[]tensor.Tensor]) ([]tensor.Tensor, error) {
		if exec.Attempts() == 1 {
			return nil, last
		}
		out, ran, err := t.once(exec.Context(), inputs, attempt)
		if ran {
			attempts++
			if err != nil {
				last = err
			}
		}
		return out, err
	})
	t.flush()
	switch {
	case err != nil && ctx.Err() != nil:
		err = ctx.Err()
	case err != nil && Classify(ctx, err) == Skip && !errors.Is(last, err):
		// The retry was refused: keep the real failure that led to it.
		err = errors.Join(last, err)
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
	if !closed && t.probeDue() {
		return t.probeOnce(ctx, inputs, attempt)
	}
	if !closed && !t.breaker.TryAcquirePermit() {
		return nil, false, ErrOpen
	}
	out, err := attempt(ctx, inputs)
	switch o := Classify(ctx, err); {
	case o == OK && closed:
		t.pendingOK.Add(1)
	case o == OK:
		t.breaker.RecordSuccess()
	case o.Counts() && !isUncounted(err):
		for n := min(t.pendingOK.Swap(0), int64(t.cfg.Executions)); n > 0; n-- {
			t.breaker.RecordSuccess()
		}
		t.breaker.RecordFailure()
	}
	return out, true, err
}

// probeOnce makes one half-open probe. At most Probes run at once; Probes
// successes in a round close the breaker and a counted failure opens it.
// A probe that says nothing about the tier (the caller left, the input
// was refused, a repeat of a counted failure) gives its place back, so it
// never costs the round its progress.
func (t *Tier) probeOnce(ctx context.Context, inputs []tensor.Tensor, attempt Attempt) ([]tensor.Tensor, bool, error) {
	t.probe.Lock()
	round := t.probe.round
	if !t.halfOpen.Load() || t.probe.inflight+t.probe.ok >= t.cfg.Probes {
		t.probe.Unlock()
		return nil, false, ErrOpen
	}
	t.probe.inflight++
	t.probe.Unlock()

	out, err := attempt(ctx, inputs)
	o := Classify(ctx, err)
	t.probe.Lock()
	if t.probe.round != round {
		t.probe.Unlock() // the round this probe belonged to is over
		return out, true, err
	}
	t.probe.inflight--
	closeNow, openNow := false, false
	switch {
	case o == OK:
		t.probe.ok++
		closeNow = t.probe.ok >= t.cfg.Probes
	case o.Counts() && !isUncounted(err):
		openNow = true
	}
	t.probe.Unlock()
	if closeNow || openNow {
		t.transit.Lock()
		t.probe.Lock()
		current := t.probe.round == round
		t.probe.Unlock()
		if current && t.breaker.IsHalfOpen() {
			if closeNow {
				t.breaker.Close()
			} else {
				t.breaker.Open()
			}
		}
		t.transit.Unlock()
	}
	return out, true, err
}
