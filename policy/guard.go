package policy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/internal/mark"
	"github.com/ladder-ml/ladder/internal/mono"
	"github.com/ladder-ml/ladder/tensor"
)

// Options are a [Guard]'s settings besides its [Config]. The zero value
// means the defaults on each field.
type Options struct {
	// Name labels the guarded member in [Done] and in a [*PanicError].
	Name string
	// Clock times the breaker (OpenFor, its Since and RetryAfter) and the
	// poison window. Nil means [clock.Real].
	Clock clock.Clock
	// OnStateChange, when set, is called for every breaker state change,
	// in order, by the goroutine whose call caused it, after the breaker
	// has released its lock and before that call returns. A panic in it is
	// recovered and dropped; so is one in OnDone.
	OnStateChange func(StateChange)
	// OnDone, when set, is called after every attempt that ran, on the
	// goroutine that ran it, with the attempt's verdict. It is called
	// under no lock. Keep it fast: it runs on the request path.
	OnDone func(Done)
}

// Attempt is one try at a guarded member: it runs the member once on
// inputs and returns within timeout, the time [Guard.Do] gives the
// attempt. An Attempt that ignores ctx should bound itself by timeout.
type Attempt func(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error)

// Call is one request to a guarded member, for [Guard.Do].
type Call struct {
	// Inputs are passed to every attempt, and keyed by the poison rule.
	Inputs []tensor.Tensor
	// Version labels the attempts in [Done].
	Version string
	// Reserve is the fraction of the caller's remaining time, when ctx
	// has a deadline, that an attempt leaves to whatever follows it: an
	// attempt gets the smaller of the Timeout and the remaining time × (1
	// − Reserve). Zero keeps no reserve.
	Reserve float64
	// Validate, when set, checks every answer; an error makes the attempt
	// [InvalidOutput], counted against the breaker and not retried.
	Validate func(outputs []tensor.Tensor) error
	// At is a recent reading of [Guard.Now], which saves the call reading
	// the clock again; zero means the guard reads it.
	At int64
}

// Result is what [Guard.Do] returns.
type Result struct {
	Outputs  []tensor.Tensor // the answer; nil unless Outcome is Served
	Attempts int             // attempts that ran; 0 when skipped
	Outcome  Outcome         // the verdict of the call: its last attempt's, or why it was skipped
	Err      error           // why it failed; nil when Served
}

// Guard runs a member's attempts under the resilience of one [Config]: a
// circuit breaker, a bulkhead, a retry budget, retries with backoff and
// jitter, a per-attempt timeout budgeted against the caller's deadline,
// panic recovery, validation of every answer, and the poison-input rule.
// Each attempt's verdict is decided once ([Judge]) and reported through
// [Options].OnDone. A model tier of the router is a Guard around its
// model; a composite rung (replicas, a hedged pair, an ensemble) guards
// each of its members with one, exactly as a tier is guarded.
//
// failsafe-go is the engine: its circuit breaker counts the results and
// its retry policy schedules the retries. Guard owns two transitions
// itself: it moves an open breaker to half-open when OpenFor has passed
// on the guard's [clock.Clock], so that a test's clock.Fake drives the
// breaker (failsafe-go keeps its clock internal), and it gates the
// half-open trials, so that a trial that says nothing about the member
// (the caller left) gives its place back. A time-based breaker
// ([Config].Window) measures its window on failsafe-go's own clock, and
// retry backoffs (milliseconds) wait on the real clock.
//
// A Guard is safe for concurrent use. The first attempt of a call takes a
// path that allocates nothing; only a failure that deserves a retry
// enters failsafe-go's retry executor.
type Guard struct {
	// The breaker's state is mirrored in atomics so that the request path
	// takes no lock in the two states it spends nearly all its time in.
	//
	// openUntil: while the breaker is open, the reading of the guard's
	// clock until which calls skip the member.
	// closed: the breaker is closed and counts by executions, so attempts
	// need no permit and successes are only counted (pendingOK), to be
	// recorded in front of the next failure.
	// halfOpen: the breaker is half-open; the trials are gated by trial.
	openUntil atomic.Int64
	closed    atomic.Bool
	halfOpen  atomic.Bool
	since     atomic.Int64 // a reading of clk: the last change
	pendingOK atomic.Int64
	mirror    sync.Mutex // serialises updates of the mirror
	// transit serialises the transitions the guard makes itself.
	transit sync.Mutex

	trial struct {
		sync.Mutex
		round    uint64 // counts half-open rounds, so a late trial cannot count in the next
		inflight uint
		ok       uint
	}

	// Changes are recorded inside failsafe-go's state change callback and
	// delivered after the call that caused them returns, so no user code
	// ever runs inside the breaker.
	changes struct {
		sync.Mutex
		queue []StateChange
	}
	hasChanges atomic.Bool

	opts    Options
	clk     mono.Reader
	cfg     Config
	breaker circuitbreaker.CircuitBreaker[[]tensor.Tensor]
	// inflight counts the attempts running: the bulkhead. An atomic
	// counter rather than failsafe-go's channel-based bulkhead, which
	// costs two channel operations per attempt.
	inflight atomic.Int64
	budget   retryBudget
	retry    failsafe.Executor[[]tensor.Tensor]
	poison   poisonSet
}

// neverDelay is the delay failsafe-go's breaker is built with: the guard
// moves it to half-open itself, on its own clock.
const neverDelay = 100 * 365 * 24 * time.Hour

// New builds a guard from cfg, filling in defaults ([Config.Resolve]). A
// bad setting gives an error matching [ErrInvalidConfig].
func New(cfg Config, opts Options) (*Guard, error) {
	cfg, err := cfg.Resolve()
	if err != nil {
		return nil, err
	}
	g := &Guard{cfg: cfg, opts: opts, clk: mono.For(opts.Clock)}
	cb := circuitbreaker.NewBuilder[[]tensor.Tensor]().
		WithDelay(neverDelay).
		WithSuccessThreshold(cfg.Trials)
	if cfg.Window > 0 {
		cb = cb.WithFailureRateThreshold(cfg.FailureRate, cfg.Executions, cfg.Window)
	} else {
		failures := uint(math.Ceil(cfg.FailureRate * float64(cfg.Executions)))
		cb = cb.WithFailureThresholdRatio(max(failures, 1), cfg.Executions)
	}
	g.since.Store(g.clk.Now())
	cb = cb.OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
		// Runs inside failsafe-go's state change: record only.
		now := g.clk.Now()
		g.syncMirror(now)
		g.changes.Lock()
		g.changes.queue = append(g.changes.queue, StateChange{From: state(e.OldState), To: state(e.NewState), At: g.clk.Time(now)})
		g.changes.Unlock()
		g.hasChanges.Store(true)
	})
	rp := retrypolicy.NewBuilder[[]tensor.Tensor]().
		HandleIf(func(_ []tensor.Tensor, err error) bool { return err != nil }).
		// Only a Failed attempt is retried: a retry that timed out (or was
		// judged anything else) ends the call, as a first attempt would.
		AbortIf(func(_ []tensor.Tensor, err error) bool {
			return err != nil && (!retryable(err) || Judge(context.Background(), err) != Failed)
		}).
		WithMaxAttempts(cfg.MaxAttempts).
		WithBackoff(cfg.Backoff, cfg.MaxBackoff).
		ReturnLastFailure()
	if cfg.Jitter > 0 {
		rp = rp.WithJitterFactor(cfg.Jitter)
	}
	g.breaker = cb.Build()
	g.closed.Store(cfg.Window == 0)
	g.budget.maxRate, g.budget.minRetries = cfg.RetryBudget, 3
	g.retry = failsafe.With[[]tensor.Tensor](rp.Build())
	g.poison.window = int64(cfg.OpenFor)
	g.poison.seed = newSeed()
	return g, nil
}

// retryable reports whether a failed attempt's error, already judged
// [Failed], is worth another attempt: not one marked [Permanent], and not
// a refusal the retry executor itself produced.
func retryable(err error) bool {
	return !mark.IsPermanent(err) && !errors.Is(err, ErrBudget) && !errors.Is(err, ErrOpen) && !errors.Is(err, ErrFull)
}

// Config returns the guard's settings with every default filled in.
func (g *Guard) Config() Config { return g.cfg }

// Now returns a reading of the guard's clock in nanoseconds, for
// [Call].At. Readings are comparable only with the same guard's, or
// another's on the same clock.
func (g *Guard) Now() int64 { return g.clk.Now() }

// Skips reports whether the open breaker refuses a call at now, a reading
// of [Guard.Now], as [Guard.Do] would at once with [ErrOpen]. It reads
// two atomics, so a caller can skip the member before preparing a call.
func (g *Guard) Skips(now int64) bool {
	until := g.openUntil.Load()
	return until != 0 && now < until
}

// State returns the breaker's state. An open breaker whose OpenFor has
// passed is moved to half-open first, as the next call would find it.
func (g *Guard) State() State { return g.Status().State }

// Status returns the breaker's state, since when, and for an open breaker
// when it lets trials through. An open breaker whose OpenFor has passed is
// moved to half-open first, so a healed member is not reported open until
// traffic happens to try it.
func (g *Guard) Status() Status {
	g.trialDue(g.clk.Now())
	g.flush()
	g.mirror.Lock()
	defer g.mirror.Unlock()
	s := Status{State: state(g.breaker.State()), Since: g.clk.Time(g.since.Load())}
	if s.State == Open {
		s.RetryAfter = g.clk.Time(g.openUntil.Load())
	}
	return s
}

// Do runs attempt on call under the guard and returns its result. A
// member that refuses at once (open breaker, full bulkhead) returns 0
// attempts. Only [Failed] attempts not marked [Permanent] are retried,
// with backoff, within the retry budget; when a retry is refused (the
// breaker opened, the budget is spent) the error joins the last attempt's
// own error with the refusal, and the verdict stays the attempt's.
func (g *Guard) Do(ctx context.Context, call Call, attempt Attempt) Result {
	now := call.At
	if now == 0 {
		now = g.clk.Now()
	}
	out, ran, o, err := g.once(ctx, now, &call, attempt, 1)
	if o != Failed || !retryable(err) || g.cfg.MaxAttempts < 2 {
		g.flush()
		return Result{Outputs: out, Attempts: b2i(ran), Outcome: o, Err: err}
	}
	// Between its attempts the call counts as an execution of the retry
	// budget; during one, the bulkhead counts it (see retryBudget).
	g.budget.waiting.Add(1)

	// Slow path: failsafe-go's retry executor replays the first failure as
	// its own first attempt, then schedules the retries. It works on a
	// copy of the call, so that the fast path's call stays on the stack.
	return g.retryCall(ctx, call, attempt, err, o)
}

// retryCall retries a call whose first attempt failed with err, judged o.
func (g *Guard) retryCall(ctx context.Context, call Call, attempt Attempt, err error, o Outcome) Result {
	var out []tensor.Tensor
	attempts, last, lastO := 1, err, o
	out, err = g.retry.WithContext(ctx).GetWithExecution(func(exec failsafe.Execution[[]tensor.Tensor]) ([]tensor.Tensor, error) {
		if exec.Attempts() == 1 {
			return nil, last
		}
		if !g.budget.tryRetry(g.inflight.Load()) {
			return nil, ErrBudget
		}
		g.budget.waiting.Add(-1)
		out, ran, o, err := g.once(exec.Context(), g.clk.Now(), &call, attempt, attempts+1)
		g.budget.waiting.Add(1)
		g.budget.retryDone()
		if ran {
			attempts++
			if err != nil {
				last, lastO = err, o
			}
		}
		if o == Served {
			lastO = Served
		}
		return out, err
	})
	g.budget.waiting.Add(-1)
	g.flush()
	switch {
	case err == nil:
		return Result{Outputs: out, Attempts: attempts, Outcome: Served}
	case ctx.Err() != nil:
		return Result{Attempts: attempts, Outcome: Canceled, Err: ctx.Err()}
	case Judge(ctx, err).Skipped() && !errors.Is(last, err):
		// The retry was refused: keep the real failure that led to it.
		err = errors.Join(last, err)
	}
	return Result{Attempts: attempts, Outcome: lastO, Err: err}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// once makes one attempt if the bulkhead and breaker allow it, and
// records its verdict with the breaker.
func (g *Guard) once(ctx context.Context, now int64, call *Call, attempt Attempt, n int) ([]tensor.Tensor, bool, Outcome, error) {
	if g.Skips(now) {
		return nil, false, BreakerOpen, ErrOpen
	}
	if g.inflight.Add(1) > int64(g.cfg.MaxConcurrent) {
		g.inflight.Add(-1)
		return nil, false, BulkheadFull, ErrFull
	}
	defer g.inflight.Add(-1)
	closed := g.closed.Load()
	if !closed && g.trialDue(now) {
		return g.trialOnce(ctx, now, call, attempt, n)
	}
	if !closed && !g.breaker.TryAcquirePermit() {
		return nil, false, BreakerOpen, ErrOpen
	}
	out, o, counted, err := g.try(ctx, now, call, attempt, n)
	switch {
	case o == Served && closed:
		// Only the last Executions successes can matter; past them, the
		// count is left alone rather than written by every call.
		if g.pendingOK.Load() < int64(g.cfg.Executions) {
			g.pendingOK.Add(1)
		}
	case o == Served:
		g.breaker.RecordSuccess()
	case counted:
		for k := min(g.pendingOK.Swap(0), int64(g.cfg.Executions)); k > 0; k-- {
			g.breaker.RecordSuccess()
		}
		g.breaker.RecordFailure()
	}
	return out, true, o, err
}

// trialOnce makes one half-open trial. At most Trials run at once; Trials
// successes in a round close the breaker and a counted failure opens it.
// A trial that says nothing about the member (the caller left, the input
// was refused, a poison repeat) gives its place back.
func (g *Guard) trialOnce(ctx context.Context, now int64, call *Call, attempt Attempt, n int) ([]tensor.Tensor, bool, Outcome, error) {
	g.trial.Lock()
	round := g.trial.round
	if !g.halfOpen.Load() || g.trial.inflight+g.trial.ok >= g.cfg.Trials {
		g.trial.Unlock()
		return nil, false, BreakerOpen, ErrOpen
	}
	g.trial.inflight++
	g.trial.Unlock()

	out, o, counted, err := g.try(ctx, now, call, attempt, n)
	g.trial.Lock()
	if g.trial.round != round {
		g.trial.Unlock() // the round this trial belonged to is over
		return out, true, o, err
	}
	g.trial.inflight--
	closeNow, openNow := false, false
	switch {
	case o == Served:
		g.trial.ok++
		closeNow = g.trial.ok >= g.cfg.Trials
	case counted:
		openNow = true
	}
	g.trial.Unlock()
	if closeNow || openNow {
		g.transit.Lock()
		g.trial.Lock()
		current := g.trial.round == round
		g.trial.Unlock()
		if current && g.breaker.IsHalfOpen() {
			if closeNow {
				g.breaker.Close()
			} else {
				g.breaker.Open()
			}
		}
		g.transit.Unlock()
	}
	return out, true, o, err
}

// try runs one attempt: bounded by the timeout and the caller's deadline,
// with its panic (or its Validate's) recovered and its answer validated,
// and judges it once.
func (g *Guard) try(ctx context.Context, now int64, call *Call, attempt Attempt, n int) (out []tensor.Tensor, o Outcome, counted bool, err error) {
	var start int64
	if g.opts.OnDone != nil {
		start = g.clk.Now()
	}
	timeout := Budget(ctx, g.cfg.Timeout, call.Reserve)
	defer func() {
		if v := recover(); v != nil {
			pe := &PanicError{Tier: g.opts.Name, Value: v, Stack: debug.Stack()}
			out, o, counted, err = g.judge(ctx, now, call, timeout, nil, Permanent(pe), Panicked)
		}
		if g.opts.OnDone != nil {
			g.done(Done{Member: g.opts.Name, Version: call.Version, Attempt: n, Outcome: o, Counted: counted, Err: err,
				Latency: time.Duration(g.clk.Now() - start)})
		}
	}()
	if timeout <= 0 {
		if ctx.Err() != nil {
			return nil, Canceled, false, ctx.Err()
		}
		// Cut short by the caller's deadline: the member's timeout, but
		// one that says nothing of its health.
		return nil, TimedOut, false, Uncounted(fmt.Errorf("%w: no time left before the caller's deadline", ErrTimeout))
	}
	out, err = attempt(ctx, timeout, call.Inputs)
	if err == nil {
		if call.Validate == nil {
			return out, Served, false, nil
		}
		if err = call.Validate(out); err == nil {
			return out, Served, false, nil
		}
		// The same input would give the same bad output: not retried.
		return g.judge(ctx, now, call, timeout, nil, Permanent(err), InvalidOutput)
	}
	return g.judge(ctx, now, call, timeout, out, err, "")
}

// judge gives a failed attempt its verdict, o when the guard already
// knows it, and applies the poison rule.
func (g *Guard) judge(ctx context.Context, now int64, call *Call, timeout time.Duration, out []tensor.Tensor, err error, o Outcome) ([]tensor.Tensor, Outcome, bool, error) {
	if o == "" {
		o = Judge(ctx, err)
	}
	switch o {
	case Served:
		return out, o, false, nil
	case InvalidOutput, Panicked, Refused, Failed:
		if o != Failed || mark.IsPermanent(err) {
			// A deterministic failure: the poison rule applies.
			if !mark.IsUncounted(err) && g.poison.repeat(call.Inputs, now, g.clk) {
				return nil, Poison, false, Uncounted(err)
			}
		}
	case TimedOut:
		if ctx.Err() == nil && !errors.Is(err, ErrTimeout) && !mark.IsUncounted(err) {
			err = fmt.Errorf("%w after %v: %w", ErrTimeout, timeout, err)
		}
	case InvalidInput, Canceled:
		return nil, o, false, err
	}
	return nil, o, !o.Skipped() && !mark.IsUncounted(err), err
}

// done reports an attempt through OnDone, recovering its panic: a broken
// listener never changes an attempt's verdict.
func (g *Guard) done(d Done) {
	defer func() { _ = recover() }()
	g.opts.OnDone(d)
}

// Budget returns how long an attempt may take: timeout, shortened when ctx
// has a deadline to the remaining time less reserve, the fraction of it
// kept for what follows. It is zero or less when no time is left.
func Budget(ctx context.Context, timeout time.Duration, reserve float64) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return timeout
	}
	left := time.Until(dl)
	if reserve > 0 {
		left = time.Duration(float64(left) * (1 - reserve))
	}
	return min(timeout, left)
}

// syncMirror copies the breaker's current state into the atomics. It runs
// after every transition, under g.mirror, and reads the state afresh, so
// the last update always reflects the last transition.
func (g *Guard) syncMirror(now int64) {
	g.mirror.Lock()
	defer g.mirror.Unlock()
	g.since.Store(now)
	switch g.breaker.State() {
	case circuitbreaker.OpenState:
		g.closed.Store(false)
		g.halfOpen.Store(false)
		g.openUntil.Store(now + int64(max(g.cfg.OpenFor, 1)))
	case circuitbreaker.HalfOpenState:
		g.trial.Lock()
		g.trial.round++
		g.trial.inflight, g.trial.ok = 0, 0
		g.trial.Unlock()
		g.closed.Store(false)
		g.openUntil.Store(0)
		g.halfOpen.Store(true)
	default:
		g.openUntil.Store(0)
		g.halfOpen.Store(false)
		g.closed.Store(g.cfg.Window == 0)
	}
}

// flush delivers the recorded state changes to OnStateChange, outside
// every lock.
func (g *Guard) flush() {
	if g.hasChanges.Load() {
		g.deliver()
	}
}

// deliver is flush's slow path, out of line so that flush inlines.
func (g *Guard) deliver() {
	g.changes.Lock()
	q := g.changes.queue
	g.changes.queue = nil
	g.hasChanges.Store(false)
	g.changes.Unlock()
	if g.opts.OnStateChange == nil {
		return
	}
	for _, c := range q {
		g.changed(c)
	}
}

// changed reports one state change, recovering the listener's panic.
func (g *Guard) changed(c StateChange) {
	defer func() { _ = recover() }()
	g.opts.OnStateChange(c)
}

// trialDue moves an open breaker whose OpenFor has passed on the guard's
// clock to half-open, and reports whether it did or the breaker was
// already half-open.
func (g *Guard) trialDue(now int64) bool {
	until := g.openUntil.Load()
	if until == 0 || now < until {
		return g.halfOpen.Load()
	}
	g.transit.Lock()
	if g.breaker.IsOpen() && g.openUntil.Load() != 0 && now >= g.openUntil.Load() {
		g.breaker.HalfOpen()
	}
	g.transit.Unlock()
	return g.halfOpen.Load()
}

// Reset closes the breaker and forgets its counts, the half-open round
// and the poison inputs, as for a new version of the member that must
// not inherit the old one's failures. State changes are reported as
// usual.
func (g *Guard) Reset() {
	g.transit.Lock()
	g.pendingOK.Store(0)
	g.breaker.Close()
	g.transit.Unlock()
	g.poison.clear()
	g.flush()
}

func state(s circuitbreaker.State) State {
	switch s {
	case circuitbreaker.OpenState:
		return Open
	case circuitbreaker.HalfOpenState:
		return HalfOpen
	}
	return Closed
}

// retryBudget is the guard's retry budget: retries may be at most maxRate
// of the executions in flight, and at least minRetries may always run. It
// follows failsafe-go's budget (budget.Budget), whose counting methods
// failsafe-go does not promise to export. The executions in flight are
// the attempts running, which the bulkhead counts anyway, plus the calls
// waiting to retry, so a first attempt that succeeds costs the budget
// nothing.
type retryBudget struct {
	maxRate    float64
	minRetries int32
	waiting    atomic.Int32 // calls between attempts, waiting to retry
	retries    atomic.Int32 // retries in flight
}

// tryRetry takes a place for one retry, or reports that the budget is
// spent; running is the number of attempts running on the member.
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
