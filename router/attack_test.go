package router_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// fake is a pure-Go model answering y = 0.5 that records its calls and
// its Close, and can be told to panic on Close or to hang ignoring ctx.
type fake struct {
	closes     atomic.Int32
	inFlight   atomic.Int32
	closedBusy atomic.Bool // Close ran while a call was in flight
	closePanic bool
	fail       atomic.Bool   // Predict fails
	hang       chan struct{} // when not nil, Predict waits on it, ignoring ctx
}

func (f *fake) Predict(ctx context.Context, _ []tensor.Tensor) ([]tensor.Tensor, error) {
	f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	if f.closes.Load() > 0 {
		return nil, errors.New("fake: called after Close")
	}
	if f.hang != nil {
		<-f.hang
	}
	if f.fail.Load() {
		return nil, errors.New("fake: failing")
	}
	return []tensor.Tensor{tensor.New("y", []int64{1}, []float32{0.5})}, nil
}

func (f *fake) Close() error {
	if f.inFlight.Load() > 0 {
		f.closedBusy.Store(true)
	}
	f.closes.Add(1)
	if f.closePanic {
		panic("fake: Close exploded")
	}
	return nil
}

func loaderOf(models ...router.Model) router.Loader {
	var n atomic.Int32
	return router.LoaderFunc(func(context.Context) (router.Loaded, error) {
		i := int(n.Add(1)-1) % len(models)
		return router.Loaded{Model: models[i]}, nil
	})
}

func yIn() []tensor.Tensor { return []tensor.Tensor{tensor.New("x", []int64{1}, []float32{1})} }

func TestAModelWhoseClosePanicsDoesNotEndTheProcess(t *testing.T) {
	noLeaks(t)
	// Given a tier whose loaded versions panic when closed,
	first, second := &fake{closePanic: true}, &fake{closePanic: true}
	r, err := router.New(router.Config{
		Tiers:     []router.Tier{{Name: "m", Load: loaderOf(first, second), MustLoad: true, Rollback: router.Rollback{Window: -1}}},
		Heuristic: answerY,
	})
	if err != nil {
		t.Fatal(err)
	}
	// when a reload replaces the first and the router closes the second,
	if err := r.Reload(context.Background(), "m", loaderOf(second)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first version is closed", func() bool { return first.closes.Load() == 1 })
	err = r.Close()
	// then both panics are reported by Close, and the process goes on.
	if second.closes.Load() != 1 || !errors.Is(err, router.ErrPanic) {
		t.Fatalf("Close = %v after %d closes of the second version; want ErrPanic after one", err, second.closes.Load())
	}
}

func TestALoaderReturningTheModelServingNowNeverClosesIt(t *testing.T) {
	noLeaks(t)
	// Given a Loader that hands out the same model every time (a
	// memoising loader),
	m := &fake{}
	r, err := router.New(router.Config{
		Tiers:     []router.Tier{{Name: "m", Load: loaderOf(m), MustLoad: true, Rollback: router.Rollback{Window: -1}}},
		Heuristic: answerY,
	})
	if err != nil {
		t.Fatal(err)
	}
	// when the tier is reloaded with it,
	err = r.Reload(context.Background(), "m", loaderOf(m))
	// then the model serving now is refused as a new version and is
	// never closed under the requests it still serves.
	var re *router.ReloadError
	if !errors.As(err, &re) || re.Check != router.CheckLoad {
		t.Fatalf("Reload = %v, want a ReloadError at the load check", err)
	}
	time.Sleep(20 * time.Millisecond) // a wrong close would run in the background
	if a, err := r.Predict(context.Background(), yIn()); err != nil || a.Tier != "m" {
		t.Fatalf("Predict = %+v, %v; want the tier serving", a, err)
	}
	if n := m.closes.Load(); n != 0 {
		t.Fatalf("the model serving was closed %d times", n)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := m.closes.Load(); n != 1 {
		t.Fatalf("the model was closed %d times by the router's Close, want once", n)
	}
}

func TestAProbeStillHangingCountsAsAFailedProbe(t *testing.T) {
	// Given a model that hangs ignoring ctx, probed every few milliseconds,
	m := &fake{hang: make(chan struct{})}
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "m", Model: m,
			Canaries: []router.Canary{{Inputs: yIn()}},
			Probe:    router.Probe{Interval: 5 * time.Millisecond, Timeout: 10 * time.Millisecond, FailAfter: 3}}},
		Heuristic: answerY,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer close(m.hang)
	defer r.Close()
	// when its first probe never returns, the probes that find it still
	// running fail, and the tier is taken out of service.
	eventually(t, "the tier is unhealthy", func() bool { return r.Health()["m"].Condition == router.Unhealthy })
}

func TestReloadsRacingRequestsAndCloseCloseEveryModelOnceAndNeverUnderACall(t *testing.T) {
	noLeaks(t)
	// Given two tiers reloaded concurrently, with short rollback windows,
	// while requests run and the router closes midway,
	var made []*fake
	var mu = make(chan struct{}, 1)
	loader := router.LoaderFunc(func(context.Context) (router.Loaded, error) {
		f := &fake{}
		mu <- struct{}{}
		made = append(made, f)
		<-mu
		return router.Loaded{Model: f}, nil
	})
	tier := func(name string) router.Tier {
		return router.Tier{Name: name, Load: loader, MustLoad: true, Rollback: router.Rollback{Window: time.Millisecond}}
	}
	r, err := router.New(router.Config{Tiers: []router.Tier{tier("a"), tier("b")}, Heuristic: answerY})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	for i := range 6 {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 0 {
					_ = r.Reload(context.Background(), []string{"a", "b"}[i%4/2], loader)
				} else if _, err := r.Predict(context.Background(), yIn()); err != nil && !errors.Is(err, router.ErrClosed) {
					t.Errorf("Predict: %v", err)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	// when it closes,
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	for range 6 {
		<-done
	}
	// then every model it loaded was closed exactly once, never while a
	// call ran on it. A Loader runs on a goroutine of its own, so one may
	// hand back its model just after Close, which then closes it late.
	loaded := func() []*fake {
		mu <- struct{}{}
		defer func() { <-mu }()
		return slices.Clone(made)
	}
	eventually(t, "every loaded model is closed", func() bool {
		return !slices.ContainsFunc(loaded(), func(f *fake) bool { return f.closes.Load() == 0 })
	})
	all := loaded()
	if len(all) < 4 {
		t.Fatalf("only %d models loaded", len(all))
	}
	for i, f := range all {
		if f.closes.Load() != 1 || f.closedBusy.Load() {
			t.Errorf("model %d of %d: closed %d times, under a call: %v", i, len(all), f.closes.Load(), f.closedBusy.Load())
		}
	}
}

// rungOf is a custom rung whose Name and Kind can misbehave.
type rungOf struct {
	name func() string
	kind router.Kind
}

func (g *rungOf) Name() string      { return g.name() }
func (g *rungOf) Kind() router.Kind { return g.kind }
func (g *rungOf) Serve(context.Context, router.Request) (router.Answer, error) {
	return router.Answer{Outputs: []tensor.Tensor{tensor.New("y", []int64{1}, []float32{1})}}, nil
}

func TestNewRefusesCustomRungsThatCannotDescribeThemselves(t *testing.T) {
	var typedNil *rungOf
	for name, tc := range map[string]struct {
		rung router.Rung
		want error
	}{
		"a nil pointer":          {typedNil, router.ErrInvalidConfig},
		"a Name that panics":     {&rungOf{name: func() string { panic("no name") }, kind: "x"}, router.ErrPanic},
		"no Kind":                {&rungOf{name: func() string { return "x" }}, router.ErrInvalidConfig},
		"a built-in's name":      {&rungOf{name: func() string { return "heuristic" }, kind: "x"}, router.ErrInvalidConfig},
		"a name taken by a tier": {&rungOf{name: func() string { return "m" }, kind: "x"}, router.ErrInvalidConfig},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := router.New(router.Config{Tiers: []router.Tier{{Name: "m", Model: &fake{}}}, Rungs: []router.Rung{tc.rung}})
			if !errors.Is(err, router.ErrInvalidConfig) || !errors.Is(err, tc.want) {
				t.Fatalf("New = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestALoaderIgnoringCtxHoldsUpNeitherReloadNorClose(t *testing.T) {
	noLeaks(t)
	// Given a Loader that hangs, ignoring ctx, and then returns a model,
	release := make(chan struct{})
	late := &fake{}
	var calls atomic.Int32
	hung := router.LoaderFunc(func(context.Context) (router.Loaded, error) {
		calls.Add(1)
		<-release
		return router.Loaded{Model: late}, nil
	})
	r, err := router.New(router.Config{Tiers: []router.Tier{{Name: "m", Model: &fake{}}}, Heuristic: answerY})
	if err != nil {
		t.Fatal(err)
	}
	// when a Reload's ctx ends, Reload returns,
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.Reload(ctx, "m", hung); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reload = %v, want the deadline", err)
	}
	// the next Reload does not call a Loader while that one runs,
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if err := r.Reload(ctx2, "m", hung); !errors.Is(err, context.DeadlineExceeded) || calls.Load() != 1 {
		t.Fatalf("Reload = %v after %d Loader calls, want the deadline after one", err, calls.Load())
	}
	// and Close returns too.
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for a Loader that ignores ctx")
	}
	// The model the Loader returns late is closed, never served.
	close(release)
	eventually(t, "the late model is closed", func() bool { return late.closes.Load() == 1 })
}

func TestAReloadDuringStartUpIsNotOverwrittenByTheStartUpLoad(t *testing.T) {
	noLeaks(t)
	// Given a tier whose start-up load keeps failing for now,
	var startUp atomic.Int32
	failing := router.LoaderFunc(func(context.Context) (router.Loaded, error) {
		if startUp.Add(1) < 3 {
			return router.Loaded{}, errors.New("not there yet")
		}
		return router.Loaded{Model: &fake{}, Version: "start-up"}, nil
	})
	r, err := router.New(router.Config{
		Tiers:     []router.Tier{{Name: "m", Load: failing, LoadRetry: router.Retry{Attempts: 1, Backoff: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}}},
		Heuristic: answerY,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	eventually(t, "the start-up load failed once", func() bool { return startUp.Load() >= 1 })
	// when an operator reloads it by hand meanwhile,
	if err := r.Reload(context.Background(), "m", router.LoaderFunc(func(context.Context) (router.Loaded, error) {
		return router.Loaded{Model: &fake{}, Version: "by-hand"}, nil
	})); err != nil {
		t.Fatal(err)
	}
	// then the start-up load stops: the version loaded by hand serves on.
	time.Sleep(150 * time.Millisecond)
	if v := r.Health()["m"].Version; v != "by-hand" {
		t.Fatalf("serving %q after %d start-up loads, want the version loaded by hand", v, startUp.Load())
	}
}

func TestARejectedReloadKeepsTheRollbackWatchOfTheVersionBefore(t *testing.T) {
	noLeaks(t)
	// Given v2 reloaded over v1 and watched for rollback,
	v1, v2, v3 := &fake{}, &fake{}, &fake{}
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "m", Load: loaderOf(v1), MustLoad: true,
			Rollback: router.Rollback{Window: time.Minute, MinRequests: 5},
			Validate: func(_ context.Context, m router.Model) error {
				if m == router.Model(v3) {
					return errors.New("v3 is bad")
				}
				return nil
			}}},
		Heuristic: answerY,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Reload(context.Background(), "m", loaderOf(v2)); err != nil {
		t.Fatal(err)
	}
	// when a reload of v3 is rejected
	if err := r.Reload(context.Background(), "m", loaderOf(v3)); !errors.Is(err, router.ErrReload) {
		t.Fatalf("Reload of v3 = %v, want it rejected", err)
	}
	// and v2 then fails under traffic,
	v2.fail.Store(true)
	for range 20 {
		if _, err := r.Predict(context.Background(), yIn()); err != nil {
			t.Fatal(err)
		}
	}
	// then v2 is still rolled back to v1, which was kept loaded.
	eventually(t, "v2 is rolled back", func() bool { return r.Health()["m"].Rollbacks == 1 })
	if a, err := r.Predict(context.Background(), yIn()); err != nil || a.Tier != "m" || v1.closes.Load() != 0 {
		t.Fatalf("after the rollback: %+v, %v, v1 closed %d times", a, err, v1.closes.Load())
	}
}
