package policy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ladder-ml/ladder/internal/mark"
	"github.com/ladder-ml/ladder/tensor"
)

// Outcome is the verdict on one try at a rung: what its result means for
// the ladder. It is decided once, where the try ends ([Judge], or a
// [Guard] for its attempts), and read everywhere else: breakers, the
// poison-input rule, the router's falls and events, HTTP headers and
// metric labels. Its text is a short stable label, such as
// "breaker_open".
//
// The set is open, like the router's Kind: package policy declares the
// verdicts of a guarded attempt, and the router declares those of its own
// rungs (a cache miss, say). An error reports its own verdict by having a
// method Outcome() Outcome.
type Outcome string

// The verdicts of a guarded attempt.
const (
	// Served: the attempt answered, and the answer passed validation.
	Served Outcome = "served"
	// Failed: the model failed with an error of its own. Counted against
	// the breaker; retried unless marked [Permanent].
	Failed Outcome = "error"
	// TimedOut: the attempt ran past its timeout, or past the time left
	// before the caller's deadline. Counted, unless there was no time left
	// to try at all, and never retried on the same member.
	TimedOut Outcome = "timeout"
	// InvalidOutput: the answer failed validation (NaN, the output
	// contract, a Check). Counted, not retried.
	InvalidOutput Outcome = "invalid_output"
	// Panicked: the model panicked. Counted, not retried.
	Panicked Outcome = "panic"
	// Refused: the model refused an input that fits the ladder's input
	// contract, which makes it the model's failure, not the caller's.
	// Counted, not retried.
	Refused Outcome = "refused"
	// Poison: a deterministic failure (invalid output, panic, refusal, an
	// error marked Permanent) on an input that already failed that way on
	// the same member within its OpenFor. Not counted: one client
	// repeating a poison input cannot open the breaker for everyone.
	Poison Outcome = "poison"
	// InvalidInput: the caller's input is invalid. Nothing is counted or
	// retried, and no other rung is tried: the error is the caller's.
	InvalidInput Outcome = "invalid_input"
	// Canceled: the caller's context ended. Nothing is counted.
	Canceled Outcome = "canceled"
	// BreakerOpen: skipped without an attempt, because the breaker is open
	// or its half-open trials are all taken.
	BreakerOpen Outcome = "breaker_open"
	// BulkheadFull: skipped without an attempt, because MaxConcurrent
	// attempts are running.
	BulkheadFull Outcome = "bulkhead_full"
	// BudgetSpent: a retry refused because the retry budget is spent.
	BudgetSpent Outcome = "retry_budget"
	// Abandoned: skipped without an attempt, because too many calls the
	// guard stopped waiting for at their timeout are still running.
	Abandoned Outcome = "abandoned"
)

// String returns the verdict's label.
func (o Outcome) String() string { return string(o) }

// Skipped reports whether the verdict is a refusal without an attempt:
// [BreakerOpen], [BulkheadFull], [BudgetSpent] or [Abandoned].
func (o Outcome) Skipped() bool {
	return o == BreakerOpen || o == BulkheadFull || o == BudgetSpent || o == Abandoned
}

// outcomer is an error that states its own verdict.
type outcomer interface{ Outcome() Outcome }

// Judge returns the verdict on err, the result of a try made under ctx,
// the caller's context: when ctx is done, the failure is the caller's,
// not the member's. It is the one place where an error is classified; a
// [Guard] uses it for every attempt, and the router for every rung.
func Judge(ctx context.Context, err error) Outcome {
	switch {
	case err == nil:
		return Served
	case err == ErrOpen: // the common skip, judged without unwrapping
		return BreakerOpen
	case ctx.Err() != nil:
		return Canceled
	}
	if o, ok := err.(outcomer); ok { // a sentinel of the router's, judged without allocating
		return o.Outcome()
	}
	var o outcomer
	if errors.As(err, &o) {
		return o.Outcome()
	}
	switch {
	case errors.Is(err, tensor.ErrInvalidInput):
		if mark.IsPermanent(err) {
			// Marked by the one who knew the input fits the contract.
			return Refused
		}
		return InvalidInput
	case errors.Is(err, ErrOpen):
		return BreakerOpen
	case errors.Is(err, ErrFull):
		return BulkheadFull
	case errors.Is(err, ErrBudget):
		return BudgetSpent
	case errors.Is(err, ErrTimeout), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// A context the member made itself ran out: a timeout by another
		// name.
		return TimedOut
	}
	return Failed
}

// Done is what one guarded attempt reports when it ends, through
// [Options].OnDone: the seam through which a composite rung, outlier
// ejection or a metrics adapter follows each member.
type Done struct {
	Member  string        // the guard's [Options].Name
	Version string        // the version the attempt ran on, from [Call].Version
	Attempt int           // 1 for the first attempt of a call, 2 for its retry, …
	Outcome Outcome       // the verdict
	Counted bool          // whether the breaker counted it
	Err     error         // the attempt's error; nil when Served
	Latency time.Duration // how long the attempt took
}

// ErrPanic matches every [*PanicError]. Its text is the router's API,
// which reports it.
var ErrPanic = errors.New("router: tier panicked")

// PanicError is a panic recovered from user code: a guarded model, or one
// of the user's hooks.
type PanicError struct {
	Tier string // the rung or member it happened on; "" for a hook outside any rung
	// Hook names the user's function that panicked when it was not the
	// rung's own model or function: "Check", "Key", "OnEvent", "Logger",
	// "Inputs", "Cache.Get", "Cache.Put", "Load", "Validate" or "Close" (a
	// model the router loaded, closed in the background).
	Hook  string
	Value any    // the value passed to panic
	Stack []byte // the panicking goroutine's stack
}

func (e *PanicError) Error() string {
	if e.Hook != "" {
		return fmt.Sprintf("router: hook %s panicked: %v", e.Hook, e.Value)
	}
	return fmt.Sprintf("router: tier %s panicked: %v", e.Tier, e.Value)
}

// Is reports whether target is [ErrPanic].
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Outcome returns [Panicked].
func (e *PanicError) Outcome() Outcome { return Panicked }
