package cache_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/cache/cachetest"
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
	const ttl = 50 * time.Millisecond
	// Given a store whose sweeper never runs during the test,
	s := newStore(t, cache.Config{TTL: ttl, SweepInterval: time.Hour})
	start := time.Now()
	s.Put(bg, "k", probability(0.5))

	// when the TTL passes, then Get misses, and not before.
	if _, ok := get(s, "k"); !ok && time.Since(start) < ttl {
		t.Fatal("Get right after Put missed")
	}
	missedAt := waitFor(t, func() bool { _, ok := get(s, "k"); return !ok })
	if elapsed := missedAt.Sub(start); elapsed < ttl {
		t.Errorf("entry expired after %v, want at least the TTL %v", elapsed, ttl)
	}
	// The expired entry is still counted until swept.
	if n := s.Len(); n != 1 {
		t.Errorf("Len of an expired, unswept entry = %d, want 1", n)
	}
}

func TestPutRestartsTTL(t *testing.T) {
	const ttl = 400 * time.Millisecond
	s := newStore(t, cache.Config{TTL: ttl, SweepInterval: time.Hour})
	first := time.Now()
	s.Put(bg, "k", probability(0.1))
	time.Sleep(ttl / 2)
	second := time.Now()
	s.Put(bg, "k", probability(0.2))
	time.Sleep(time.Until(first.Add(ttl + ttl/10))) // past the first TTL

	now := time.Now()
	got, ok := get(s, "k")
	if now.Sub(second) >= ttl {
		t.Fatalf("scheduler stalled %v, past the second TTL; the machine is too loaded for this test", now.Sub(second))
	}
	if !ok {
		t.Fatal("Get missed: overwriting did not restart the TTL")
	}
	if p := prob(t, got); p != 0.2 {
		t.Errorf("probability = %v, want the overwritten 0.2", p)
	}
}

func TestSweeperRemovesExpired(t *testing.T) {
	s := newStore(t, cache.Config{TTL: 20 * time.Millisecond, SweepInterval: 5 * time.Millisecond})
	for i := range 10 {
		s.Put(bg, fmt.Sprint(i), probability(0.5))
	}
	waitFor(t, func() bool { return s.Len() == 0 })
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
	const ttl = 300 * time.Millisecond
	// Given a key that expired but was not swept,
	s := newStore(t, cache.Config{MaxEntries: 2, TTL: ttl, SweepInterval: time.Hour})
	s.Put(bg, "a", probability(1))
	waitFor(t, func() bool { _, ok := get(s, "a"); return !ok })

	// when it is put again and a new key evicts its stale slot,
	reput := time.Now()
	s.Put(bg, "a", probability(2))
	s.Put(bg, "b", probability(3))

	// then the fresh entry survives,
	got, ok := get(s, "a")
	if time.Since(reput) >= ttl {
		t.Fatalf("scheduler stalled %v, past the TTL; the machine is too loaded for this test", time.Since(reput))
	}
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
	s, err := cache.New(cache.Config{MaxEntries: limit, TTL: 5 * time.Millisecond, SweepInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range ops {
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
		time.Sleep(5 * time.Millisecond)
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

// waitFor polls cond until it holds, failing the test after two seconds.
// It returns when cond first held.
func waitFor(t *testing.T, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if cond() {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 2s")
		}
		time.Sleep(2 * time.Millisecond)
	}
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
	var got cache.Entry
	waitFor(t, func() bool { var ok bool; got, ok = get(s, "k"); return ok })
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
		waitFor(t, func() bool { got, _ := get(s, "k"); return equalEntry(got, e) })
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
	waitFor(t, func() bool { got, ok := get(s, "k1"); return ok && got.Stored.Equal(again.Stored) })
}
