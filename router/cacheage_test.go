package router_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// cacheBehindAnOpenPrimary returns a router whose primary's breaker is
// open, so requests skip it without an attempt and reach the cache; hook
// runs in OnEvent on each of the primary's falls, and store is the cache.
func cacheBehindAnOpenPrimary(t *testing.T, maxStale time.Duration, hook func()) (*router.Router, *cache.Store, []tensor.Tensor) {
	t.Helper()
	store, err := cache.New(cache.Config{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	down := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("primary down")
	})
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: down,
			Policy: policy.Config{MaxAttempts: 1, Executions: 1, FailureRate: 1, OpenFor: time.Hour}}},
		Cache:        store,
		MaxStaleness: maxStale,
		Heuristic: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{0.1})}, nil
		},
		OnEvent: func(ev router.Event) {
			if ev.Kind == router.Fell && ev.Tier == "primary" {
				hook()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	in := []tensor.Tensor{tensor.New("x", []int64{1, 1}, []float32{1})}
	if _, err := r.Predict(context.Background(), in); err != nil { // opens the breaker
		t.Fatal(err)
	}
	if s := r.Health()["primary"].State; s != policy.Open {
		t.Fatalf("the primary's breaker is %v, want open", s)
	}
	return r, store, in
}

func cached(v float32, at time.Time) cache.Entry {
	return cache.Entry{Outputs: []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{v})}, Tier: "primary", Version: "v1", Stored: at}
}

// A cached answer's age is taken when the cache is read: time the request
// spent before it (here a slow event hook after the primary was skipped)
// makes the answer older, and one older than MaxStaleness is not served.
func TestACachedAnswerOlderThanMaxStalenessWhenReadIsNotServed(t *testing.T) {
	noLeaks(t)
	var slow atomic.Bool
	r, store, in := cacheBehindAnOpenPrimary(t, 30*time.Millisecond, func() {
		if slow.Load() {
			time.Sleep(80 * time.Millisecond)
		}
	})
	// Given an answer cached just now,
	if err := store.Put(context.Background(), cache.Key(in), cached(0.9, time.Now())); err != nil {
		t.Fatal(err)
	}
	// when a request reads it 80ms later, after the primary was skipped,
	slow.Store(true)
	a, err := r.Predict(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	// then it is 80ms old, past MaxStaleness, and not served.
	if a.Tier == router.RungCache {
		t.Fatalf("served from the cache with Age %v, though the answer was at least 80ms old and MaxStaleness is 30ms", a.Age)
	}
}

// An answer stored after the request started (by another request ending
// meanwhile) is served with an age of zero or more, never a negative one.
func TestACachedAnswerStoredDuringTheRequestHasNoNegativeAge(t *testing.T) {
	noLeaks(t)
	var store *cache.Store
	var key atomic.Pointer[string]
	r, s, in := cacheBehindAnOpenPrimary(t, time.Minute, func() {
		if k := key.Load(); k != nil {
			time.Sleep(5 * time.Millisecond)
			_ = store.Put(context.Background(), *k, cached(0.9, time.Now()))
		}
	})
	store = s
	k := cache.Key(in)
	key.Store(&k)
	a, err := r.Predict(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if a.Tier != router.RungCache || a.Age < 0 {
		t.Fatalf("served by %s with Age %v; want the cache, with an age of zero or more", a.Tier, a.Age)
	}
}

// A router on a clock of its own (a test's clock, frozen) keeps storing
// its tiers' answers as last-good answers after the cache's TTL has
// passed: the entry that expired is stored again by the next answer.
func TestAFrozenClockStillRefillsTheCacheAfterItsTTL(t *testing.T) {
	noLeaks(t)
	store, err := cache.New(cache.Config{TTL: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var fail atomic.Bool
	primary := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		if fail.Load() {
			return nil, errors.New("primary down")
		}
		return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{0.9})}, nil
	})
	frozen := time.Now()
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: primary, Policy: policy.Config{MaxAttempts: 1}}},
		Cache: store,
		Clock: clock.NewFake(frozen),
		Heuristic: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{0.1})}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	in := []tensor.Tensor{tensor.New("x", []int64{1, 1}, []float32{1})}
	// Given an answer stored, then expired,
	if _, err := r.Predict(ctx, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(40 * time.Millisecond)
	// when the primary answers again,
	if a, err := r.Predict(ctx, in); err != nil || a.Tier != "primary" {
		t.Fatalf("got %+v, %v; want the primary", a, err)
	}
	time.Sleep(10 * time.Millisecond) // an offered write is visible within about a millisecond
	// then once it fails, its answer is served from the cache.
	fail.Store(true)
	if a, err := r.Predict(ctx, in); err != nil || a.Tier != router.RungCache {
		t.Fatalf("got %+v, %v; want the cache", a, err)
	}
}
