package policy_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
)

// A composite rung guards each member as a tier is guarded, and reads
// each attempt's verdict instead of judging its error again.
func ExampleGuard() {
	g, err := policy.New(policy.Config{MaxAttempts: 1}, policy.Options{
		Name:   "replica-1",
		OnDone: func(d policy.Done) { fmt.Println(d.Member, d.Attempt, d.Outcome, d.Counted) },
	})
	if err != nil {
		panic(err)
	}
	member := func(ctx context.Context, timeout time.Duration, in []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("connection reset")
	}
	res := g.Do(context.Background(), policy.Call{}, member)
	fmt.Println(res.Outcome, res.Attempts, res.Err)
	// Output:
	// replica-1 1 error true
	// error 1 connection reset
}
