package policy

import "testing"

func TestTheRetryBudgetBoundsRetriesInFlight(t *testing.T) {
	// Given a budget of 20% with at least three retries, and ten attempts
	// running,
	b := retryBudget{maxRate: 0.2, minRetries: 3}
	const running = 10
	// when retries ask for places, then the first three always get one,
	for i := range 3 {
		if !b.tryRetry(running) {
			t.Fatalf("retry %d refused below the minimum", i)
		}
	}
	// the fourth is refused, as 3 retries of 10 executions is above 20%,
	if b.tryRetry(running) {
		t.Fatal("a retry above the budget was allowed")
	}
	// requests waiting to retry count as executions too, so with five
	// more of them 3 of 15 is within the budget,
	b.waiting.Add(5)
	if !b.tryRetry(running) {
		t.Fatal("a retry within the budget was refused")
	}
	b.retryDone()
	b.waiting.Add(-5)
	// and a place comes back when a retry ends.
	b.retryDone()
	if !b.tryRetry(running) {
		t.Fatal("a retry below the minimum was refused after another ended")
	}
	if r := b.retries.Load(); r != 3 {
		t.Errorf("counts %d retries in flight, want 3", r)
	}
}
