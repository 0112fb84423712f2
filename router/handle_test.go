package router_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// A manager drives its tier through a router.Handle. These tests hold
// the Handle themselves, as a manager would.

// grab is a manager that hands its Handle to the test.
type grab struct{ h *router.Handle }

func (g *grab) Start(_ context.Context, h *router.Handle) error { g.h = h; return nil }

// answering is a model answering y = 0.5 that can be told to fail and
// counts its Close.
type answering struct {
	fail   atomic.Bool
	closes atomic.Int32
}

func (m *answering) Predict(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
	if m.fail.Load() {
		return nil, errors.New("answering: failing")
	}
	return []tensor.Tensor{tensor.New("y", []int64{1}, []float32{0.5})}, nil
}

func (m *answering) Close() error { m.closes.Add(1); return nil }

func yIn() []tensor.Tensor { return []tensor.Tensor{tensor.New("x", []int64{1}, []float32{1})} }

// handled returns a router whose tier m serves first and is managed by
// the returned grab, above a heuristic.
func handled(t *testing.T, first router.Model, ev *testenv.Events) (*router.Router, *router.Handle) {
	t.Helper()
	g := &grab{}
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "m", Model: first, Version: "v1", Manage: []router.Manager{g},
			Policy: policy.Config{MaxAttempts: 1, OpenFor: 1 << 62}}},
		Heuristic: answerY,
		OnEvent:   ev.Add,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, g.h
}

func TestASwapStartsTheTierAfresh(t *testing.T) {
	testenv.NoLeaks(t)
	// Given a tier whose version failed until its breaker opened,
	var ev testenv.Events
	v1 := &answering{}
	v1.fail.Store(true)
	r, h := handled(t, v1, &ev)
	for i := 0; r.Health()["m"].State != policy.Open; i++ {
		if i == 100 {
			t.Fatal("the breaker is not open after 100 failed requests")
		}
		if _, err := r.Predict(context.Background(), yIn()); err != nil {
			t.Fatal(err)
		}
	}
	// when a manager prepares a new version and swaps it in,
	v2 := &answering{}
	v, err := h.Prepare(v2, "v2", "test")
	if err != nil {
		t.Fatal(err)
	}
	prev, err := h.Swap(v)
	if err != nil {
		t.Fatal(err)
	}
	// then it serves the next request at once, its breaker closed,
	a, err := r.Predict(context.Background(), yIn())
	if err != nil || a.Tier != "m" || a.Version != "v2" || len(a.Fell) != 0 {
		t.Fatalf("got %+v, %v; want v2 serving at once", a, err)
	}
	if h := r.Health()["m"]; h.State != policy.Closed || h.Condition != router.Healthy || h.Version != "v2" || h.Source != "test" {
		t.Fatalf("health %v, want v2 healthy, its breaker closed", h)
	}
	// Swap returned the version before, a Reloaded event says so, and
	// swapping in the version serving is refused.
	if prev == nil || prev.Label() != "v1" || h.Current() != v {
		t.Fatalf("Swap returned %v and Current is %v; want v1 returned and v2 current", prev, h.Current())
	}
	if e := ev.Of(router.Reloaded); len(e) != 1 || e[0].Version != "v2" {
		t.Fatalf("reloaded events %+v, want one for v2", e)
	}
	if _, err := h.Swap(v); !errors.Is(err, router.ErrInvalidConfig) {
		t.Fatalf("Swap of the version serving = %v, want ErrInvalidConfig", err)
	}
	// The caller's model is never closed by the router; the router's is,
	// once, at Close.
	prev.Release()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if v1.closes.Load() != 0 || v2.closes.Load() != 1 {
		t.Fatalf("closes: v1 %d, v2 %d; want 0 and 1", v1.closes.Load(), v2.closes.Load())
	}
}

func TestAVersionReleasedTwiceIsClosedOnce(t *testing.T) {
	r, _, m, v := prepared(t)
	// Given a version prepared and never swapped in, when it is released
	// twice,
	v.Release()
	v.Release()
	// then its model is closed once, by the time Close has waited for
	// the router's work.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := m.closes.Load(); n != 1 {
		t.Fatalf("closed %d times, want once", n)
	}
	if _, err := v.Predict(context.Background(), 1<<30, yIn()); !errors.Is(err, router.ErrClosed) {
		t.Fatalf("Predict on a released version = %v, want ErrClosed", err)
	}
}

func TestAHandleRunsNoWorkOnceTheRouterIsClosed(t *testing.T) {
	var ev testenv.Events
	r, h := handled(t, &answering{}, &ev)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if h.Go(func(context.Context) { t.Error("Go ran after Close") }) {
		t.Error("Go reported it ran after Close")
	}
	if err := h.Run(context.Background(), func(context.Context) error { return errors.New("ran") }); !errors.Is(err, router.ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
}

func TestReleasingTheServingVersionKeepsItServing(t *testing.T) {
	r, h, m, v := prepared(t)
	if _, err := h.Swap(v); err != nil {
		t.Fatal(err)
	}
	// Given the serving version released by mistake,
	h.Current().Release()
	// then the tier still serves it, its model open,
	a, err := r.Predict(context.Background(), yIn())
	if err != nil || a.Tier != "m" || a.Version != "v2" {
		t.Fatalf("got %+v, %v; want v2 still serving", a, err)
	}
	if n := m.closes.Load(); n != 0 {
		t.Fatalf("the serving model was closed %d times", n)
	}
	// and Close closes it once.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := m.closes.Load(); n != 1 {
		t.Fatalf("the model was closed %d times, want once, by Close", n)
	}
}

func TestAReleasedVersionCannotBeSwappedIn(t *testing.T) {
	r, h, _, v := prepared(t)
	// Given a version released, when a manager swaps it in anyway,
	v.Release()
	_, err := h.Swap(v)
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

// prepared is a router whose tier serves v1, with a version v2 of model m
// prepared on its handle and not swapped in.
func prepared(t *testing.T) (*router.Router, *router.Handle, *answering, *router.Version) {
	t.Helper()
	testenv.NoLeaks(t)
	var ev testenv.Events
	r, h := handled(t, &answering{}, &ev)
	m := &answering{}
	v, err := h.Prepare(m, "v2", "test")
	if err != nil {
		t.Fatal(err)
	}
	return r, h, m, v
}
