package router_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/cache/cachetest"
	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// faultyStore is a last-good store behind a pretend network: a map whose
// Get and Put can fail, or hang until their context ends.
type faultyStore struct {
	store
	getErr, putErr error
	hang           atomic.Bool
	deaf           chan struct{} // when set, calls ignore ctx and wait for it to close
	gets, puts     atomic.Int32
	bound          chan time.Duration // receives each hanging call's bound
}

func newFaultyStore() *faultyStore {
	return &faultyStore{store: store{m: map[string]cache.Entry{}}, bound: make(chan time.Duration, 100)}
}

func (s *faultyStore) wait(ctx context.Context) error {
	if s.deaf != nil {
		<-s.deaf
		return errors.New("too late")
	}
	if dl, ok := ctx.Deadline(); ok {
		s.bound <- time.Until(dl)
	} else {
		s.bound <- -1
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *faultyStore) Get(ctx context.Context, k string) (cache.Entry, bool, error) {
	s.gets.Add(1)
	switch {
	case s.hang.Load():
		return cache.Entry{}, false, s.wait(ctx)
	case s.getErr != nil:
		return cache.Entry{}, false, s.getErr
	}
	return s.store.Get(ctx, k)
}

func (s *faultyStore) Put(ctx context.Context, k string, e cache.Entry) error {
	s.puts.Add(1)
	switch {
	case s.hang.Load():
		return s.wait(ctx)
	case s.putErr != nil:
		return s.putErr
	}
	return s.store.Put(ctx, k, e)
}

var errStoreDown = errors.New("redis: connection refused")

func TestAFailingStoreIsARungThatFalls(t *testing.T) {
	testenv.MustHaveRuntime(t)
	// Given a ladder whose store is down for reads and writes,
	var ev testenv.Events
	s := newFaultyStore()
	s.getErr, s.putErr = errStoreDown, errStoreDown
	l := newLadder(t, "primary.onnx", func(c *router.Config) {
		c.Cache, c.OnEvent = s, ev.Add
	})
	// when the primary serves, then the answer is served all the same and
	// the failed write is reported,
	if a := l.Predict(t, 0); a.Tier != "primary" {
		t.Fatalf("served by %s, want the primary", a.Tier)
	}
	failed := ev.Of(router.StoreFailed)
	var se *router.StoreError
	if len(failed) != 1 || !errors.As(failed[0].Err, &se) || se.Op != "Put" || !errors.Is(failed[0].Err, errStoreDown) {
		t.Fatalf("store-failed events %+v; want one for the Put, unwrapping the store's error", failed)
	}
	// and when the models are down, the cache rung falls with the store's
	// error, apart from "not found", and the heuristic serves.
	l.Primary.Set(chaos.Fault{ErrorRate: 1})
	l.Backup.Set(chaos.Fault{ErrorRate: 1})
	a := l.Predict(t, 0)
	f := a.Fell[2]
	if a.Tier != router.RungHeuristic || f.Tier != router.RungCache || !errors.Is(f.Err, router.ErrStore) ||
		!errors.Is(f.Err, errStoreDown) || errors.Is(f.Err, router.ErrNotCached) {
		t.Fatalf("got %+v; want the heuristic after the cache fell with the store's error", a)
	}
	if !errors.As(f.Err, &se) || se.Op != "Get" {
		t.Errorf("cache fell with %v, want a *StoreError of Get", f.Err)
	}
	// A consistency request that allows nothing below the cache gets a
	// typed error naming the store, not a hang and not a panic.
	_, err := l.R.Predict(context.Background(), l.In(0), router.LowestTier(router.RungCache))
	if !errors.Is(err, router.ErrNoAnswer) || !errors.Is(err, router.ErrStore) {
		t.Errorf("err = %v, want a NoAnswerError unwrapping the store's failure", err)
	}
}

func TestAHangingStoreIsCutAtItsBound(t *testing.T) {
	testenv.MustHaveRuntime(t)
	// Given a ladder whose store hangs until its context ends, with a
	// 30ms store timeout,
	s := newFaultyStore()
	s.hang.Store(true)
	var ev testenv.Events
	l := newLadder(t, "primary.onnx", func(c *router.Config) {
		c.Cache, c.StoreTimeout, c.OnEvent = s, 30*time.Millisecond, ev.Add
	})
	t.Cleanup(func() { s.hang.Store(false) }) // before newLadder's own cleanup

	// when the primary serves, then its write is bounded by the store
	// timeout and reported, and the answer still served,
	start := time.Now()
	if a := l.Predict(t, 0); a.Tier != "primary" {
		t.Fatalf("served by %s, want the primary", a.Tier)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("a hanging Put held the request for %v", took)
	}
	if d := <-s.bound; d <= 0 || d > 30*time.Millisecond {
		t.Errorf("Put bounded by %v, want the 30ms store timeout", d)
	}
	if n := len(ev.Of(router.StoreFailed)); n != 1 {
		t.Errorf("%d store-failed events, want 1", n)
	}

	// and when the models are down, a read is cut at the timeout and the
	// heuristic serves.
	l.Primary.Set(chaos.Fault{ErrorRate: 1})
	l.Backup.Set(chaos.Fault{ErrorRate: 1})
	start = time.Now()
	a := l.Predict(t, 0)
	took := time.Since(start)
	if a.Tier != router.RungHeuristic || !errors.Is(a.Fell[2].Err, router.ErrStore) || !errors.Is(a.Fell[2].Err, context.DeadlineExceeded) {
		t.Fatalf("got %+v; want the heuristic after the store's read timed out", a)
	}
	if d := <-s.bound; d <= 0 || d > 30*time.Millisecond {
		t.Errorf("Get bounded by %v, want the 30ms store timeout", d)
	}
	if took > 500*time.Millisecond {
		t.Errorf("a hanging Get held the request for %v", took)
	}

	// A caller's short deadline bounds the read too, keeping a reserve for
	// the heuristic below.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	a, err := l.R.Predict(ctx, l.In(0))
	if err != nil || a.Tier != router.RungHeuristic {
		t.Fatalf("got %+v, %v; want the heuristic within the caller's deadline", a, err)
	}
	if d := <-s.bound; d <= 0 || d >= 20*time.Millisecond {
		t.Errorf("Get under a 20ms deadline bounded by %v, want less, for the reserve", d)
	}
}

func TestTheInProcessStoreIsUnbounded(t *testing.T) {
	testenv.MustHaveRuntime(t)
	// Given the default in-process store,
	l := newLadder(t, "primary.onnx")
	l.Predict(t, 0)
	l.Primary.Set(chaos.Fault{ErrorRate: 1})
	l.Backup.Set(chaos.Fault{ErrorRate: 1})
	// when its answer is read under a caller's deadline, then it serves:
	// it is not given a timer of its own, and needs none.
	testenv.Eventually(t, "the cache serves", func() bool { // Offer's write lands within about 1ms
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a, err := l.R.Predict(ctx, l.In(0))
		return err == nil && a.Tier == router.RungCache
	})
}

func TestRouterTestStoresConform(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) cachetest.Store {
		return &store{m: map[string]cache.Entry{}}
	})
}

func TestAStoreThatIgnoresCtxIsLeftAtItsBound(t *testing.T) {
	testenv.MustHaveRuntime(t)
	// Given a store whose calls ignore ctx and hang until the test ends,
	s := newFaultyStore()
	s.hang.Store(true)
	s.deaf = make(chan struct{})
	l := newLadder(t, "primary.onnx", func(c *router.Config) {
		c.Cache, c.StoreTimeout = s, 20*time.Millisecond
	})
	t.Cleanup(func() { s.hang.Store(false); close(s.deaf) }) // before newLadder's own cleanup

	// when the primary serves, then the write is left at the store
	// timeout and the answer served,
	start := time.Now()
	if a := l.Predict(t, 0); a.Tier != "primary" {
		t.Fatalf("served by %s, want the primary", a.Tier)
	}
	// and when the models are down, the read is left at the store timeout
	// too and the heuristic serves.
	l.Primary.Set(chaos.Fault{ErrorRate: 1})
	l.Backup.Set(chaos.Fault{ErrorRate: 1})
	a := l.Predict(t, 0)
	if a.Tier != router.RungHeuristic || !errors.Is(a.Fell[2].Err, router.ErrStore) || !errors.Is(a.Fell[2].Err, context.DeadlineExceeded) {
		t.Fatalf("got %+v; want the heuristic after the store's read was left", a)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("two requests took %v with a store that ignores ctx; want each bounded by 20ms", took)
	}
}

func TestCallsLeftRunningInAStoreAreBounded(t *testing.T) {
	testenv.MustHaveRuntime(t)
	// Given a store whose calls ignore ctx and hang, with a 1ms bound,
	s := newFaultyStore()
	s.hang.Store(true)
	s.deaf = make(chan struct{})
	l := newLadder(t, "primary.onnx", func(c *router.Config) {
		c.Cache, c.StoreTimeout = s, time.Millisecond
	})
	t.Cleanup(func() { s.hang.Store(false); close(s.deaf) }) // before newLadder's own cleanup
	l.Primary.Set(chaos.Fault{ErrorRate: 1})
	l.Backup.Set(chaos.Fault{ErrorRate: 1})
	// when many requests reach the cache,
	skipped := 0
	for i := range 80 {
		a := l.Predict(t, i)
		if errors.Is(a.Fell[2].Err, router.ErrAbandoned) {
			skipped++
		}
	}
	// then once 64 calls are left running, the store is no longer called.
	if n := s.gets.Load(); n != 64 || skipped != 80-64 {
		t.Errorf("%d calls reached the store and %d requests skipped it; want 64 and %d", n, skipped, 80-64)
	}
}

func TestACachedAnswerFromAClockAheadIsFreshOrRefused(t *testing.T) {
	// Given a shared store holding answers stored by machines whose clocks
	// run ahead of this one's,
	shared := &store{m: map[string]cache.Entry{}}
	down := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("primary down")
	})
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: down}},
		Cache: shared,
		Key:   func(in []tensor.Tensor) string { return in[0].Name },
		Heuristic: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("p", []int64{1}, []float32{0.1})}, nil
		},
		MaxStaleness: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	put := func(key string, ahead time.Duration) {
		shared.Put(ctx, key, cache.Entry{Outputs: []tensor.Tensor{tensor.New("p", []int64{1}, []float32{0.9})}, Tier: "primary", Stored: time.Now().Add(ahead).Round(0)})
	}
	put("skewed", 500*time.Millisecond)
	put("future", time.Hour)
	// when an answer stored within MaxClockSkew ahead is asked for, then it
	// is served as just stored, not with a negative age,
	a, err := r.Predict(ctx, []tensor.Tensor{tensor.New("skewed", []int64{1}, []float32{1})})
	if err != nil || a.Tier != router.RungCache || a.Age != 0 {
		t.Fatalf("skewed: served by %s with Age %v, %v; want the cache with Age 0", a.Tier, a.Age, err)
	}
	// and one stored an hour ahead, whose age is unknown, is refused: the
	// cache rung falls with a StaleError that says so, and a lower rung
	// serves.
	a, err = r.Predict(ctx, []tensor.Tensor{tensor.New("future", []int64{1}, []float32{1})})
	if err != nil || a.Tier != router.RungHeuristic {
		t.Fatalf("future: served by %s, %v; want the heuristic", a.Tier, err)
	}
	var stale *router.StaleError
	for _, f := range a.Fell {
		if errors.As(f.Err, &stale) {
			break
		}
	}
	if stale == nil || stale.Age >= 0 || !errors.Is(stale, router.ErrTooStale) || !strings.Contains(stale.Error(), "in the future") {
		t.Fatalf("falls %v; want the cache's StaleError with a negative Age", a.Fell)
	}
}

func TestAStaleErrorOfAnAnswerStoredCenturiesAheadSaysSo(t *testing.T) {
	// Given an answer stored so far in the future that its age is beyond
	// what a Duration holds,
	err := &router.StaleError{Age: time.Since(time.Now().AddDate(400, 0, 0)), Max: router.AnyAge}
	// then its StaleError still says it was stored in the future, by a
	// positive amount.
	if msg := err.Error(); !strings.Contains(msg, "in the future") || strings.Contains(msg, "stored -") {
		t.Fatalf("got %q; want a StaleError saying the answer was stored ahead", msg)
	}
}
