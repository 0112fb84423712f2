package router_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

func TestReleasingTheServingVersionKeepsItServing(t *testing.T) {
	testenv.NoLeaks(t)
	var ev testenv.Events
	r, h := handled(t, &answering{}, &ev)
	m := &answering{}
	v, err := h.Prepare(m, "v2", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Swap(v); err != nil {
		t.Fatal(err)
	}
	// Given the serving version released by mistake,
	h.Current().Release()
	time.Sleep(10 * time.Millisecond) // the background drain, were it started
	// then the tier still serves it, and its model is not closed under it.
	a, err := r.Predict(context.Background(), yIn())
	if err != nil || a.Tier != "m" || a.Version != "v2" {
		t.Fatalf("got %+v, %v; want v2 still serving", a, err)
	}
	if n := m.closes.Load(); n != 0 {
		t.Fatalf("the serving model was closed %d times", n)
	}
}

func TestAReleasedVersionCannotBeSwappedIn(t *testing.T) {
	testenv.NoLeaks(t)
	var ev testenv.Events
	r, h := handled(t, &answering{}, &ev)
	m := &answering{}
	v, err := h.Prepare(m, "v2", "test")
	if err != nil {
		t.Fatal(err)
	}
	// Given a version released, when a manager swaps it in anyway,
	v.Release()
	_, err = h.Swap(v)
	// then the swap is refused, and the tier serves what it served.
	if err == nil {
		t.Fatal("Swap of a released version succeeded")
	}
	a, err := r.Predict(context.Background(), yIn())
	if err != nil || a.Tier != "m" || a.Version != "v1" {
		t.Fatalf("got %+v, %v; want v1 still serving", a, err)
	}
}

func TestAVersionServesOnlyItsOwnTier(t *testing.T) {
	testenv.NoLeaks(t)
	ga, gb := &grab{}, &grab{}
	r, err := router.New(router.Config{
		Tiers: []router.Tier{
			{Name: "a", Model: &answering{}, Manage: []router.Manager{ga}},
			{Name: "b", Model: &answering{}, Manage: []router.Manager{gb}},
		},
		Heuristic: answerY,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	v, err := ga.h.Prepare(&answering{}, "a2", "test")
	if err != nil {
		t.Fatal(err)
	}
	// Given a version prepared for tier a, when tier b's handle swaps it in,
	// then the swap is refused.
	if _, err := gb.h.Swap(v); err == nil {
		t.Fatal("tier b swapped in a version of tier a")
	}
	v.Release()
}

// hangs ignores ctx until released.
type hangs struct{ release chan struct{} }

func (m hangs) Predict(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
	<-m.release
	return nil, errors.New("too late")
}

func TestATierWithEveryCallAbandonedCannotServe(t *testing.T) {
	testenv.NoLeaks(t)
	m := hangs{release: make(chan struct{})}
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "m", Model: m, Required: true,
			Policy: policy.Config{MaxAttempts: 1, MaxConcurrent: 1, Timeout: 5 * time.Millisecond, OpenFor: 1 << 62, Executions: 100}}},
		Heuristic: answerY,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer close(m.release)
	// Given a required tier whose one call is left running past its
	// timeout, so that every request skips it,
	if _, err := r.Predict(context.Background(), yIn()); err != nil {
		t.Fatal(err)
	}
	a, err := r.Predict(context.Background(), yIn())
	if err != nil || len(a.Fell) == 0 || !errors.Is(a.Fell[0].Err, router.ErrAbandoned) {
		t.Fatalf("got %+v, %v; want tier m skipped as abandoned", a, err)
	}
	// then its status does not say it can serve, and the router is not ready.
	if s := r.Status()[0]; s.CanServe {
		t.Fatalf("status %+v: CanServe while every request skips it", s)
	}
	if r.Ready() {
		t.Fatal("ready while a required tier skips every request")
	}
}
