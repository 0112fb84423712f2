package cache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/tensor"
)

func TestGetOfKeysSharingAPlaceInTheRecentIndex(t *testing.T) {
	s, err := New(Config{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Given two keys whose writes share one place of the recent index,
	a, b := "a", ""
	for i := 0; b == ""; i++ {
		if k := fmt.Sprint("b", i); s.slot(k) == s.slot(a) {
			b = k
		}
	}
	entry := func(v float32) Entry {
		return Entry{Outputs: []tensor.Tensor{tensor.New("p", []int64{1}, []float32{v})}, Tier: "primary"}
	}
	ctx := context.Background()
	s.Put(ctx, a, entry(1))
	s.Put(ctx, b, entry(2)) // b takes the place
	// then each key still reads its own entry, from the index or from
	// go-cache,
	for key, want := range map[string]float32{a: 1, b: 2} {
		e, ok, _ := s.Get(ctx, key)
		if !ok || e.Outputs[0].Data.([]float32)[0] != want {
			t.Fatalf("Get(%q) = %v, %v; want %v", key, e.Outputs, ok, want)
		}
	}
	// and a key never stored misses, even in a taken place.
	if _, ok, _ := s.Get(ctx, "never"); ok {
		t.Fatal("a key never stored was found")
	}
}

func TestGetFromTheRecentIndexMissesAnExpiredEntry(t *testing.T) {
	clk := clock.NewFake(time.Unix(1e9, 0))
	s, err := New(Config{TTL: time.Minute, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	s.Put(ctx, "k", Entry{Outputs: []tensor.Tensor{tensor.New("p", []int64{1}, []float32{1})}})
	if s.recent[s.slot("k")].Load() == nil {
		t.Fatal("the write is not in the recent index")
	}
	if _, ok, _ := s.Get(ctx, "k"); !ok {
		t.Fatal("a fresh entry was not found")
	}
	clk.Advance(time.Minute)
	if _, ok, _ := s.Get(ctx, "k"); ok {
		t.Fatal("an entry past its TTL was found")
	}
}
