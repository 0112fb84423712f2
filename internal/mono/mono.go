// Package mono reads the time for the request path at the cost of one
// read of the monotonic clock.
//
// time.Now reads two clocks, the wall clock and the monotonic one, and
// costs about twice what [Now] costs. A request reads [Now] once when it
// starts and once when it ends, and turns either reading into a
// [time.Time] with [Time] when it needs one (a stored answer's time, a
// health record): the wall time is the monotonic reading placed on an
// anchor taken with time.Now, so it follows the wall clock exactly while
// nobody sets it, and within a second of a step when somebody does.
package mono

import (
	"github.com/ladder-ml/ladder/clock"
	"sync/atomic"
	"time"
)

// epoch is the origin of [Now].
var epoch = time.Now()

// Now returns the nanoseconds since the process's clock epoch, on the
// monotonic clock.
func Now() int64 { return int64(time.Since(epoch)) }

// anchor is a time.Now reading, its [Now] and its Unix time.
type anchor struct {
	t    time.Time
	mono int64
	unix int64 // t.UnixNano()
}

var current atomic.Pointer[anchor]

// reanchor is how old the anchor may grow before [Time] takes a new one,
// which bounds how long a step of the wall clock goes unnoticed.
const reanchor = int64(time.Second)

func init() { current.Store(&anchor{t: epoch, mono: 0, unix: epoch.UnixNano()}) }

// Time returns the time of mono, a reading of [Now], with both its wall
// clock and monotonic readings, as time.Now would have returned it then.
func Time(mono int64) time.Time {
	a := at(mono)
	return a.t.Add(time.Duration(mono - a.mono))
}

// Unix returns the time of mono, a reading of [Now], in nanoseconds since
// the Unix epoch: [Time](mono).UnixNano(), for less.
func Unix(mono int64) int64 {
	a := at(mono)
	return a.unix + (mono - a.mono)
}

// at returns the anchor for mono, renewed when it is more than a second
// old.
func at(mono int64) *anchor {
	a := current.Load()
	if mono-a.mono > reanchor {
		t := time.Now()
		next := &anchor{t: t, mono: int64(t.Sub(epoch)), unix: t.UnixNano()}
		if current.CompareAndSwap(a, next) {
			a = next
		} else {
			a = current.Load()
		}
	}
	return a
}

// Of returns t as a reading of [Now]. t must carry a monotonic reading (it
// came from time.Now or [Time]); otherwise the result follows the wall
// clock.
func Of(t time.Time) int64 { return int64(t.Sub(epoch)) }

// Reader reads a [clock.Clock] as nanoseconds on one scale: [Now]'s on
// the real clock, which costs one read of the monotonic clock, and the
// clock's Unix nanoseconds on any other, such as a test's clock.Fake. The
// zero value reads the real clock. Readings of two Readers do not mix.
type Reader struct{ c clock.Clock }

// For returns the Reader of c; nil means the real clock.
func For(c clock.Clock) Reader {
	if clock.IsReal(c) {
		return Reader{}
	}
	return Reader{c}
}

// Real reports whether r reads the real clock.
func (r Reader) Real() bool { return r.c == nil }

// Now returns a reading.
func (r Reader) Now() int64 {
	if r.c == nil {
		return Now()
	}
	return r.c.Now().UnixNano()
}

// Time returns the time of ns, a reading of r.
func (r Reader) Time(ns int64) time.Time {
	if r.c == nil {
		return Time(ns)
	}
	return time.Unix(0, ns)
}

// Unix returns the time of ns, a reading of r, in Unix nanoseconds.
func (r Reader) Unix(ns int64) int64 {
	if r.c == nil {
		return Unix(ns)
	}
	return ns
}
