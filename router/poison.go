package router

import (
	"context"
	"errors"
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/internal/executor"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
)

// poisonSize is how many distinct failing inputs a tier remembers.
const poisonSize = 64

// poisonSet remembers the inputs that recently made a tier fail, so that
// one client repeating a poison input cannot open the breaker for
// everyone: the poison-input rule. It covers the deterministic failures,
// those that the same input would repeat: an invalid output (NaN, wrong
// shape, refused by Check), a panic, an error marked [policy.Permanent],
// a refusal of an input that fits the ladder's contract. Such a failure on
// an input that already failed on this tier within the window (the tier's
// OpenFor) counts once against the breaker; the repeats fall at once,
// uncounted. Transient errors and timeouts are not subject to the rule:
// they are not tied to one input, and a hang costs a whole timeout each
// time, so the breaker must see every one.
type poisonSet struct {
	window int64 // how long a failing input is remembered, in nanoseconds
	next   atomic.Uint32
	slots  [poisonSize]struct {
		hash atomic.Uint64
		at   atomic.Int64 // Unix nanoseconds of the failure
	}
}

// judge returns err, marked [policy.Uncounted] when the same input failed
// on this tier within the window.
func (p *poisonSet) judge(r *Router, ctx context.Context, inputs []tensor.Tensor, err error) error {
	if ctx.Err() != nil || errors.Is(err, policy.ErrTimeout) {
		return err
	}
	if executor.Classify(ctx, err) != executor.Fall {
		return err // transient or a refusal: not tied to the input
	}
	k := cache.Key(inputs)
	if k == "" {
		return err
	}
	h := maphash.String(r.seed, k)
	now := time.Now().UnixNano()
	for i := range p.slots {
		s := &p.slots[i]
		if s.hash.Load() == h && now-s.at.Load() < p.window {
			return policy.Uncounted(err)
		}
	}
	s := &p.slots[p.next.Add(1)%poisonSize]
	s.at.Store(now)
	s.hash.Store(h)
	return err
}
