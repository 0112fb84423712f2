package clock_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/clock"
)

var start = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func TestAFakeFiresItsTimersInOrderAsItAdvances(t *testing.T) {
	// Given a fake clock with three timers,
	f := clock.NewFake(start)
	late, early, never := f.NewTimer(3*time.Second), f.NewTimer(time.Second), f.NewTimer(time.Hour)
	if n := f.Timers(); n != 3 {
		t.Fatalf("Timers() = %d, want 3", n)
	}
	// when it advances past two of them,
	f.Advance(5 * time.Second)
	// then those two fire at their own times, and the third has not.
	if got := <-early.C(); !got.Equal(start.Add(time.Second)) {
		t.Fatalf("early fired at %v", got)
	}
	if got := <-late.C(); !got.Equal(start.Add(3 * time.Second)) {
		t.Fatalf("late fired at %v", got)
	}
	select {
	case v := <-never.C():
		t.Fatalf("a timer due in an hour fired at %v", v)
	default:
	}
	if got := f.Now(); !got.Equal(start.Add(5 * time.Second)) {
		t.Fatalf("Now() = %v", got)
	}
	if !never.Stop() || never.Stop() {
		t.Fatal("Stop reports an armed timer once")
	}
	if n := f.Timers(); n != 0 {
		t.Fatalf("Timers() = %d after the rest stopped, want 0", n)
	}
}

func TestAFakeTimerResetLeavesNoStaleValue(t *testing.T) {
	f := clock.NewFake(start)
	tm := f.NewTimer(time.Second)
	f.Advance(time.Second) // fired, value not received
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a fired timer reports it active")
	}
	select {
	case v := <-tm.C():
		t.Fatalf("a stale value %v was received after Reset", v)
	default:
	}
	f.Advance(time.Second)
	if got := <-tm.C(); !got.Equal(start.Add(2 * time.Second)) {
		t.Fatalf("fired at %v", got)
	}
	if tm := f.NewTimer(0); (<-tm.C()).IsZero() {
		t.Fatal("a timer of 0 fires at once with the time")
	}
}

func TestWaitTimersWaitsForAGoroutineToArmItsTimer(t *testing.T) {
	f := clock.NewFake(start)
	fired := make(chan time.Time)
	go func() {
		tm := f.NewTimer(time.Minute)
		fired <- <-tm.C()
	}()
	if !f.WaitTimers(1, 10*time.Second) {
		t.Fatal("the goroutine's timer was never armed")
	}
	f.Advance(time.Minute)
	if got := <-fired; !got.Equal(start.Add(time.Minute)) {
		t.Fatalf("fired at %v", got)
	}
	if f.WaitTimers(1, time.Millisecond) {
		t.Fatal("WaitTimers reports a timer that fired as armed")
	}
}

func TestSetMovesBackWithoutFiring(t *testing.T) {
	f := clock.NewFake(start)
	tm := f.NewTimer(time.Second)
	f.Set(start.Add(-time.Hour))
	if !f.Now().Equal(start.Add(-time.Hour)) || f.Timers() != 1 {
		t.Fatalf("Set back: Now %v, %d timers", f.Now(), f.Timers())
	}
	f.Set(start.Add(time.Second))
	<-tm.C()
}

func TestOrAndIsReal(t *testing.T) {
	if clock.Or(nil) != clock.Real || !clock.IsReal(nil) || !clock.IsReal(clock.Real) || clock.IsReal(clock.NewFake(start)) {
		t.Fatal("Or/IsReal disagree on the real clock")
	}
	if d := time.Since(clock.Real.Now()); d < 0 || d > time.Minute {
		t.Fatalf("Real.Now is %v from time.Now", d)
	}
}

// A test moves a Fake instead of sleeping.
func ExampleFake() {
	f := clock.NewFake(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	t := f.NewTimer(30 * time.Second)
	f.Advance(time.Minute)
	fmt.Println((<-t.C()).Format(time.TimeOnly), f.Now().Format(time.TimeOnly))
	// Output: 12:00:30 12:01:00
}
