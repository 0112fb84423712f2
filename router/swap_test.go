package router_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// failsWhenReleased fails each call once released, signalling when one
// has started.
type failsWhenReleased struct {
	started chan struct{}
	release chan struct{}
}

func (m failsWhenReleased) Predict(ctx context.Context, _ []tensor.Tensor) ([]tensor.Tensor, error) {
	m.started <- struct{}{}
	<-m.release
	return nil, errors.New("v1: failing")
}

func TestAFailureOfThePreviousVersionDoesNotOpenTheNewOnesBreaker(t *testing.T) {
	testenv.NoLeaks(t)
	g := &grab{}
	v1 := failsWhenReleased{started: make(chan struct{}, 1), release: make(chan struct{})}
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "m", Model: v1, Version: "v1", Manage: []router.Manager{g},
			Policy: policy.Config{MaxAttempts: 1, OpenFor: 1 << 62, Executions: 2, FailureRate: 0.5}}},
		Heuristic: answerY,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Given a request in flight on v1 when v2 is swapped in,
	done := make(chan router.Answer)
	go func() {
		a, _ := r.Predict(context.Background(), yIn())
		done <- a
	}()
	<-v1.started
	v, err := g.h.Prepare(&answering{}, "v2", "test")
	if err != nil {
		t.Fatal(err)
	}
	prev, err := g.h.Swap(v)
	if err != nil {
		t.Fatal(err)
	}
	// when that request fails on v1 after the swap,
	close(v1.release)
	if a := <-done; a.Tier == "m" {
		t.Fatalf("the request in flight on v1 was served by %s", a.Tier)
	}
	prev.Release()
	// then v2's breaker is still closed, and v2 serves.
	if s := r.Health()["m"].State; s != policy.Closed {
		t.Fatalf("v2's breaker is %v after v1's late failure, want closed", s)
	}
	if a, err := r.Predict(context.Background(), yIn()); err != nil || a.Tier != "m" || a.Version != "v2" {
		t.Fatalf("got %+v, %v; want v2 serving", a, err)
	}
}
