package policy_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/ladder-ml/ladder/clock"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
)

func TestJudge(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want policy.Outcome
	}{
		{"success", live, nil, policy.Served},
		{"model error", live, errors.New("connection reset"), policy.Failed},
		{"invalid input", live, fmt.Errorf("wrapped: %w", &tensor.InputError{Input: "x"}), policy.InvalidInput},
		{"caller cancelled", gone, errors.New("anything"), policy.Canceled},
		{"attempt timed out", live, fmt.Errorf("%w after 5ms", policy.ErrTimeout), policy.TimedOut},
		{"tier's own context ran out", live, context.DeadlineExceeded, policy.TimedOut},
		{"permanent", live, policy.Permanent(errors.New("NaN output")), policy.Failed},
		{"refused input that fits the contract", live, policy.Permanent(&tensor.InputError{Input: "x"}), policy.Refused},
		{"panic", live, policy.Permanent(&policy.PanicError{Tier: "t", Value: 1}), policy.Panicked},
		{"breaker open", live, policy.ErrOpen, policy.BreakerOpen},
		{"bulkhead full", live, policy.ErrFull, policy.BulkheadFull},
		{"budget spent", live, policy.ErrBudget, policy.BudgetSpent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := policy.Judge(tt.ctx, tt.err); got != tt.want {
				t.Fatalf("Judge = %v, want %v", got, tt.want)
			}
		})
	}
}

// New refuses what policy.Config.Resolve refuses (tested field by field in
// package policy), with the same error.
func TestNewRejectsBadConfig(t *testing.T) {
	_, err := policy.New(policy.Config{Jitter: 2}, policy.Options{})
	if !errors.Is(err, policy.ErrInvalidConfig) || !errorContains(err, "Jitter") {
		t.Fatalf("err = %v, want ErrInvalidConfig naming Jitter", err)
	}
}

func errorContains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}

func TestDefaults(t *testing.T) {
	p, err := policy.New(policy.Config{}, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := p.Config()
	if c.Timeout != 100*time.Millisecond || c.MaxAttempts != 2 || c.Executions != 30 || c.FailureRate != 0.5 ||
		c.OpenFor != time.Second || c.Trials != 3 || c.MaxConcurrent != 4*runtime.GOMAXPROCS(0) || c.RetryBudget != 0.2 {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestDoRetriesTransientFailuresAndTripsTheBreaker(t *testing.T) {
	var states []string
	p, err := policy.New(policy.Config{Backoff: time.Microsecond, MaxBackoff: time.Microsecond}, policy.Options{OnStateChange: func(c policy.StateChange) { states = append(states, c.From.String()+"→"+c.To.String()) }})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	fail := func(context.Context, time.Duration, []tensor.Tensor) ([]tensor.Tensor, error) {
		calls++
		return nil, errors.New("down")
	}
	// A single replica that fails every call trips within eight requests:
	// 15 failed attempts out of the last 30, each request making two.
	for i := 0; p.State() == policy.Closed; i++ {
		if i == 8 {
			t.Fatalf("breaker still closed after 8 failing requests and %d attempts", calls)
		}
		res := p.Do(context.Background(), policy.Call{}, fail)
		attempts, err := res.Attempts, res.Err
		if err == nil || attempts < 1 {
			t.Fatalf("request %d: attempts %d, err %v", i, attempts, err)
		}
	}
	if p.State() != policy.Open {
		t.Fatalf("state %s after persistent failures, want open (changes %v)", p.State(), states)
	}
	before := calls
	res := p.Do(context.Background(), policy.Call{}, fail)
	attempts, err := res.Attempts, res.Err
	if !errors.Is(err, policy.ErrOpen) || attempts != 0 || calls != before {
		t.Fatalf("open breaker: attempts %d, err %v, calls %d→%d", attempts, err, before, calls)
	}
	if len(states) == 0 || states[0] != "closed→open" {
		t.Errorf("state changes %v, want closed→open first", states)
	}
}

func TestDoDoesNotRetryDeterministicFailures(t *testing.T) {
	p, _ := policy.New(policy.Config{MaxAttempts: 5}, policy.Options{})
	for _, err := range []error{
		&tensor.InputError{Input: "x"},
		fmt.Errorf("%w after 1ms", policy.ErrTimeout),
		policy.Permanent(errors.New("NaN")),
	} {
		calls := 0
		res := p.Do(context.Background(), policy.Call{}, func(context.Context, time.Duration, []tensor.Tensor) ([]tensor.Tensor, error) {
			calls++
			return nil, err
		})
		attempts, got := res.Attempts, res.Err
		if calls != 1 || attempts != 1 || got == nil {
			t.Errorf("%v: %d calls, %d attempts, err %v; want exactly one", err, calls, attempts, got)
		}
	}
}

func TestBreakerIgnoresHistoryAndRareFailures(t *testing.T) {
	p, err := policy.New(policy.Config{MaxAttempts: 1}, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ok := func(context.Context, time.Duration, []tensor.Tensor) ([]tensor.Tensor, error) { return nil, nil }
	fail := func(context.Context, time.Duration, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("down")
	}

	// Given a tier that failed one call in ten for a long while,
	for i := range 3000 {
		attempt := ok
		if i%10 == 0 {
			attempt = fail
		}
		p.Do(context.Background(), policy.Call{}, attempt)
	}
	if p.State() != policy.Closed {
		t.Fatalf("10%% failures opened the breaker (%s)", p.State())
	}
	// when it starts failing every call, then its long healthy history
	// does not delay the breaker: 15 failures among the last 30 open it
	// (the window still holds one failure from before).
	for i := range 15 {
		if p.State() != policy.Closed {
			if i < 14 {
				t.Fatalf("opened after %d failures, want 14 or 15", i)
			}
			break
		}
		p.Do(context.Background(), policy.Call{}, fail)
	}
	if p.State() != policy.Open {
		t.Fatalf("state %s after 15 straight failures, want open", p.State())
	}
}

func TestStateChangesAreDeliveredOutsideTheBreaker(t *testing.T) {
	// Given a listener that panics on every breaker change,
	p, err := policy.New(policy.Config{Executions: 2, FailureRate: 0.5, MaxAttempts: 1}, policy.Options{OnStateChange: func(policy.StateChange) { panic("listener bug") }})
	if err != nil {
		t.Fatal(err)
	}
	fail := func(context.Context, time.Duration, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("down")
	}
	// when a failure opens the breaker,
	recovered := func() (v any) {
		defer func() { v = recover() }()
		p.Do(context.Background(), policy.Call{}, fail)
		return nil
	}()
	// then the panic neither ends the process inside failsafe-go's lock
	// nor reaches the caller, and the breaker works.
	if recovered != nil {
		t.Fatalf("the listener's panic reached the caller: %v", recovered)
	}
	if s := p.Status(); s.State != policy.Open || s.RetryAfter.IsZero() {
		t.Fatalf("status %v, want open with a retry time", s)
	}
	if res := p.Do(context.Background(), policy.Call{}, fail); !errors.Is(res.Err, policy.ErrOpen) || res.Attempts != 0 || res.Outcome != policy.BreakerOpen {
		n, err := res.Attempts, res.Err
		t.Fatalf("after the panic: %d attempts, %v; want the open breaker's refusal", n, err)
	}
}

func TestUncountedFailuresDoNotOpenTheBreaker(t *testing.T) {
	p, _ := policy.New(policy.Config{}, policy.Options{})
	calls := 0
	repeat := func(context.Context, time.Duration, []tensor.Tensor) ([]tensor.Tensor, error) {
		calls++
		return nil, policy.Uncounted(errors.New("same poison input"))
	}
	for range 100 {
		if res := p.Do(context.Background(), policy.Call{}, repeat); res.Outcome != policy.Failed || res.Attempts != 1 {
			t.Fatalf("err %v judged %v after %d attempts, want one failed attempt", res.Err, res.Outcome, res.Attempts)
		}
	}
	if calls != 100 || p.State() != policy.Closed {
		t.Fatalf("%d calls, state %v; want 100 calls, not retried, and a closed breaker", calls, p.State())
	}
}

func TestAHalfOpenProbeTheCallerLeftGivesItsPlaceBack(t *testing.T) {
	var changes []string
	clk := clock.NewFake(time.Now())
	p, _ := policy.New(policy.Config{Executions: 2, FailureRate: 0.5, MaxAttempts: 1, OpenFor: 10 * time.Millisecond},
		policy.Options{Clock: clk, OnStateChange: func(c policy.StateChange) { changes = append(changes, c.To.String()) }})
	ok := func(ctx context.Context, _ time.Duration, _ []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, ctx.Err()
	}
	fail := func(context.Context, time.Duration, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("down")
	}
	// Given a breaker that opened and whose OpenFor has passed,
	p.Do(context.Background(), policy.Call{}, fail)
	if s := p.Status(); s.State != policy.Open || !s.RetryAfter.Equal(clk.Now().Add(10*time.Millisecond)) {
		t.Fatalf("status %v, want open until OpenFor from now on the guard's clock", s)
	}
	clk.Advance(10 * time.Millisecond)
	if s := p.State(); s != policy.HalfOpen {
		t.Fatalf("state %v after OpenFor, want half-open", s)
	}
	// when every other probe's caller leaves,
	for i := range 6 {
		ctx, cancel := context.WithCancel(context.Background())
		if i%2 == 1 {
			cancel()
		}
		p.Do(ctx, policy.Call{}, ok)
		cancel()
	}
	// then three good trials close it, and it never reopened.
	if s := p.State(); s != policy.Closed {
		t.Fatalf("state %v after three good trials, want closed (changes %v)", s, changes)
	}
	if strings.Join(changes, ",") != "open,half-open,closed" {
		t.Errorf("changes %v, want open, half-open, closed", changes)
	}
}

func TestATimedOutRetryIsNotRetriedAgain(t *testing.T) {
	// Given a guard of three attempts whose member fails once, then
	// times out,
	g, err := policy.New(policy.Config{MaxAttempts: 3, Backoff: time.Microsecond, MaxBackoff: time.Microsecond, Jitter: -1, RetryBudget: 1}, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	res := g.Do(context.Background(), policy.Call{}, func(context.Context, time.Duration, []tensor.Tensor) ([]tensor.Tensor, error) {
		if n.Add(1) == 1 {
			return nil, errors.New("connection reset")
		}
		return nil, fmt.Errorf("%w after 1ms", policy.ErrTimeout)
	})
	// then the timeout ends the call: a timed-out member is never retried.
	if n.Load() != 2 || res.Outcome != policy.TimedOut {
		t.Fatalf("ran %d attempts, outcome %v; want 2 and %v", n.Load(), res.Outcome, policy.TimedOut)
	}
}
