package policy_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
)

func in(v float32) []tensor.Tensor { return []tensor.Tensor{tensor.New("x", []int64{1}, []float32{v})} }

func TestEveryAttemptGetsOneVerdictAndReportsIt(t *testing.T) {
	ok := []tensor.Tensor{tensor.New("p", []int64{1}, []float32{0.5})}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	short, cancelShort := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancelShort()
	<-short.Done()
	bad := errors.New("not a probability")
	tests := []struct {
		name     string
		ctx      context.Context
		attempt  policy.Attempt
		validate func([]tensor.Tensor) error
		want     policy.Outcome
		attempts int
		counted  bool
	}{
		{name: "served", attempt: answer(ok, nil), want: policy.Served, attempts: 1},
		{name: "a transient error is retried once", attempt: answer(nil, errors.New("reset")), want: policy.Failed, attempts: 2, counted: true},
		{name: "a permanent error is not retried", attempt: answer(nil, policy.Permanent(errors.New("bad weights"))), want: policy.Failed, attempts: 1, counted: true},
		{name: "an invalid answer", attempt: answer(ok, nil), validate: func([]tensor.Tensor) error { return bad }, want: policy.InvalidOutput, attempts: 1, counted: true},
		{name: "a panic", attempt: func(context.Context, time.Duration, []tensor.Tensor) ([]tensor.Tensor, error) { panic("boom") }, want: policy.Panicked, attempts: 1, counted: true},
		{name: "a refusal of a fitting input", attempt: answer(nil, policy.Permanent(&tensor.InputError{Input: "x"})), want: policy.Refused, attempts: 1, counted: true},
		{name: "the caller's invalid input", attempt: answer(nil, &tensor.InputError{Input: "x"}), want: policy.InvalidInput, attempts: 1},
		{name: "a timeout", attempt: answer(nil, context.DeadlineExceeded), want: policy.TimedOut, attempts: 1, counted: true},
		{name: "the caller left", ctx: gone, attempt: answer(nil, errors.New("whatever")), want: policy.Canceled, attempts: 1},
		{name: "no time left before the caller's deadline", ctx: short, attempt: answer(ok, nil), want: policy.Canceled, attempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var done []policy.Done
			g, err := policy.New(policy.Config{Backoff: time.Microsecond, MaxBackoff: time.Microsecond}, policy.Options{
				Name: "m",
				OnDone: func(d policy.Done) {
					mu.Lock()
					done = append(done, d)
					mu.Unlock()
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			res := g.Do(ctx, policy.Call{Inputs: in(1), Version: "v1", Validate: tt.validate}, tt.attempt)
			// Then the call's verdict, its attempts and what each attempt
			// reported agree.
			if res.Outcome != tt.want || res.Attempts != tt.attempts || (tt.want == policy.Served) != (res.Err == nil) {
				t.Fatalf("result %+v; want %q after %d attempts", res, tt.want, tt.attempts)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(done) != tt.attempts {
				t.Fatalf("%d attempts reported, want %d: %+v", len(done), tt.attempts, done)
			}
			last := done[len(done)-1]
			if last.Outcome != tt.want || last.Counted != tt.counted || last.Member != "m" || last.Version != "v1" || last.Attempt != tt.attempts {
				t.Fatalf("last attempt reported %+v; want %q, counted %v", last, tt.want, tt.counted)
			}
			if tt.want == policy.Panicked {
				var pe *policy.PanicError
				if !errors.As(res.Err, &pe) || pe.Tier != "m" || pe.Value != "boom" || len(pe.Stack) == 0 {
					t.Fatalf("err %v; want a PanicError of member m with its stack", res.Err)
				}
			}
		})
	}
}

func answer(out []tensor.Tensor, err error) policy.Attempt {
	return func(context.Context, time.Duration, []tensor.Tensor) ([]tensor.Tensor, error) { return out, err }
}

func TestAPoisonInputCountsOnceWithinOpenFor(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	g, _ := policy.New(policy.Config{MaxAttempts: 1, OpenFor: time.Second}, policy.Options{Clock: clk})
	nan := answer(nil, policy.Permanent(errors.New("NaN output")))
	// Given one input that fails deterministically, repeated,
	first := g.Do(context.Background(), policy.Call{Inputs: in(1)}, nan)
	second := g.Do(context.Background(), policy.Call{Inputs: in(1)}, nan)
	// then the first failure counts, the repeat is poison and does not,
	if first.Outcome != policy.Failed || second.Outcome != policy.Poison {
		t.Fatalf("verdicts %q then %q; want error then poison", first.Outcome, second.Outcome)
	}
	// another input is judged on its own,
	if other := g.Do(context.Background(), policy.Call{Inputs: in(2)}, nan); other.Outcome != policy.Failed {
		t.Fatalf("another input: %q, want error", other.Outcome)
	}
	// and once OpenFor has passed on the guard's clock, the input counts
	// again.
	clk.Advance(time.Second)
	if again := g.Do(context.Background(), policy.Call{Inputs: in(1)}, nan); again.Outcome != policy.Failed {
		t.Fatalf("after OpenFor: %q, want error", again.Outcome)
	}
	// Transient errors and timeouts are never poison.
	for _, err := range []error{errors.New("reset"), policy.ErrTimeout} {
		for range 2 {
			if res := g.Do(context.Background(), policy.Call{Inputs: in(3)}, answer(nil, err)); res.Outcome == policy.Poison {
				t.Fatalf("%v judged poison", err)
			}
		}
	}
}

func TestResetClosesTheBreakerAndForgetsPoison(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	var changes []string
	g, _ := policy.New(policy.Config{MaxAttempts: 1, Executions: 2, FailureRate: 0.5, OpenFor: time.Hour},
		policy.Options{Clock: clk, OnStateChange: func(c policy.StateChange) { changes = append(changes, c.To.String()) }})
	nan := answer(nil, policy.Permanent(errors.New("NaN")))
	g.Do(context.Background(), policy.Call{Inputs: in(1)}, nan)
	if g.State() != policy.Open {
		t.Fatalf("state %v, want open", g.State())
	}
	// When the member is reset, as for a new version,
	g.Reset()
	// then it is closed at once, and the old poison input counts again.
	if s := g.Status(); s.State != policy.Closed || !s.Since.Equal(clk.Now()) {
		t.Fatalf("status %v after Reset, want closed since now", s)
	}
	if res := g.Do(context.Background(), policy.Call{Inputs: in(1)}, nan); res.Outcome != policy.Failed {
		t.Fatalf("the old poison input after Reset: %q, want a counted error", res.Outcome)
	}
	if len(changes) < 2 || changes[0] != "open" || changes[1] != "closed" {
		t.Fatalf("changes %v, want open, closed", changes)
	}
}

func TestAFullBulkheadIsASkipNotAFailure(t *testing.T) {
	g, _ := policy.New(policy.Config{MaxConcurrent: 1, MaxAttempts: 1}, policy.Options{})
	entered, release := make(chan struct{}), make(chan struct{})
	go g.Do(context.Background(), policy.Call{}, func(context.Context, time.Duration, []tensor.Tensor) ([]tensor.Tensor, error) {
		close(entered)
		<-release
		return nil, nil
	})
	<-entered
	res := g.Do(context.Background(), policy.Call{}, answer(nil, nil))
	close(release)
	if res.Outcome != policy.BulkheadFull || res.Attempts != 0 || !errors.Is(res.Err, policy.ErrFull) || !res.Outcome.Skipped() {
		t.Fatalf("result %+v; want a bulkhead skip with no attempt", res)
	}
}
