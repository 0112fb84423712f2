package executor

import "testing"

func TestTheRetryBudgetBoundsRetriesInFlight(t *testing.T) {
	// Given a budget of 20% with at least three retries, and ten requests
	// in flight,
	b := retryBudget{maxRate: 0.2, minRetries: 3}
	for range 10 {
		b.start()
	}
	// when retries ask for places, then the first three always get one,
	for i := range 3 {
		if !b.tryRetry() {
			t.Fatalf("retry %d refused below the minimum", i)
		}
	}
	// the fourth is refused, as 3 retries of 13 executions is above 20%,
	if b.tryRetry() {
		t.Fatal("a retry above the budget was allowed")
	}
	// and a place comes back when a retry ends.
	b.retryDone()
	if !b.tryRetry() {
		t.Fatal("a retry below the minimum was refused after another ended")
	}
	if r, n := b.retries.Load(), b.executions.Load(); r != 3 || n != 13 {
		t.Errorf("counts %d retries of %d executions, want 3 of 13", r, n)
	}
}
