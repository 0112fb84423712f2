package cache

import (
	"context"
	"fmt"
	"testing"
	"time"

	gocache "github.com/patrickmn/go-cache"

	"github.com/ladder-ml/ladder/clock"
)

func TestSweepOfAStaleSlotKeepsTheFreshEntry(t *testing.T) {
	clk := clock.NewFake(time.Unix(1e9, 0))
	s, err := New(Config{TTL: time.Minute, SweepInterval: time.Hour, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	// Given a key that expired unswept and was put again, so that its first
	// slot is stale,
	s.Put(ctx, "a", entry(1))
	clk.Advance(time.Minute)
	s.Put(ctx, "a", entry(2))
	// when a sweep finds the stale slot expired,
	s.sweep()
	// then the fresh entry stays, and the stale slot is emptied;
	if got, ok, _ := s.Get(ctx, "a"); !ok || got.Outputs[0].Data.([]float32)[0] != 2 {
		t.Fatalf("Get(a) after the sweep = %+v, %v; want the fresh entry", got, ok)
	}
	if s.ring[0].key != "" || s.ring[1].key != "a" {
		t.Fatalf("ring after the sweep = %+v, want the stale slot emptied", s.ring)
	}
	// once the fresh entry expires, the next sweep removes it.
	clk.Advance(time.Minute)
	s.sweep()
	if n := s.Len(); n != 0 {
		t.Fatalf("Len after the fresh entry expired and was swept = %d, want 0", n)
	}
}

func TestSweepCoversEveryChunk(t *testing.T) {
	clk := clock.NewFake(time.Unix(1e9, 0))
	const n = 3*sweepChunk + 7
	s, err := New(Config{MaxEntries: n, TTL: time.Minute, SweepInterval: time.Hour, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range n {
		s.Put(context.Background(), fmt.Sprint(i), entry(1))
	}
	clk.Advance(time.Minute)
	s.sweep()
	if got := s.Len(); got != 0 {
		t.Fatalf("Len after a sweep of %d expired entries = %d, want 0", n, got)
	}
}

// BenchmarkSweep measures a sweep of 10,000 entries none of which has
// expired, the usual case, which a Put waits for a chunk of. The baseline
// is go-cache's own sweep of as many entries.
func BenchmarkSweep(b *testing.B) {
	const n = 10_000
	b.Run("baseline/gocache-DeleteExpired", func(b *testing.B) {
		c := gocache.New(time.Hour, 0)
		for i := range n {
			c.SetDefault(fmt.Sprint(i), &item{})
		}
		b.ReportAllocs()
		for b.Loop() {
			c.DeleteExpired()
		}
	})
	b.Run("live", func(b *testing.B) {
		s, err := New(Config{MaxEntries: n, TTL: time.Hour, SweepInterval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		for i := range n {
			s.Put(context.Background(), fmt.Sprint(i), entry(1))
		}
		b.ReportAllocs()
		for b.Loop() {
			s.sweep()
		}
	})
}
