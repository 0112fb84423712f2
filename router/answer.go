package router

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
)

// Kind is what a rung of the ladder is, as [Answer].Kind reports it. The
// set is open: a package that provides a new kind of [Rung] declares its
// own Kind, such as Kind("ensemble").
type Kind string

// The kinds of the rungs the router builds itself.
const (
	KindModel     Kind = "model"     // a model tier
	KindCache     Kind = "cache"     // the last-good cache
	KindHeuristic Kind = "heuristic" // the heuristic function
	KindDefault   Kind = "default"   // the static default
)

// String returns the kind's name, e.g. "model".
func (k Kind) String() string { return string(k) }

// Answer is a prediction and where it came from. A degraded answer is
// still a success: [Router.Predict] returns it with a nil error.
type Answer struct {
	// Outputs are the served tensors, owned by the caller.
	Outputs []tensor.Tensor

	Tier     string // name of the rung that served: a tier name, "cache", "heuristic", "default" or a [Config].Rungs name
	Position int    // the rung's position in the ladder, from 0
	Kind     Kind   // what the rung is

	// Degraded is true when any rung but the first served.
	Degraded bool

	// Version is the model version that produced the outputs: the serving
	// tier's, or for a cached answer the version of the tier that stored
	// it. Empty for the heuristic and the default.
	Version string

	// Origin is the tier that produced a cached answer; empty otherwise.
	Origin string

	// Age is how old a cached answer is; zero otherwise.
	Age time.Duration

	// Attempts is the number of attempts the serving rung took.
	Attempts int

	// Fell lists, in order, the rungs tried before the one that served and
	// why each could not answer. It is nil when the first rung served.
	Fell []Fall

	// Latency is the time Predict took.
	Latency time.Duration
}

// Fall records why one rung could not answer a request.
type Fall struct {
	Tier     string         // the rung's name
	Position int            // the rung's position in the ladder, from 0
	Attempts int            // attempts that ran; 0 when the rung was skipped
	Outcome  policy.Outcome // the verdict, decided where the rung fell, e.g. "breaker_open"
	Err      error          // why it fell
}

func (f Fall) String() string {
	return fmt.Sprintf("%s (%d attempts): %v", f.Tier, f.Attempts, f.Err)
}

// Sentinel errors. Their text is part of the API.
var (
	// ErrNoAnswer matches every [*NoAnswerError]: no rung could answer
	// within the request's limits.
	ErrNoAnswer = errors.New("router: no tier could answer")

	// ErrInvalidOutput matches every [*OutputError].
	ErrInvalidOutput = errors.New("router: invalid model output")

	// ErrPanic matches every [*PanicError].
	ErrPanic = policy.ErrPanic

	// ErrNotCached is a cache rung's reason when it holds no answer for
	// the input.
	ErrNotCached error = &verdictError{"router: no cached answer for this input", NotCached}

	// ErrTooStale matches every [*StaleError].
	ErrTooStale = errors.New("router: cached answer too stale")

	// ErrNotAccepted is the reason of a rung the request ruled out, with
	// [LowestTier] or a negative [MaxStaleness].
	ErrNotAccepted error = &verdictError{"router: tier not accepted by this request", NotAccepted}

	// ErrAbandoned matches every [*AbandonedError].
	ErrAbandoned = errors.New("router: too many calls past their timeout still running")

	// ErrStore matches every [*StoreError].
	ErrStore = errors.New("router: last-good store failed")

	// ErrClosed is returned by Predict after [Router.Close].
	ErrClosed = errors.New("router: closed")

	// ErrInvalidConfig matches every configuration error from [New].
	ErrInvalidConfig = errors.New("router: invalid config")
)

// NoAnswerError reports that every rung fell. It unwraps to each rung's
// reason, so errors.Is and errors.As see them all.
type NoAnswerError struct {
	// Falls lists every rung in ladder order with why it could not answer.
	Falls []Fall
}

func (e *NoAnswerError) Error() string {
	var b strings.Builder
	b.WriteString(ErrNoAnswer.Error())
	for i, f := range e.Falls {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.String())
	}
	return b.String()
}

// Unwrap returns every rung's reason.
func (e *NoAnswerError) Unwrap() []error {
	errs := make([]error, len(e.Falls))
	for i, f := range e.Falls {
		errs[i] = f.Err
	}
	return errs
}

// Is reports whether target is [ErrNoAnswer].
func (e *NoAnswerError) Is(target error) bool { return target == ErrNoAnswer }

// OutputError reports an output that failed validation and was not served.
type OutputError struct {
	Tier    string // the rung whose answer was refused
	Output  string // the offending output's name
	Problem string // e.g. "NaN at element 3"
}

func (e *OutputError) Error() string {
	return fmt.Sprintf("router: invalid model output from %s: output %q: %s", e.Tier, e.Output, e.Problem)
}

// Is reports whether target is [ErrInvalidOutput].
func (e *OutputError) Is(target error) bool { return target == ErrInvalidOutput }

// Outcome returns [policy.InvalidOutput].
func (e *OutputError) Outcome() policy.Outcome { return policy.InvalidOutput }

// PanicError is a panic recovered from user code: a rung's model, or one
// of the user's hooks. It is [policy.PanicError], which a guard recovers.
type PanicError = policy.PanicError

// AdaptError reports that a tier's [Tier].Inputs could not adapt a
// request; the tier falls for that request.
type AdaptError struct {
	Tier string // the tier whose adapter failed
	Err  error  // the adapter's error
}

func (e *AdaptError) Error() string {
	return fmt.Sprintf("router: tier %s could not adapt the inputs: %v", e.Tier, e.Err)
}

// Unwrap returns the adapter's error.
func (e *AdaptError) Unwrap() error { return e.Err }

// AbandonedError reports a tier skipped because too many of its calls
// that the router stopped waiting for at their timeout are still running;
// or, with Tier "cache", a store of last-good answers skipped for the same
// reason.
// It matches [ErrAbandoned] and [policy.ErrFull]: like a full bulkhead, it
// is not counted against the tier's breaker.
type AbandonedError struct {
	Tier    string // the tier skipped, or "cache" for the store
	Running int64  // abandoned calls still running
}

func (e *AbandonedError) Error() string {
	return fmt.Sprintf("router: tier %s skipped: %d calls past their timeout still running", e.Tier, e.Running)
}

// Is reports whether target is [ErrAbandoned] or [policy.ErrFull].
func (e *AbandonedError) Is(target error) bool {
	return target == ErrAbandoned || target == policy.ErrFull
}

// Outcome returns [policy.Abandoned].
func (e *AbandonedError) Outcome() policy.Outcome { return policy.Abandoned }

// StaleError reports a cached answer older than the request accepts, or
// one stored further in the future than [MaxClockSkew] allows (a negative
// Age), whose age is unknown.
type StaleError struct {
	Age time.Duration // how old the cached answer is; negative when stored in the future
	Max time.Duration // the oldest answer the request accepts
}

func (e *StaleError) Error() string {
	if e.Age < 0 {
		ahead := -e.Age
		if ahead < 0 { // -math.MinInt64: an Age saturated by time.Time.Sub
			ahead = math.MaxInt64
		}
		return fmt.Sprintf("router: cached answer stored %v in the future, beyond the %v allowed for clock skew: its age is unknown", ahead.Round(time.Millisecond), MaxClockSkew)
	}
	return fmt.Sprintf("router: cached answer too stale: %v old, request accepts at most %v", e.Age.Round(time.Millisecond), e.Max)
}

// MaxClockSkew is how far in the future a cached answer's Stored time may
// lie, as when the machine that stored it in a shared store has a clock
// ahead of this one's: such an answer is taken as just stored (Age 0).
// One stored further in the future has an unknown age, and the cache rung
// falls with a [*StaleError] whose Age is negative.
const MaxClockSkew = time.Second

// Is reports whether target is [ErrTooStale].
func (e *StaleError) Is(target error) bool { return target == ErrTooStale }

// Outcome returns [TooStale].
func (e *StaleError) Outcome() policy.Outcome { return TooStale }

// StoreError reports that the last-good store ([Config].Cache) failed: a
// Get that returned an error or ran past its bound, in which case the
// cache rung falls, or a Put that failed, which is reported as a
// [StoreFailed] event and never fails the request.
type StoreError struct {
	// Op is the store's method that failed: "Get" or "Put".
	Op string
	// Err is the store's error.
	Err error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("router: last-good store %s failed: %v", e.Op, e.Err)
}

// Unwrap returns the store's error.
func (e *StoreError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrStore].
func (e *StoreError) Is(target error) bool { return target == ErrStore }

// Outcome returns [policy.Failed]: the store failed.
func (e *StoreError) Outcome() policy.Outcome { return policy.Failed }

// The verdicts of the router's own rungs, besides those of a guarded
// attempt ([policy.Outcome]).
const (
	// NotCached: the cache rung holds no answer for the input.
	NotCached policy.Outcome = "not_cached"
	// TooStale: the cached answer is older than the request accepts, or
	// its age is unknown.
	TooStale policy.Outcome = "too_stale"
	// NotAccepted: the request ruled the rung out ([LowestTier],
	// a negative [MaxStaleness]).
	NotAccepted policy.Outcome = "not_accepted"
	// Unavailable: the tier is loading or its probes found it unhealthy,
	// so it was skipped without an attempt.
	Unavailable policy.Outcome = "unavailable"
)

// verdictError is a sentinel error that states its verdict.
type verdictError struct {
	text    string
	outcome policy.Outcome
}

func (e *verdictError) Error() string           { return e.text }
func (e *verdictError) Outcome() policy.Outcome { return e.outcome }
