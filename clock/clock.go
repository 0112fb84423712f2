// Package clock is the time ladder reads: a [Clock] that the router, its
// tiers' guards, the cache, probes, reloads and watches all take, so that
// a test moves one [Fake] instead of sleeping.
//
// The zero value of every Clock setting in ladder means [Real]. On the
// real clock the request path reads the monotonic clock alone, which costs
// about half of time.Now; a Fake costs a lock per reading.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and makes timers. Implementations must be safe for
// concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once d
	// has passed, like [time.NewTimer].
	NewTimer(d time.Duration) Timer
}

// Timer is a [Clock]'s timer, like [time.Timer]: its channel receives the
// time once the timer fires; Stop and Reset behave as time.Timer's do
// since Go 1.23 (no stale value is received after either returns).
type Timer interface {
	// C returns the channel on which the time is delivered.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether it stopped
	// the timer, false when it had already fired or been stopped.
	Stop() bool
	// Reset changes the timer to fire after d. It reports whether the
	// timer had been active.
	Reset(d time.Duration) bool
}

// Real is the system clock: time.Now and time.NewTimer.
var Real Clock = real{}

// Or returns c, or [Real] when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real
	}
	return c
}

// IsReal reports whether c is the system clock: nil or [Real].
func IsReal(c Clock) bool { return c == nil || c == Real }

type real struct{}

func (real) Now() time.Time { return time.Now() }

func (real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

// Fake is a [Clock] that moves only when told to, for tests: [Fake.Advance]
// moves it forward and fires the timers whose time has come, in order. It
// is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer  // armed timers
	changed chan struct{} // closed and replaced whenever a timer is armed
}

// NewFake returns a Fake clock that reads start until it is advanced.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, changed: make(chan struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires once the fake time has advanced by d.
// A timer of d ≤ 0 fires at once.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// Advance moves the fake time forward by d, firing, in order of their
// times, the timers due by then. Each timer's channel receives the time it
// was due at. A negative d is an error of the test and panics.
func (f *Fake) Advance(d time.Duration) {
	if d < 0 {
		panic("clock: Fake.Advance by a negative duration")
	}
	f.mu.Lock()
	end := f.now.Add(d)
	for {
		sort.SliceStable(f.timers, func(i, j int) bool { return f.timers[i].at.Before(f.timers[j].at) })
		if len(f.timers) == 0 || f.timers[0].at.After(end) {
			break
		}
		t := f.timers[0]
		f.timers = f.timers[1:]
		if t.at.After(f.now) {
			f.now = t.at
		}
		t.fire(t.at)
	}
	f.now = end
	f.mu.Unlock()
}

// Set moves the fake time to t, forward or back; moving it forward fires
// the timers due by then, as [Fake.Advance] does.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	d := t.Sub(f.now)
	if d < 0 {
		f.now = t
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	f.Advance(d)
}

// Timers returns how many timers are armed: made or reset and not yet
// fired or stopped.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// WaitTimers blocks until at least n timers are armed, or until timeout
// of real time passes, and reports whether they were. A test calls it
// before [Fake.Advance] to know that the goroutine it is about to wake
// has armed its timer.
func (f *Fake) WaitTimers(n int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		armed, changed := len(f.timers), f.changed
		f.mu.Unlock()
		if armed >= n {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

// fakeTimer is a timer of a Fake. Its fields are guarded by f.mu.
type fakeTimer struct {
	f     *Fake
	c     chan time.Time
	at    time.Time
	armed bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

// fire delivers at, dropping a value not yet received, as time.Timer does;
// f.mu is held.
func (t *fakeTimer) fire(at time.Time) {
	t.armed = false
	select {
	case <-t.c:
	default:
	}
	t.c <- at
}

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	was := t.disarm()
	select { // no stale value after Stop, as with time.Timer since Go 1.23
	case <-t.c:
	default:
	}
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	f := t.f
	f.mu.Lock()
	defer f.mu.Unlock()
	was := t.disarm()
	select {
	case <-t.c:
	default:
	}
	t.at = f.now.Add(d)
	if d <= 0 {
		t.fire(f.now)
		return was
	}
	t.armed = true
	f.timers = append(f.timers, t)
	close(f.changed)
	f.changed = make(chan struct{})
	return was
}

// disarm removes the timer from the armed ones; f.mu is held.
func (t *fakeTimer) disarm() bool {
	if !t.armed {
		return false
	}
	t.armed = false
	for i, x := range t.f.timers {
		if x == t {
			t.f.timers = append(t.f.timers[:i], t.f.timers[i+1:]...)
			break
		}
	}
	return true
}
