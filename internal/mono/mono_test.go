package mono

import (
	"testing"
	"time"
)

func TestTimeFollowsTheWallClock(t *testing.T) {
	// Given readings taken beside time.Now, over more than one anchor,
	for range 3 {
		before := time.Now()
		got := Time(Now())
		after := time.Now()
		// then each reading's time lies between the two wall clock reads,
		// on both the wall and the monotonic clock.
		if got.Before(before) || got.After(after) {
			t.Fatalf("Time(Now()) = %v, not within [%v, %v]", got, before, after)
		}
		if w := got.Round(0); w.Before(before.Round(0)) || w.After(after.Round(0)) {
			t.Fatalf("wall time %v not within [%v, %v]", w, before.Round(0), after.Round(0))
		}
		// Age the anchor past reanchor, consistently with the wall clock,
		// so the next reading takes a new one without waiting for it.
		a := current.Load()
		old := 2 * time.Duration(reanchor)
		current.Store(&anchor{t: a.t.Add(-old), mono: a.mono - int64(old), unix: a.unix - int64(old)})
	}
}

func TestOfIsTheInverseOfTime(t *testing.T) {
	n := Now()
	if Unix(n) != Time(n).UnixNano() {
		t.Fatalf("Unix(%d) = %d, Time(%[1]d).UnixNano() = %d", n, Unix(n), Time(n).UnixNano())
	}
	if got := Of(Time(n)); got != n {
		t.Fatalf("Of(Time(%d)) = %d", n, got)
	}
	if d := Of(time.Now()) - Now(); d > int64(time.Millisecond) || d < -int64(time.Millisecond) {
		t.Fatalf("Of(time.Now()) is %v from Now()", time.Duration(d))
	}
}

func TestAStepOfTheWallClockIsNoticedWithinASecond(t *testing.T) {
	// Given an anchor whose wall time is an hour off, as after a step of
	// the wall clock,
	old := current.Load()
	defer current.Store(old)
	n := Now()
	stale := time.Now().Add(-time.Hour).Round(0)
	current.Store(&anchor{t: stale, mono: n, unix: stale.UnixNano()})
	// then readings within a second of it keep its wall time,
	if got := Time(n).Round(0); time.Since(got) < 59*time.Minute || Unix(n) != got.UnixNano() {
		t.Fatalf("a fresh anchor was replaced: %v, %v", got, time.Unix(0, Unix(n)))
	}
	// and a reading more than a second later takes a new anchor.
	if got := Time(n + reanchor + 1).Round(0); time.Until(got) > 2*time.Second || time.Since(got) > time.Second {
		t.Fatalf("Time a second after a stale anchor = %v, want about now", got)
	}
}
