package policy_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
)

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
