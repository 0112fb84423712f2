package cache

import (
	"context"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/tensor"
)

// An Offer whose Stored time lags the clock (a router's test clock frozen
// at one reading, or an entry read back from a Get) still stores an
// answer whose entry has expired: the entry's TTL is judged by the
// store's clock, not by the time the caller put on the answer.
func TestOfferWithALaggingStoredTimeStoresAgainOnceTheEntryExpired(t *testing.T) {
	clk := clock.NewFake(time.Unix(1e9, 0))
	s, err := New(Config{TTL: time.Minute, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	frozen := clk.Now()
	e := Entry{Outputs: []tensor.Tensor{tensor.New("p", []int64{1}, []float32{0.5})}, Tier: "primary", Version: "v1", Stored: frozen}
	// Given an entry stored at the frozen time,
	if err := s.Put(ctx, "k", e); err != nil {
		t.Fatal(err)
	}
	// once it has expired,
	clk.Advance(time.Minute)
	if _, ok, _ := s.Get(ctx, "k"); ok {
		t.Fatal("an expired entry was found")
	}
	// an Offer of the same answer stores it again.
	if !s.Offer("k", e) {
		t.Fatal("Offer refused")
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(ctx, "k"); !ok {
		t.Fatal("the answer offered after its entry expired was not stored: the Offer was taken for a refresh of the expired entry")
	}
}

// An Offer of the same answer refreshes in place only while the entry has
// more than half its TTL to live, by the store's clock.
func TestOfferRefreshesInPlaceOnlyInTheFirstHalfOfTheTTL(t *testing.T) {
	clk := clock.NewFake(time.Unix(1e9, 0))
	s, err := New(Config{TTL: time.Minute, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	e := Entry{Outputs: []tensor.Tensor{tensor.New("p", []int64{1}, []float32{0.5})}, Tier: "primary", Stored: clk.Now()}
	s.Put(ctx, "k", e)
	it := s.recent[s.slot("k")].Load()
	// Given an entry half a TTL less a moment old, an Offer of its answer
	// moves its Stored time and stores nothing;
	clk.Advance(30*time.Second - 1)
	e.Stored = clk.Now()
	s.Offer("k", e)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.recent[s.slot("k")].Load(); got != it {
		t.Fatal("an Offer in the first half of the TTL stored a new entry")
	}
	// past half its TTL, an Offer stores it anew, restarting the TTL.
	clk.Advance(2)
	e.Stored = clk.Now()
	s.Offer("k", e)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.recent[s.slot("k")].Load(); got == it || got == nil {
		t.Fatal("an Offer at half the TTL did not store the entry anew")
	}
	clk.Advance(time.Minute - 1)
	if got, ok, _ := s.Get(ctx, "k"); !ok || !got.Stored.Equal(e.Stored) {
		t.Fatalf("Get after the Offer that restarted the TTL = %+v, %v", got, ok)
	}
}
