// Package cachetest checks that a store of last-good answers behaves as
// the router expects of its Config.Cache, as testing/slogtest does for
// slog handlers. A store behind a network (Redis, say) runs [Run] in its
// own tests against a real server.
package cachetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// Store is the router's [router.LastGood], the interface the suite checks.
// It is the router's own type, not a copy, so the two cannot drift; for
// that, cachetest imports the router, and the router's tests that run
// the suite are an external test package (router_test).
type Store = router.LastGood

// An Option changes how [Run] checks a store.
type Option func(*options)

type options struct {
	within time.Duration
}

// DefaultWithin is how soon after its context is done a store's call must
// return, unless [Within] says otherwise.
const DefaultWithin = time.Second

// Within sets how soon after its context is done a call must return: a
// store that promises less than [DefaultWithin], as a router's
// StoreTimeout may ask, checks that promise. d ≤ 0 means DefaultWithin.
func Within(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.within = d
		}
	}
}

// Run runs the conformance checks as subtests of t, each on a fresh, empty
// store from newStore, which closes it (with t.Cleanup) when the subtest
// ends. The checks:
//   - a key never put is not found, with a nil error: "not found" is not a
//     failure;
//   - an entry put is got back whole (outputs, tier, version, and Stored to
//     the millisecond, as put: not the time of the Put or the Get) once Put
//     returns, and a second Put replaces it;
//   - keys are apart: each key gets its own entry back, keys that differ
//     only in their last byte included, and a key never put is not found
//     beside ones that were;
//   - entries are copies: changing a tensor's data, shape or name, or the
//     list of outputs, after Put or after Get, changes nothing stored;
//   - a call whose context is done returns within a second ([Within]
//     changes the bound), either done or with an error matching the
//     context's; a call still running then fails the check and is left
//     running;
//   - concurrent Gets and Puts on shared keys are safe (run with -race)
//     and never see a torn entry.
func Run(t *testing.T, newStore func(t *testing.T) Store, opts ...Option) {
	t.Helper()
	o := options{within: DefaultWithin}
	for _, opt := range opts {
		opt(&o)
	}
	ctx := context.Background()
	// A minute old, and not on a whole second, so that a store keeping
	// Stored to the second, or stamping its own time, is caught.
	stored := time.Now().Add(-time.Minute).Truncate(time.Second).Add(123 * time.Millisecond)
	entry := func(p float32, version string) cache.Entry {
		return cache.Entry{
			Outputs: []tensor.Tensor{
				tensor.New("probability", []int64{1, 1}, []float32{p}),
				tensor.New("label", []int64{1}, []int64{int64(p * 10)}),
			},
			Tier: "primary", Version: version, Stored: stored,
		}
	}
	mustGet := func(t *testing.T, s Store, key string) (cache.Entry, bool) {
		t.Helper()
		e, ok, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		return e, ok
	}
	mustPut := func(t *testing.T, s Store, key string, e cache.Entry) {
		t.Helper()
		if err := s.Put(ctx, key, e); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
	}

	t.Run("a missing key is not found and no error", func(t *testing.T) {
		s := newStore(t)
		if e, ok := mustGet(t, s, "never-put"); ok {
			t.Fatalf("Get of a key never put found %+v", e)
		}
	})

	t.Run("an entry put is got back whole", func(t *testing.T) {
		s := newStore(t)
		want := entry(0.3, "7")
		mustPut(t, s, "k", want)
		got, ok := mustGet(t, s, "k")
		if !ok {
			t.Fatal("Get after Put found nothing")
		}
		if err := same(got, want); err != nil {
			t.Fatal(err)
		}
		mustPut(t, s, "k", entry(0.6, "8"))
		got, _ = mustGet(t, s, "k")
		if err := same(got, entry(0.6, "8")); err != nil {
			t.Fatalf("after a second Put: %v", err)
		}
	})

	t.Run("keys are apart", func(t *testing.T) {
		s := newStore(t)
		// Keys as cache.Key makes them, 32 hex digits, and short ones.
		long := strings.Repeat("0123456789abcdef", 2)
		keys := []string{"a", "b", long[:31] + "0", long[:31] + "1"}
		for i, k := range keys {
			mustPut(t, s, k, entry(float32(i+1)/10, fmt.Sprint(i)))
		}
		for i, k := range keys {
			got, ok := mustGet(t, s, k)
			if !ok {
				t.Fatalf("Get(%q) found nothing", k)
			}
			if err := same(got, entry(float32(i+1)/10, fmt.Sprint(i))); err != nil {
				t.Fatalf("Get(%q) did not return its own entry: %v", k, err)
			}
		}
		if e, ok := mustGet(t, s, long[:31]+"2"); ok {
			t.Fatalf("Get of a key never put, beside ones that were, found %+v", e)
		}
	})

	t.Run("entries are copies", func(t *testing.T) {
		s := newStore(t)
		e := entry(0.4, "1")
		mustPut(t, s, "k", e)
		change := func(e cache.Entry) {
			e.Outputs[0].Data.([]float32)[0] = 0.9
			e.Outputs[0].Shape[1] = 7
			e.Outputs[1].Data.([]int64)[0] = 9
			e.Outputs[1].Shape[0] = 5
			e.Outputs[1].Name = "changed"
			e.Outputs[0] = tensor.New("other", []int64{1}, []float32{0.8})
		}
		change(e)
		got, _ := mustGet(t, s, "k")
		if err := same(got, entry(0.4, "1")); err != nil {
			t.Fatalf("changing the entry after Put changed the store: %v", err)
		}
		change(got)
		again, _ := mustGet(t, s, "k")
		if err := same(again, entry(0.4, "1")); err != nil {
			t.Fatalf("changing what Get returned changed the store: %v", err)
		}
	})

	t.Run("a call whose context is done returns promptly", func(t *testing.T) {
		s := newStore(t)
		done, cancel := context.WithCancel(ctx)
		cancel()
		check := func(op string, call func() error) {
			// On a goroutine of its own, so that a call that hangs fails
			// the check instead of the whole test binary's timeout.
			res := make(chan error, 1)
			start := time.Now()
			go func() { res <- call() }()
			var err error
			// Real time: a store behind a network keeps its promise on
			// the real clock.
			bound := time.NewTimer(o.within)
			defer bound.Stop()
			select {
			case err = <-res:
			case <-bound.C:
				t.Errorf("%s with a done context has not returned after %v", op, o.within)
				return
			}
			if took := time.Since(start); took > o.within {
				t.Errorf("%s with a done context took %v", op, took)
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a done context: %v, want nil or an error matching context.Canceled", op, err)
			}
		}
		check("Put", func() error { return s.Put(done, "k", entry(0.2, "1")) })
		check("Get", func() error { _, _, err := s.Get(done, "k"); return err })
	})

	t.Run("concurrent use is safe", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					key := fmt.Sprint("k", i%5)
					p := float32(g*50+i) / 1000
					if err := s.Put(ctx, key, entry(p, "1")); err != nil {
						errs <- err
						return
					}
					e, ok, err := s.Get(ctx, key)
					if err != nil {
						errs <- err
						return
					}
					if ok {
						got := e.Outputs[0].Data.([]float32)[0]
						if err := same(e, entry(got, "1")); err != nil {
							errs <- fmt.Errorf("torn entry: %w", err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
}

// same reports how got differs from want, or nil.
func same(got, want cache.Entry) error {
	if got.Tier != want.Tier || got.Version != want.Version {
		return fmt.Errorf("got tier %q version %q, want %q %q", got.Tier, got.Version, want.Tier, want.Version)
	}
	if d := got.Stored.Sub(want.Stored).Abs(); d >= time.Millisecond {
		return fmt.Errorf("got Stored %v, want %v", got.Stored, want.Stored)
	}
	if len(got.Outputs) != len(want.Outputs) {
		return fmt.Errorf("got %d outputs, want %d", len(got.Outputs), len(want.Outputs))
	}
	for i, w := range want.Outputs {
		g := got.Outputs[i]
		if g.Name != w.Name || g.DType() != w.DType() || fmt.Sprint(g.Shape) != fmt.Sprint(w.Shape) || fmt.Sprint(g.Data) != fmt.Sprint(w.Data) {
			return fmt.Errorf("output %d: got %s %v %v, want %s %v %v", i, g.Name, g.Shape, g.Data, w.Name, w.Shape, w.Data)
		}
	}
	return nil
}
