package policy

import (
	"hash/maphash"
	"sync/atomic"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/internal/mono"
	"github.com/ladder-ml/ladder/tensor"
)

// poisonSize is how many distinct failing inputs a guard remembers.
const poisonSize = 64

// poisonSet remembers the inputs that recently made a member fail
// deterministically, so that one client repeating a poison input cannot
// open the breaker for everyone: the poison-input rule. A deterministic
// failure on an input that already failed on this member within the
// window (its OpenFor) counts once; the repeats are [Poison], uncounted.
// Transient errors and timeouts are not subject to the rule: they are not
// tied to one input, and a hang costs a whole timeout each time, so the
// breaker must see every one.
type poisonSet struct {
	window int64 // how long a failing input is remembered, in nanoseconds
	seed   maphash.Seed
	next   atomic.Uint32
	slots  [poisonSize]struct {
		hash atomic.Uint64
		at   atomic.Int64 // a reading of the guard's clock
	}
}

func newSeed() maphash.Seed { return maphash.MakeSeed() }

// repeat records a deterministic failure on inputs at now, and reports
// whether the same input already failed within the window.
func (p *poisonSet) repeat(inputs []tensor.Tensor, now int64, clk mono.Reader) bool {
	k := cache.Key(inputs)
	if k == "" {
		return false
	}
	if now == 0 {
		now = clk.Now()
	}
	h := maphash.String(p.seed, k)
	for i := range p.slots {
		s := &p.slots[i]
		if s.hash.Load() == h && now-s.at.Load() < p.window {
			return true
		}
	}
	s := &p.slots[p.next.Add(1)%poisonSize]
	s.at.Store(now)
	s.hash.Store(h)
	return false
}

// clear forgets every input.
func (p *poisonSet) clear() {
	for i := range p.slots {
		p.slots[i].hash.Store(0)
	}
}
