package cache

import (
	"context"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/tensor"
)

// An Offer whose Stored time lags the clock (a router's test clock frozen
// at a time.Now reading, or an entry read back from a Get) still stores an
// answer whose entry has expired: the entry's TTL is judged by the clock,
// not by the time the caller put on the answer.
func TestOfferWithALaggingStoredTimeStoresAgainOnceTheEntryExpired(t *testing.T) {
	s, err := New(Config{TTL: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	frozen := time.Now() // carries a monotonic reading, as a frozen test clock's does
	e := Entry{Outputs: []tensor.Tensor{tensor.New("p", []int64{1}, []float32{0.5})}, Tier: "primary", Version: "v1", Stored: frozen}
	// Given an entry stored at the frozen time,
	if err := s.Put(ctx, "k", e); err != nil {
		t.Fatal(err)
	}
	// once it has expired,
	time.Sleep(40 * time.Millisecond)
	if _, ok, _ := s.Get(ctx, "k"); ok {
		t.Fatal("an expired entry was found")
	}
	// an Offer of the same answer stores it again.
	if !s.Offer("k", e) {
		t.Fatal("Offer refused")
	}
	deadline := time.Now().Add(time.Second)
	for {
		if _, ok, _ := s.Get(ctx, "k"); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the answer offered after its entry expired was never stored: the Offer was taken for a refresh of the expired entry")
		}
		time.Sleep(time.Millisecond)
	}
}
