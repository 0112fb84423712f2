package router_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/cache"
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
