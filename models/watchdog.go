//go:build cgo

package models

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/internal/mono"
)

// watchdog enforces the timeouts of a Model's runs with one timer for the
// whole Model instead of one timer armed and stopped per run: a run only
// writes its deadline into its scratch, and the timer, armed for the
// earliest deadline it knows, terminates the runs that are late when it
// fires and re-arms for the next. With a fixed timeout each new deadline
// is later than the one armed, so a run touches no lock and no runtime
// timer; the timer fires about once per timeout while runs keep coming,
// and not at all when they stop.
//
// A scratch's deadline is 0 while no timeout watches it, the monotonic
// instant (by mono.Now) when its run is late while one does,
// and fired once the watchdog has claimed the run to terminate it.
type watchdog struct {
	// next is when the timer fires: 0 when it is not armed, scanning while
	// the timer's callback runs, so a run that reads either takes mu.
	next atomic.Int64

	mu       sync.Mutex // guards the timer, the scratches and changes to next
	timer    *time.Timer
	scratchs map[*scratch]struct{} // every live scratch of the Model
}

const (
	fired    int64 = -1
	scanning int64 = math.MaxInt64
)

func (w *watchdog) add(s *scratch) {
	w.mu.Lock()
	if w.scratchs == nil {
		w.scratchs = map[*scratch]struct{}{}
	}
	w.scratchs[s] = struct{}{}
	w.mu.Unlock()
}

func (w *watchdog) remove(s *scratch) {
	w.mu.Lock()
	delete(w.scratchs, s)
	if len(w.scratchs) == 0 && w.timer != nil {
		w.timer.Stop()
		w.next.Store(0)
	}
	w.mu.Unlock()
}

// watch sets s's deadline to timeout from now and makes sure the timer
// fires by then.
func (w *watchdog) watch(s *scratch, timeout time.Duration) {
	now := mono.Now()
	dl := now + int64(timeout)
	if dl <= 0 { // overflow: a timeout too long to matter
		dl = scanning - 1
	}
	s.deadline.Store(dl)
	// The callback sets next to scanning before it reads any deadline, so
	// a next read here that is neither 0 nor scanning was armed before the
	// callback could miss dl, and fires no later than dl.
	if n := w.next.Load(); n != 0 && n != scanning && n <= dl {
		return
	}
	w.mu.Lock()
	if n := w.next.Load(); n == 0 || n > dl {
		w.arm(dl, now)
	}
	w.mu.Unlock()
}

// arm makes the timer fire at the monotonic instant at. w.mu must be held.
func (w *watchdog) arm(at, now int64) {
	w.next.Store(at)
	d := time.Duration(max(at-now, 0))
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.fire)
		return
	}
	w.timer.Reset(d)
}

// fire terminates every run past its deadline and re-arms for the
// earliest deadline left, if any.
func (w *watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next.Store(scanning)
	now := mono.Now()
	next := int64(0)
	for s := range w.scratchs {
		dl := s.deadline.Load()
		switch {
		case dl <= 0:
		case dl <= now:
			if s.deadline.CompareAndSwap(dl, fired) {
				s.onTimeout()
			}
		case next == 0 || dl < next:
			next = dl
		}
	}
	if next == 0 {
		w.next.Store(0)
		return
	}
	w.arm(next, now)
}

// unwatch clears s's deadline, and reports whether the watchdog had
// already claimed the run, in which case its onTimeout has run or will
// run and signal s.fired.
func (w *watchdog) unwatch(s *scratch) (claimed bool) {
	dl := s.deadline.Load()
	if dl != fired && s.deadline.CompareAndSwap(dl, 0) {
		return false
	}
	s.deadline.Store(0)
	return true
}
