package cache_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/cache/cachetest"
	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/tensor"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var bg = context.Background()

// get is Get for a Store, which never fails.
func get(s *cache.Store, key string) (cache.Entry, bool) {
	e, ok, err := s.Get(bg, key)
	if err != nil {
		panic(err)
	}
	return e, ok
}

// newStore returns a Store that the test closes when it ends.
func newStore(t testing.TB, cfg cache.Config) *cache.Store {
	t.Helper()
	s, err := cache.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newFake returns a fake clock for a Store's Config.Clock.
func newFake() *clock.Fake { return clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) }

// flush waits for the writes s's Offer accepted.
func flush(t *testing.T, s *cache.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// probability returns an entry shaped like the primary model's answer.
func probability(p float32) cache.Entry {
	return cache.Entry{
		Outputs: []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{p})},
		Tier:    "primary",
		Version: "1",
	}
}

// prob returns the single probability of an entry built by probability.
func prob(t *testing.T, e cache.Entry) float32 {
	t.Helper()
	if len(e.Outputs) != 1 {
		t.Fatalf("got %d outputs, want 1", len(e.Outputs))
	}
	d, ok := tensor.Data[float32](e.Outputs[0])
	if !ok || len(d) != 1 {
		t.Fatalf("output data = %#v, want one float32", e.Outputs[0].Data)
	}
	return d[0]
}

func TestPutGetRoundTrip(t *testing.T) {
	s := newStore(t, cache.Config{})
	stored := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	want := cache.Entry{
		Outputs: []tensor.Tensor{
			tensor.New("f32", []int64{1, 2}, []float32{0.25, 0.75}),
			tensor.New("f64", []int64{1}, []float64{1.5}),
			tensor.New("i32", []int64{2}, []int32{-1, 7}),
			tensor.New("i64", []int64{1}, []int64{1 << 40}),
			tensor.New("flag", []int64{1}, []bool{true}),
			tensor.New("text", []int64{2}, []string{"a", "bc"}),
		},
		Tier:    "backup",
		Version: "v2",
		Stored:  stored,
	}
	s.Put(bg, "k", want)

	got, ok := get(s, "k")
	if !ok {
		t.Fatal("Get after Put missed")
	}
	if !equalEntry(got, want) {
		t.Errorf("Get = %+v, want %+v", got, want)
	}
	if _, ok := get(s, "other"); ok {
		t.Error("Get of a key never put hit")
	}
}

func TestPutStoredDefaultsToNow(t *testing.T) {
	t.Run("real clock", func(t *testing.T) {
		// Real time is the point: the real clock's Stored is read
		// through the monotonic clock, and must follow time.Now.
		s := newStore(t, cache.Config{})
		before := time.Now()
		s.Put(bg, "k", probability(0.5))
		after := time.Now()

		got, ok := get(s, "k")
		if !ok {
			t.Fatal("Get after Put missed")
		}
		if got.Stored.Before(before) || got.Stored.After(after) {
			t.Errorf("Stored = %v, want between %v and %v", got.Stored, before, after)
		}
	})
	t.Run("the store's clock", func(t *testing.T) {
		clk := newFake()
		s := newStore(t, cache.Config{Clock: clk})
		clk.Advance(time.Hour)
		s.Put(bg, "k", probability(0.5))
		s.Offer("offered", probability(0.5))
		flush(t, s)
		for _, k := range []string{"k", "offered"} {
			if got, ok := get(s, k); !ok || !got.Stored.Equal(clk.Now()) {
				t.Errorf("Get(%q) = Stored %v, %v; want the clock's %v", k, got.Stored, ok, clk.Now())
			}
		}
	})
}

func TestEmptyKeyIsNeverStored(t *testing.T) {
	s := newStore(t, cache.Config{})
	s.Put(bg, "", probability(0.5))
	if _, ok := get(s, ""); ok {
		t.Error(`Get("") hit, want miss`)
	}
	if n := s.Len(); n != 0 {
		t.Errorf("Len = %d, want 0", n)
	}
}

func TestCopyIsolation(t *testing.T) {
	mutations := []struct {
		name   string
		mutate func(e *cache.Entry)
	}{
		{"data element", func(e *cache.Entry) { e.Outputs[0].Data.([]float32)[0] = -1 }},
		{"shape", func(e *cache.Entry) { e.Outputs[0].Shape[0] = 99 }},
		{"tensor name", func(e *cache.Entry) { e.Outputs[0].Name = "changed" }},
		{"string data", func(e *cache.Entry) { e.Outputs[1].Data.([]string)[0] = "changed" }},
		{"outputs slice", func(e *cache.Entry) { e.Outputs[1] = tensor.Tensor{} }},
	}
	fresh := func() cache.Entry {
		return cache.Entry{
			Outputs: []tensor.Tensor{
				tensor.New("probability", []int64{1, 1}, []float32{0.5}),
				tensor.New("label", []int64{1}, []string{"benign"}),
			},
			Tier:   "primary",
			Stored: time.Unix(1700000000, 0),
		}
	}
	for _, m := range mutations {
		t.Run("caller mutates what it put/"+m.name, func(t *testing.T) {
			s := newStore(t, cache.Config{})
			in := fresh()
			s.Put(bg, "k", in)

			m.mutate(&in)

			got, _ := get(s, "k")
			if !equalEntry(got, fresh()) {
				t.Errorf("after mutating the put value, Get = %+v, want %+v", got, fresh())
			}
		})
		t.Run("caller mutates what it got/"+m.name, func(t *testing.T) {
			s := newStore(t, cache.Config{})
			s.Put(bg, "k", fresh())
			first, _ := get(s, "k")

			m.mutate(&first)

			got, _ := get(s, "k")
			if !equalEntry(got, fresh()) {
				t.Errorf("after mutating a got value, Get = %+v, want %+v", got, fresh())
			}
		})
	}
}

func TestTTLExpiry(t *testing.T) {
	const ttl = time.Minute
	// Given a store whose sweeper never runs during the test,
	clk := newFake()
	s := newStore(t, cache.Config{TTL: ttl, SweepInterval: time.Hour, Clock: clk})
	s.Put(bg, "k", probability(0.5))

	// when the TTL passes, then Get misses, and not before.
	clk.Advance(ttl - 1)
	if _, ok := get(s, "k"); !ok {
		t.Fatal("Get missed before the TTL passed")
	}
	clk.Advance(1)
	if _, ok := get(s, "k"); ok {
		t.Fatal("Get hit once the TTL passed")
	}
	// The expired entry is still counted until swept.
	if n := s.Len(); n != 1 {
		t.Errorf("Len of an expired, unswept entry = %d, want 1", n)
	}
}

func TestPutRestartsTTL(t *testing.T) {
	const ttl = time.Minute
	clk := newFake()
	s := newStore(t, cache.Config{TTL: ttl, SweepInterval: time.Hour, Clock: clk})
	// Given a key put, and put again half a TTL later,
	s.Put(bg, "k", probability(0.1))
	clk.Advance(ttl / 2)
	s.Put(bg, "k", probability(0.2))

	// when the first TTL has passed, then the entry is still there,
	clk.Advance(ttl/2 + ttl/10)
	got, ok := get(s, "k")
	if !ok {
		t.Fatal("Get missed: overwriting did not restart the TTL")
	}
	if p := prob(t, got); p != 0.2 {
		t.Errorf("probability = %v, want the overwritten 0.2", p)
	}
	// and it goes when the second one has.
	clk.Advance(ttl / 2)
	if _, ok := get(s, "k"); ok {
		t.Error("Get hit past the second TTL")
	}
}

func TestSweeperRemovesExpired(t *testing.T) {
	const ttl, every = 20 * time.Second, 5 * time.Second
	clk := newFake()
	s := newStore(t, cache.Config{TTL: ttl, SweepInterval: every, Clock: clk})
	// sweep advances the clock by d and waits for the sweep it starts:
	// the sweeper arms its timer again once it has swept.
	sweep := func(d time.Duration) {
		t.Helper()
		clk.Advance(d)
		if !clk.WaitTimers(1, 5*time.Second) {
			t.Fatal("the sweeper did not sweep within 5s of its time")
		}
	}
	// Given entries put at 0 and at 10s,
	for i := range 10 {
		s.Put(bg, fmt.Sprint("early", i), probability(0.5))
	}
	sweep(10 * time.Second)
	for i := range 5 {
		s.Put(bg, fmt.Sprint("late", i), probability(0.5))
	}
	// a sweep before any has expired removes none;
	sweep(every)
	if n := s.Len(); n != 15 {
		t.Fatalf("Len after a sweep before the TTL = %d, want 15", n)
	}
	// one after the first ones expired removes them only,
	sweep(ttl - 15*time.Second)
	if n := s.Len(); n != 5 {
		t.Fatalf("Len after a sweep past the first TTL = %d, want 5", n)
	}
	if _, ok := get(s, "late0"); !ok {
		t.Fatal("a sweep removed an entry that had not expired")
	}
	// and one advance past several intervals sweeps the rest.
	sweep(3 * every)
	if n := s.Len(); n != 0 {
		t.Fatalf("Len after a sweep past every TTL = %d, want 0", n)
	}
	// A key put again after its entry was swept is stored anew.
	s.Put(bg, "early0", probability(0.7))
	if got, ok := get(s, "early0"); !ok || prob(t, got) != 0.7 {
		t.Errorf("Get of a key put again after its sweep = %+v, %v", got, ok)
	}
}

func TestMaxEntriesBound(t *testing.T) {
	for _, limit := range []int{1, 2, 3, 100} {
		t.Run(fmt.Sprintf("MaxEntries=%d", limit), func(t *testing.T) {
			s := newStore(t, cache.Config{MaxEntries: limit})
			n := 3*limit + 1
			for i := range n {
				s.Put(bg, fmt.Sprint(i), probability(float32(i)))
				if l := s.Len(); l > limit {
					t.Fatalf("after %d puts Len = %d, want at most %d", i+1, l, limit)
				}
			}
			if l := s.Len(); l != limit {
				t.Errorf("Len = %d, want %d", l, limit)
			}
			// The newest limit keys survive; every older one was evicted.
			for i := range n {
				got, ok := get(s, fmt.Sprint(i))
				if wantOK := i >= n-limit; ok != wantOK {
					t.Errorf("Get(%d) ok = %v, want %v", i, ok, wantOK)
				} else if ok && prob(t, got) != float32(i) {
					t.Errorf("Get(%d) = %v, want %d", i, prob(t, got), i)
				}
			}
		})
	}
}

func TestDefaultMaxEntries(t *testing.T) {
	s := newStore(t, cache.Config{})
	for i := range cache.DefaultMaxEntries + 5 {
		s.Put(bg, fmt.Sprint(i), probability(0.5))
	}
	if l := s.Len(); l != cache.DefaultMaxEntries {
		t.Errorf("Len = %d, want the default %d", l, cache.DefaultMaxEntries)
	}
}

func TestOverwriteKeepsPlace(t *testing.T) {
	// Given a full store of a, b, c,
	s := newStore(t, cache.Config{MaxEntries: 3})
	for _, k := range []string{"a", "b", "c"} {
		s.Put(bg, k, probability(0))
	}
	// when a is overwritten many times,
	for i := range 10 {
		s.Put(bg, "a", probability(float32(i)))
	}
	// then nothing is evicted and a holds its last value,
	if l := s.Len(); l != 3 {
		t.Errorf("Len after overwrites = %d, want 3", l)
	}
	for _, k := range []string{"b", "c"} {
		if _, ok := get(s, k); !ok {
			t.Errorf("Get(%q) missed after overwriting a: overwrites took ring slots", k)
		}
	}
	if got, ok := get(s, "a"); !ok || prob(t, got) != 9 {
		t.Errorf("Get(a) = %+v, %v; want probability 9", got, ok)
	}
	// and a new key still evicts a, the first stored, and only a.
	s.Put(bg, "d", probability(0))
	if _, ok := get(s, "a"); ok {
		t.Error("Get(a) hit after d was put; want a evicted as the oldest")
	}
	for _, k := range []string{"b", "c", "d"} {
		if _, ok := get(s, k); !ok {
			t.Errorf("Get(%q) missed, want hit", k)
		}
	}
}

func TestReputAfterExpiryKeepsFreshEntry(t *testing.T) {
	const ttl = time.Minute
	// Given a key that expired but was not swept,
	clk := newFake()
	s := newStore(t, cache.Config{MaxEntries: 2, TTL: ttl, SweepInterval: time.Hour, Clock: clk})
	s.Put(bg, "a", probability(1))
	clk.Advance(ttl)
	if _, ok := get(s, "a"); ok {
		t.Fatal("Get hit past the TTL")
	}

	// when it is put again and a new key evicts its stale slot,
	s.Put(bg, "a", probability(2))
	s.Put(bg, "b", probability(3))

	// then the fresh entry survives,
	got, ok := get(s, "a")
	if !ok || prob(t, got) != 2 {
		t.Fatalf("Get(a) = %+v, %v; want the re-put probability 2", got, ok)
	}
	// and it goes when its own slot is the oldest.
	s.Put(bg, "c", probability(4))
	if _, ok := get(s, "a"); ok {
		t.Error("Get(a) hit, want a evicted")
	}
	for _, k := range []string{"b", "c"} {
		if _, ok := get(s, k); !ok {
			t.Errorf("Get(%q) missed, want hit", k)
		}
	}
	if l := s.Len(); l != 2 {
		t.Errorf("Len = %d, want 2", l)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		name  string
		cfg   cache.Config
		field string
	}{
		{"negative MaxEntries", cache.Config{MaxEntries: -1}, "MaxEntries"},
		{"negative TTL", cache.Config{TTL: -time.Second}, "TTL"},
		{"negative SweepInterval", cache.Config{SweepInterval: -time.Second}, "SweepInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := cache.New(tt.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("New(%+v) succeeded, want an error", tt.cfg)
			}
			if !errors.Is(err, cache.ErrInvalidConfig) {
				t.Errorf("New error %v does not match ErrInvalidConfig", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "cache: ") || !strings.Contains(msg, tt.field) {
				t.Errorf(`New error %q: want it to start "cache: " and name %s`, msg, tt.field)
			}
			if s != nil {
				t.Errorf("New returned a Store with an error")
			}
		})
	}
}

func TestClose(t *testing.T) {
	defer goleak.VerifyNone(t)

	s, err := cache.New(cache.Config{SweepInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Put(bg, "k", probability(0.5))

	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, ok := get(s, "k"); ok {
		t.Error("Get after Close hit")
	}
	s.Put(bg, "k2", probability(0.5))
	if _, ok := get(s, "k2"); ok {
		t.Error("Get of a key put after Close hit")
	}
	if n := s.Len(); n != 0 {
		t.Errorf("Len after Close = %d, want 0", n)
	}
}

func TestConcurrentClose(t *testing.T) {
	defer goleak.VerifyNone(t)

	s, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { s.Close() })
	}
	wg.Wait()
}

func TestConcurrentUse(t *testing.T) {
	defer goleak.VerifyNone(t)

	const (
		limit   = 16
		keys    = 64
		workers = 8
		ops     = 2000
	)
	// Real time is the point of the TTL and sweep interval here: the
	// sweeper runs, and entries expire, while the workers use the store.
	s, err := cache.New(cache.Config{MaxEntries: limit, TTL: 5 * time.Millisecond, SweepInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var done atomic.Int64
	busy := make(chan struct{}) // closed once the workers are well under way
	for w := range workers {
		wg.Go(func() {
			for i := range ops {
				if done.Add(1) == workers*ops/4 {
					close(busy)
				}
				k := (w*ops + i) % keys
				key := fmt.Sprint(k)
				if i%2 == 0 {
					s.Put(bg, key, probability(float32(k)))
					continue
				}
				if got, ok := get(s, key); ok {
					d := got.Outputs[0].Data.([]float32)
					if d[0] != float32(k) {
						t.Errorf("Get(%q) = %v, want %d", key, d[0], k)
					}
					d[0] = -1 // must not affect other readers
				}
				if l := s.Len(); l > limit {
					t.Errorf("Len = %d, want at most %d", l, limit)
				}
			}
		})
	}
	wg.Go(func() {
		<-busy
		s.Close() // Close while in use
	})
	wg.Wait()
	s.Close()
}

func TestMemoryStaysFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("puts 200k entries")
	}
	const (
		limit = 1000
		warm  = 5000
		total = 200_000
	)
	s := newStore(t, cache.Config{MaxEntries: limit})
	put := func(from, to int) {
		for i := from; i < to; i++ {
			s.Put(bg, fmt.Sprintf("key-%d", i), probability(0.5))
		}
	}

	put(0, warm)
	base := heapAlloc()
	put(warm, total)
	end := heapAlloc()

	if l := s.Len(); l != limit {
		t.Errorf("Len = %d, want %d", l, limit)
	}
	// Entries are about 250 B each, so a leak of all 195k extra entries
	// would add ~50 MB. Allow a little for map churn and runtime noise.
	const slack = 1 << 20
	t.Logf("heap after %d puts: %d B; after %d puts: %d B", warm, base, total, end)
	if end > base+slack {
		t.Errorf("heap grew from %d B to %d B over %d puts; want at most %d B growth",
			base, end, total-warm, slack)
	}
	runtime.KeepAlive(s)
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func equalEntry(a, b cache.Entry) bool {
	return a.Tier == b.Tier && a.Version == b.Version && a.Stored.Equal(b.Stored) &&
		reflect.DeepEqual(a.Outputs, b.Outputs)
}

func TestOfferStoresInTheBackground(t *testing.T) {
	s := newStore(t, cache.Config{MaxEntries: 100})
	e := probability(0.25)
	if !s.Offer("k", e) {
		t.Fatal("Offer refused a write to an open store")
	}
	// The caller may reuse its slices at once: Offer copied them.
	e.Outputs[0].Data.([]float32)[0] = 0.99
	flush(t, s)
	got, ok := get(s, "k")
	if !ok {
		t.Fatal("Get after Offer and Flush missed")
	}
	if p := prob(t, got); p != 0.25 {
		t.Fatalf("stored probability %v, want 0.25 as offered", p)
	}
	if s.Dropped() != 0 {
		t.Errorf("Dropped = %d, want 0", s.Dropped())
	}
	s.Close()
	if s.Offer("k2", probability(0.5)) {
		t.Error("Offer accepted a write after Close")
	}
}

func TestStoreConforms(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) cachetest.Store { return newStore(t, cache.Config{}) })
}

func TestOfferOfTheSameAnswerRefreshesInPlace(t *testing.T) {
	// Given a key that holds an answer stored at t0
	s := newStore(t, cache.Config{MaxEntries: 100})
	first := probability(0.25)
	first.Stored = time.Now()
	if err := s.Put(context.Background(), "k", first); err != nil {
		t.Fatal(err)
	}

	// When the same answer is offered again, later
	again := probability(0.25)
	again.Stored = first.Stored.Add(5 * time.Second)
	if !s.Offer("k", again) {
		t.Fatal("Offer refused the same answer")
	}

	// Then the entry is fresh at once, with no background write
	got, ok := get(s, "k")
	if !ok || !got.Stored.Equal(again.Stored) || prob(t, got) != 0.25 {
		t.Fatalf("after Offer of the same answer: %+v, %v; want Stored %v", got, ok, again.Stored)
	}

	// And an older offer of it never moves Stored back
	older := probability(0.25)
	older.Stored = first.Stored.Add(time.Second)
	s.Offer("k", older)
	if got, _ := get(s, "k"); !got.Stored.Equal(again.Stored) {
		t.Errorf("an older Offer moved Stored to %v, want %v", got.Stored, again.Stored)
	}

	// And a different answer, or one of another tier, is written as before
	for name, e := range map[string]cache.Entry{
		"other value": probability(0.5),
		"other tier":  {Outputs: probability(0.25).Outputs, Tier: "backup", Version: "v1"},
	} {
		e.Stored = again.Stored.Add(time.Second)
		if !s.Offer("k", e) {
			t.Fatalf("%s: Offer refused", name)
		}
		flush(t, s)
		if got, _ := get(s, "k"); !equalEntry(got, e) {
			t.Errorf("%s: Get = %+v, want %+v", name, got, e)
		}
	}
}

func TestOfferAfterEvictionStoresAgain(t *testing.T) {
	// Given a key whose entry was evicted by a newer key
	s := newStore(t, cache.Config{MaxEntries: 1})
	e := probability(0.25)
	e.Stored = time.Now()
	if err := s.Put(context.Background(), "k1", e); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), "k2", probability(0.5)); err != nil {
		t.Fatal(err)
	}
	if _, ok := get(s, "k1"); ok {
		t.Fatal("k1 still stored after k2 evicted it")
	}

	// When the same answer is offered for it again
	again := e
	again.Stored = e.Stored.Add(time.Second)
	s.Offer("k1", again)

	// Then it is stored again, not refreshed in a dropped entry
	flush(t, s)
	if got, ok := get(s, "k1"); !ok || !got.Stored.Equal(again.Stored) {
		t.Errorf("Get(k1) = %+v, %v; want the offered entry", got, ok)
	}
}
