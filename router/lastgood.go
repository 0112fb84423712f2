package router

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/policy"
)

// LastGood is the store of last-good answers that the cache rung reads
// and model tiers write. [*cache.Store] implements it in process; a store
// behind a network (Redis, say) implements it too, and proves it with
// package cache/cachetest. The router calls it concurrently, so it must be
// safe for concurrent use.
//
// Get returns the entry stored under key. Not finding one is not an
// error: it returns false and a nil error. An error means the store could
// not answer (it is down, or ctx ended first); the cache rung then falls,
// with a [*StoreError] in its [Fall], and the request moves on. Put
// stores e under key; its error is reported as a [StoreFailed] event and
// never fails the request. Both must return soon after ctx is done: the
// router bounds each call of a store other than *cache.Store with
// [Config].StoreTimeout and the request's deadline budget, and stops
// waiting at that bound even for a store that ignores ctx. The router
// recovers a panic in either method: a Get that panics makes the cache
// rung fall, a Put that panics loses that write.
type LastGood interface {
	Get(ctx context.Context, key string) (e cache.Entry, found bool, err error)
	Put(ctx context.Context, key string, e cache.Entry) error
}

// Offerer is a [LastGood] that can take a write without making the request
// wait: [*cache.Store] queues it for its own goroutine. Like LastGood it
// must be safe for concurrent use. The router then
// calls Offer instead of Put to store a last-good answer, so requests never
// wait for the store. Offer must not block; it reports whether the write
// was accepted, and a write it drops is lost, which a last-good cache can
// afford.
type Offerer interface {
	Offer(key string, e cache.Entry) bool
}

// defaultStoreTimeout is the default of [Config].StoreTimeout.
const defaultStoreTimeout = 20 * time.Millisecond

// cacheRung is the last-good cache in one ladder.
type cacheRung struct {
	l     *ladder
	below bool // a rung follows, so a read keeps a reserve
}

func (c *cacheRung) Name() string { return RungCache }
func (c *cacheRung) Kind() Kind   { return KindCache }

// Serve answers from the store, if it holds a fresh and valid answer for
// the request's key.
func (c *cacheRung) Serve(ctx context.Context, req Request) (a Answer, err error) {
	if req.MaxStaleness <= 0 {
		return Answer{}, ErrNotAccepted
	}
	defer func() {
		if v := recover(); v != nil {
			a, err = Answer{}, &PanicError{Tier: RungCache, Hook: "Cache.Get", Value: v, Stack: debug.Stack()}
		}
	}()
	key := req.Key()
	if key == "" {
		return Answer{}, ErrNotCached
	}
	e, ok, err := c.get(ctx, key)
	switch {
	case ctx.Err() != nil:
		return Answer{}, ctx.Err()
	case err != nil:
		if pe, ok := err.(*PanicError); ok {
			return Answer{}, pe
		}
		return Answer{}, &StoreError{Op: "Get", Err: err}
	case !ok:
		return Answer{}, ErrNotCached
	}
	l := c.l
	// The age is taken now, after the read: the request's last reading may
	// predate time spent since (a skipped tier's hooks, a store's Get) and
	// even the answer's own storing by a request that ended meanwhile.
	age := l.clk.Time(l.clk.Now()).Sub(e.Stored)
	if age < 0 && age >= -MaxClockSkew {
		age = 0 // stored by a clock a little ahead of this one's
	}
	if age > req.MaxStaleness || age < 0 {
		if l.r.events.active() {
			l.r.emit(Event{Kind: CacheStale, Tier: RungCache, Position: l.position(RungCache), Age: age})
		}
		return Answer{}, &StaleError{Age: age, Max: req.MaxStaleness}
	}
	if err := l.validate(RungCache, e.Outputs); err != nil {
		return Answer{}, err
	}
	return Answer{Outputs: e.Outputs, Version: e.Version, Origin: e.Tier, Age: age}, nil
}

// get reads key from the store. A *cache.Store never blocks and is called
// as it is; any other store is bounded by the store timeout and the
// request's deadline budget, even one that ignores ctx.
func (c *cacheRung) get(ctx context.Context, key string) (cache.Entry, bool, error) {
	l := c.l
	if l.inproc {
		return l.store.Get(ctx, key)
	}
	reserve := 0.0
	if c.below {
		reserve = l.reserve
	}
	d := policy.Budget(ctx, l.storeTimeout, reserve)
	if d <= 0 {
		return cache.Entry{}, false, fmt.Errorf("no time left before the caller's deadline: %w", context.DeadlineExceeded)
	}
	got, err := bounded(ctx, &l.r.storeCalls, d, "Cache.Get", func(ctx context.Context) (found, error) {
		e, ok, err := l.store.Get(ctx, key)
		return found{e, ok}, err
	})
	return got.e, got.ok, err
}

// found is what a store's Get returns.
type found struct {
	e  cache.Entry
	ok bool
}

// maxStoreCalls is how many calls to a store that the router stopped
// waiting for may still run; beyond it, the store is not called until
// they return.
const maxStoreCalls = 64

// bounded runs call on a helper goroutine under a context that ends after
// d, and stops waiting for it then, even when the store ignores ctx. A
// panic in call is returned as a *PanicError of hook. Calls it stopped
// waiting for are counted in running until they return; while
// maxStoreCalls of them still run, bounded refuses at once with an
// *AbandonedError.
func bounded[T any](ctx context.Context, running *atomic.Int64, d time.Duration, hook string, call func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	if n := running.Load(); n >= maxStoreCalls {
		return zero, &AbandonedError{Tier: RungCache, Running: n}
	}
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	c := &boundedCall[T]{done: make(chan struct{})}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				c.out, c.err = zero, &PanicError{Tier: RungCache, Hook: hook, Value: v, Stack: debug.Stack()}
			}
			close(c.done)
			if !c.state.CompareAndSwap(callRunning, callFinished) {
				running.Add(-1)
			}
		}()
		c.out, c.err = call(tctx)
	}()
	select {
	case <-c.done:
	case <-tctx.Done():
		if c.state.CompareAndSwap(callRunning, callAbandoned) {
			running.Add(1)
			return zero, fmt.Errorf("no answer within %v: %w", d, tctx.Err())
		}
		<-c.done // it has just finished
	}
	if c.err != nil && ctx.Err() == nil && tctx.Err() != nil {
		return zero, fmt.Errorf("no answer within %v: %w", d, c.err)
	}
	return c.out, c.err
}

// boundedCall is one store call on a helper goroutine. Its results are
// read only once done is closed.
type boundedCall[T any] struct {
	done  chan struct{}
	out   T
	err   error
	state atomic.Int32 // callRunning, callFinished or callAbandoned
}

// remember stores a validated model answer as the last good one: through
// Offer when the store has it, else through a Put bounded by the store
// timeout. A failure is reported, never returned.
func (l *ladder) remember(ctx context.Context, key string, e cache.Entry) {
	if key == "" {
		return
	}
	if l.offer != nil {
		l.offerSafe(key, e)
		return
	}
	_, err := bounded(ctx, &l.r.storeCalls, l.storeTimeout, "Cache.Put", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, l.store.Put(ctx, key, e)
	})
	var pe *PanicError
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.As(err, &pe):
		l.r.events.hookPanicked(pe)
	case l.r.events.active():
		l.r.emit(Event{Kind: StoreFailed, Tier: RungCache, Position: l.position(RungCache), Err: &StoreError{Op: "Put", Err: err}})
	}
}

// offerSafe offers e to the store, recovering its panic.
func (l *ladder) offerSafe(key string, e cache.Entry) {
	defer func() {
		if v := recover(); v != nil {
			l.r.hookPanicked("Cache.Put", RungCache, v)
		}
	}()
	l.offer.Offer(key, e)
}
