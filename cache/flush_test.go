package cache

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/tensor"
)

func entry(v float32) Entry {
	return Entry{Outputs: []tensor.Tensor{tensor.New("p", []int64{1}, []float32{v})}, Tier: "primary"}
}

// newTestStore returns a Store on a fake clock that nobody advances, which
// the test closes when it ends.
func newTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(Config{Clock: clock.NewFake(time.Unix(1e9, 0))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFlushWaitsForEveryOfferedWrite(t *testing.T) {
	// Given a store whose clock never moves, and writes offered to it,
	s := newTestStore(t)
	const n = 500 // fewer than the queue holds, so none is dropped
	for i := range n {
		if !s.Offer(fmt.Sprint(i), entry(float32(i))) {
			t.Fatalf("Offer %d refused", i)
		}
	}
	// when Flush returns, then every one of them is stored.
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	for i := range n {
		if _, ok, _ := s.Get(context.Background(), fmt.Sprint(i)); !ok {
			t.Fatalf("Get(%d) after Flush missed", i)
		}
	}
	// A Flush with nothing queued returns too.
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush of an empty queue: %v", err)
	}
}

func TestFlushEndsWithItsContext(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the store's own cleanup closes it
	s := newTestStore(t)
	// A done context ends Flush at once.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Flush(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Flush with a done context = %v, want context.Canceled", err)
	}

	// Given a write the store's goroutine cannot store yet, as it waits
	// for the store's mutex,
	s.mu.Lock()
	s.Offer("k", entry(1))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Flush(ctx) }()
	// when Flush's context ends, then Flush returns its error,
	cancel()
	err := <-errc
	s.mu.Unlock()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Flush = %v, want context.Canceled", err)
	}
	// and the write is stored all the same.
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(context.Background(), "k"); !ok {
		t.Fatal("the offered write was lost")
	}
}

func TestFlushAfterCloseReturnsNil(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the store's own cleanup closes it
	s := newTestStore(t)

	// Given a Flush waiting for a write the store's goroutine is held up on,
	s.mu.Lock()
	s.Offer("k", entry(1))
	errc := make(chan error, 1)
	go func() { errc <- s.Flush(context.Background()) }()
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	// when the store is closed, then Flush returns nil,
	s.mu.Unlock()
	<-closed
	if err := <-errc; err != nil {
		t.Fatalf("Flush during Close = %v, want nil", err)
	}
	// and a Flush after Close returns nil at once, even with a done context.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Flush(done); err != nil {
		t.Fatalf("Flush after Close = %v, want nil", err)
	}
}
