// Package executor runs a model tier's attempts under the failsafe-go
// policies built from its policy.Config, and classifies what each
// attempt's error means for the ladder. Only the router uses it.
//
// A [Tier] holds one model tier's circuit breaker, bulkhead, retry budget
// and retry policy, built once. [Tier.Do] runs attempts under them. The
// first attempt takes a fast path that uses the breaker, bulkhead and
// budget directly, with no per-call allocation; only a failed attempt that
// deserves a retry enters failsafe-go's retry executor, which adds
// exponential backoff with jitter, bounded by the retry budget.
//
// [Classify] decides what an error means for the ladder: retry on the same
// tier, fall to the next tier, skip the tier, or stop because the caller
// sent bad input or went away.
package executor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/ladder-ml/ladder/internal/mark"
	"github.com/ladder-ml/ladder/internal/mono"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
)

// Outcome is what an attempt's result means for the ladder.
type Outcome int

const (
	// OK: the tier answered.
	OK Outcome = iota
	// Retry: a transient failure. It counts against the breaker and the
	// request may try the same tier again.
	Retry
	// Fall: a failure not worth repeating on this tier (a timeout, an
	// invalid output, a panic, an error marked [policy.Permanent]). It counts
	// against the breaker, unless marked [policy.Uncounted], and the request
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

// Classify returns what err, from an attempt made under ctx, means for the
// ladder. ctx is the caller's context: when it is done, the failure is the
// caller's and not the tier's.
func Classify(ctx context.Context, err error) Outcome {
	switch {
	case err == nil:
		return OK
	case ctx.Err() != nil:
		return Abandon
	case mark.IsPermanent(err):
		// Marked by the one who decided: even an input error is then the
		// tier's failure.
		return Fall
	case errors.Is(err, tensor.ErrInvalidInput):
		return Reject
	case errors.Is(err, policy.ErrOpen), errors.Is(err, policy.ErrFull), errors.Is(err, policy.ErrBudget):
		return Skip
	case errors.Is(err, policy.ErrTimeout):
		return Fall
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// A context the tier made itself ran out: a timeout by another name.
		return Fall
	}
	return Retry
}

// retryBudget is the tier's retry budget: retries may be at most maxRate
// of the executions in flight, and at least minRetries may always run. It
// follows failsafe-go's budget (budget.Budget), whose counting methods
// failsafe-go does not promise to export. The executions in flight are
// the attempts running, which the bulkhead counts anyway, plus the
// requests waiting to retry, so a first attempt that succeeds costs the
// budget nothing.
type retryBudget struct {
	maxRate    float64
	minRetries int32
	waiting    atomic.Int32 // requests between attempts, waiting to retry
	retries    atomic.Int32 // retries in flight
}

// tryRetry takes a place for one retry, or reports that the budget is
// spent; running is the number of attempts running on the tier.
func (b *retryBudget) tryRetry(running int64) bool {
	if r := b.retries.Load(); r >= b.minRetries {
		if n := int64(b.waiting.Load()) + running; n > 0 && float64(r)/float64(n) > b.maxRate {
			return false
		}
	}
	b.retries.Add(1)
	return true
}

func (b *retryBudget) retryDone() { b.retries.Add(-1) }

// Tier holds one model tier's failsafe-go policies, built once. It is safe
// for concurrent use.
type Tier struct {
	// The breaker's state is mirrored in atomics so that the request path
	// takes no lock in the two states it spends nearly all its time in.
	// Under load a mutex asked on every request becomes the hot spot and
	// puts parked goroutines in the tail latency.
	//
	// openUntil: while the breaker is open, the instant (by mono.Now)
	// until which requests skip the tier.
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
		queue []policy.StateChange
	}
	hasChanges atomic.Bool
	onState    func(policy.StateChange)

	cfg     policy.Config
	breaker circuitbreaker.CircuitBreaker[[]tensor.Tensor]
	// inflight counts the attempts running: the bulkhead. An atomic
	// counter rather than failsafe-go's channel-based bulkhead, which costs
	// two channel operations (and the channel's lock) per attempt; the
	// bulkhead only ever refuses at once, never waits.
	inflight atomic.Int64
	budget   retryBudget
	retry    failsafe.Executor[[]tensor.Tensor]
}

// Attempt is one try at a tier: it runs the model once under ctx.
type Attempt func(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error)

// New builds a tier's policies from cfg, filling in defaults
// ([policy.Config.Resolve]). onState, if not nil, is called for every
// breaker state change, in order, by the goroutine whose call caused it, after failsafe-go's breaker has
// released its lock: a panic in onState never reaches the breaker. A bad
// setting gives an error matching [policy.ErrInvalidConfig].
func New(cfg policy.Config, onState func(policy.StateChange)) (*Tier, error) {
	cfg, err := cfg.Resolve()
	if err != nil {
		return nil, err
	}

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
		t.changes.queue = append(t.changes.queue, policy.StateChange{From: state(e.OldState), To: state(e.NewState), At: now})
		t.changes.Unlock()
		t.hasChanges.Store(true)
	})
	rp := retrypolicy.NewBuilder[[]tensor.Tensor]().
		HandleIf(func(_ []tensor.Tensor, err error) bool { return err != nil }).
		AbortIf(func(_ []tensor.Tensor, err error) bool {
			return err != nil && (errors.Is(err, tensor.ErrInvalidInput) || errors.Is(err, policy.ErrTimeout) ||
				errors.Is(err, policy.ErrOpen) || errors.Is(err, policy.ErrFull) || errors.Is(err, policy.ErrBudget) ||
				mark.IsPermanent(err))
		}).
		WithMaxAttempts(cfg.MaxAttempts).
		WithBackoff(cfg.Backoff, cfg.MaxBackoff).
		ReturnLastFailure()
	if cfg.Jitter > 0 {
		rp = rp.WithJitterFactor(cfg.Jitter)
	}
	t.breaker = cb.Build()
	t.closed.Store(cfg.Window == 0)
	t.budget.maxRate, t.budget.minRetries = cfg.RetryBudget, 3
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
		t.openUntil.Store(mono.Now() + int64(max(t.breaker.RemainingDelay(), 1)))
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

func state(s circuitbreaker.State) policy.State {
	switch s {
	case circuitbreaker.OpenState:
		return policy.Open
	case circuitbreaker.HalfOpenState:
		return policy.HalfOpen
	}
	return policy.Closed
}

// Config returns the tier's settings with every default filled in.
func (t *Tier) Config() policy.Config { return t.cfg }

// State returns the breaker's state. An open breaker whose OpenFor has
// passed is moved to half-open first, as the next request would find it.
func (t *Tier) State() policy.State { return t.Status().State }

// Status returns the breaker's state, since when, and for an open breaker
// when it lets probes through. An open breaker whose OpenFor has passed is
// moved to half-open first, so a healed tier is not reported open until
// traffic happens to probe it.
func (t *Tier) Status() policy.Status {
	t.probeDue(mono.Now())
	t.flush()
	t.mirror.Lock()
	defer t.mirror.Unlock()
	s := policy.Status{State: state(t.breaker.State()), Since: time.Unix(0, t.since.Load())}
	if s.State == policy.Open {
		s.RetryAfter = time.Now().Add(t.breaker.RemainingDelay())
	}
	return s
}

// probeDue moves an open breaker whose OpenFor has passed to half-open,
// and reports whether it did or the breaker was already half-open.
func (t *Tier) probeDue(now int64) bool {
	until := t.openUntil.Load()
	if until == 0 || now < until {
		return t.halfOpen.Load()
	}
	t.transit.Lock()
	if t.breaker.IsOpen() && t.breaker.RemainingDelay() <= 0 {
		t.breaker.HalfOpen()
	}
	t.transit.Unlock()
	return t.halfOpen.Load()
}

// Skips reports whether the tier's open breaker refuses a request at now,
// a reading of mono.Now, as [Tier.Do] would at once with
// [policy.ErrOpen]. It reads two atomics and nothing else, so a caller can
// skip the tier before preparing an attempt.
func (t *Tier) Skips(now int64) bool {
	until := t.openUntil.Load()
	return until != 0 && now < until
}

// Do runs attempt on inputs under the tier's policies and returns the
// result, the number of attempts that ran, and the last error. A tier that
// refuses at once (open breaker, full bulkhead) returns 0 attempts and an
// error matching [policy.ErrOpen] or [policy.ErrFull]. Only failures that [Classify]
// reports as [Retry] are retried, with backoff, within the retry budget.
// When a retry is refused (the breaker opened, the budget is spent) the
// error joins the last attempt's own error with the refusal.
//
// now is a recent reading of mono.Now, which saves the first attempt
// reading the clock again.
func (t *Tier) Do(ctx context.Context, now int64, inputs []tensor.Tensor, attempt Attempt) ([]tensor.Tensor, int, error) {
	out, ran, err := t.once(ctx, now, inputs, attempt)
	if err == nil || !ran || Classify(ctx, err) != Retry || t.cfg.MaxAttempts < 2 {
		t.flush()
		return out, b2i(ran), err
	}
	// Between its attempts the request counts as an execution of the
	// retry budget; during one, the bulkhead counts it (see retryBudget).
	t.budget.waiting.Add(1)

	// Slow path: failsafe-go's retry executor replays the first failure as
	// its own first attempt, then schedules the retries.
	attempts := 1
	last := err
	out, err = t.retry.WithContext(ctx).GetWithExecution(func(exec failsafe.Execution[[]tensor.Tensor]) ([]tensor.Tensor, error) {
		if exec.Attempts() == 1 {
			return nil, last
		}
		if !t.budget.tryRetry(t.inflight.Load()) {
			return nil, policy.ErrBudget
		}
		t.budget.waiting.Add(-1)
		out, ran, err := t.once(exec.Context(), mono.Now(), inputs, attempt)
		t.budget.waiting.Add(1)
		t.budget.retryDone()
		if ran {
			attempts++
			if err != nil {
				last = err
			}
		}
		return out, err
	})
	t.budget.waiting.Add(-1)
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
func (t *Tier) once(ctx context.Context, now int64, inputs []tensor.Tensor, attempt Attempt) ([]tensor.Tensor, bool, error) {
	if t.Skips(now) {
		return nil, false, policy.ErrOpen
	}
	if t.inflight.Add(1) > int64(t.cfg.MaxConcurrent) {
		t.inflight.Add(-1)
		return nil, false, policy.ErrFull
	}
	defer t.inflight.Add(-1)
	closed := t.closed.Load()
	if !closed && t.probeDue(now) {
		return t.probeOnce(ctx, inputs, attempt)
	}
	if !closed && !t.breaker.TryAcquirePermit() {
		return nil, false, policy.ErrOpen
	}
	out, err := attempt(ctx, inputs)
	switch o := Classify(ctx, err); {
	case o == OK && closed:
		// Only the last Executions successes can matter; past them, the
		// count is left alone rather than written by every request.
		if t.pendingOK.Load() < int64(t.cfg.Executions) {
			t.pendingOK.Add(1)
		}
	case o == OK:
		t.breaker.RecordSuccess()
	case o.Counts() && !mark.IsUncounted(err):
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
		return nil, false, policy.ErrOpen
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
	case o.Counts() && !mark.IsUncounted(err):
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
