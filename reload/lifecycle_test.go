package reload_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/probe"
	"github.com/ladder-ml/ladder/reload"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// gate returns a channel that blocks its receivers until release is
// called, which t's cleanup does too, so that a test that fails midway
// leaves no goroutine behind for the next tests' leak checks.
func gate(t *testing.T) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return ch, release
}

// The models a Reloader loads belong to the router: each is closed once,
// never under a call, and neither a slow Loader, Validate or model call
// nor a swap holds up a request or Close.

func TestAReloadUnderLoadDropsNoRequest(t *testing.T) {
	testenv.NoLeaks(t)
	l := newReloadable(t,
		rollback(reload.Rollback{Window: -1}), // the old version closes as soon as it drains
		timeout(time.Second))
	var (
		wg                    sync.WaitGroup
		stop                  atomic.Bool
		served, failed, other atomic.Int64
	)
	for w := range 4 {
		wg.Go(func() {
			for i := w; !stop.Load(); i += 4 {
				a, err := l.R.Predict(context.Background(), l.In(i), router.LowestTier("primary"))
				switch {
				case err != nil:
					failed.Add(1)
				case a.Tier != "primary":
					other.Add(1)
				default:
					served.Add(1)
				}
			}
		})
	}
	const reloads = 20
	for range reloads {
		if err := l.rl.Reload(context.Background(), fileLoader(l.path)); err != nil {
			t.Error(err)
		}
		// Each version serves requests before the next replaces it.
		n := served.Load()
		testenv.Eventually(t, "the new version serves", func() bool { return served.Load() > n })
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d reloads under 4 concurrent callers: %d requests served by the primary, %d failed, %d fell", reloads, served.Load(), failed.Load(), other.Load())
	if failed.Load() != 0 || other.Load() != 0 || served.Load() == 0 {
		t.Fatalf("%d failed and %d fell of %d; want none", failed.Load(), other.Load(), served.Load())
	}
}

// counted is a loaded model that counts its Close in closes.
type counted struct {
	*models.Model
	closes *atomic.Int64
}

func (c counted) Close() error { c.closes.Add(1); return c.Model.Close() }

func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// rssBound is the most resident memory 100 reloads of medium.onnx (290 KB
// of weights) may add. Measured on the 2-core test machine, with and
// without the race detector: about 8 MiB, while 100 loads of it that are
// never closed add about 95 MiB.
const rssBound = 24 << 20

func TestAHundredReloadsLeaveMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("100 reloads")
	}
	l := newReloadable(t, rollback(reload.Rollback{Window: -1}), timeout(time.Second))
	var loads, closes atomic.Int64
	medium := testenv.Testdata("medium.onnx")
	loader := reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
		m, err := models.Load(medium, models.Options{})
		if err != nil {
			return reload.Loaded{}, err
		}
		loads.Add(1)
		return reload.Loaded{Model: counted{m, &closes}}, nil
	})
	reloadN := func(n int) {
		for range n {
			if err := l.rl.Reload(context.Background(), loader); err != nil {
				t.Fatal(err)
			}
			l.Predict(t, 0)
		}
	}
	reloadN(20) // let the allocators reach their steady state
	testenv.Eventually(t, "the old versions are closed", func() bool { return closes.Load() == loads.Load()-1 })
	before := rss(t)
	reloadN(100)
	testenv.Eventually(t, "the old versions are closed", func() bool { return closes.Load() == loads.Load()-1 })
	after := rss(t)
	t.Logf("RSS %d MiB before and %d MiB after 100 reloads of medium.onnx: %+d KiB (bound %d MiB)", before>>20, after>>20, (after-before)>>10, rssBound>>20)
	if after-before > rssBound {
		t.Fatalf("100 reloads grew RSS by %d KiB, more than %d MiB", (after-before)>>10, rssBound>>20)
	}
}

// holding answers like m, but holds a request marked with -1 until
// released, and records its Close, and whether a call was running then.
type holding struct {
	m           *models.Model
	entered     chan struct{}
	released    <-chan struct{}
	running     atomic.Int32
	closed      atomic.Bool
	closedUnder atomic.Bool
}

func (h *holding) Predict(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	h.running.Add(1)
	defer h.running.Add(-1)
	if f, _ := tensor.Data[float32](in[0]); f[29] == -1 {
		close(h.entered)
		<-h.released
	}
	if h.closed.Load() {
		return nil, errors.New("run on a closed session")
	}
	return h.m.Predict(ctx, in)
}

func (h *holding) Signature() tensor.Signature { return h.m.Signature() }
func (h *holding) Close() error {
	if h.running.Load() > 0 {
		h.closedUnder.Store(true)
	}
	h.closed.Store(true)
	return h.m.Close()
}

func TestAnOldVersionClosesOnlyOnceItsRequestsHaveReturned(t *testing.T) {
	testenv.NoLeaks(t)
	testenv.MustHaveRuntime(t)
	m, err := models.Load(testenv.Testdata("primary.onnx"), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	released, release := gate(t)
	old := &holding{m: m, entered: make(chan struct{}), released: released}
	rl := reload.New(reload.Config{MustLoad: true, Load: modelLoader(old, "v1"), Rollback: reload.Rollback{Window: -1}})
	r, err := router.New(router.Config{Tiers: []router.Tier{{Name: "primary", Manage: []router.Manager{rl},
		Policy: policy.Config{Timeout: 10 * time.Second}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Given a request running on v1,
	marked := slices.Clone(testenv.Heldout(t)[0])
	marked[29] = -1
	done := make(chan error)
	go func() {
		_, err := r.Predict(context.Background(), []tensor.Tensor{tensor.New("features", []int64{1, 30}, marked)})
		done <- err
	}()
	<-old.entered
	// when v2 is swapped in,
	m2, err := models.Load(testenv.Testdata("primary.onnx"), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rl.Reload(context.Background(), modelLoader(m2, "v2")); err != nil {
		t.Fatal(err)
	}
	// then v2 serves new requests while v1 stays open for the one in
	// flight,
	if a, err := r.Predict(context.Background(), l0(t)); err != nil || a.Version != "v2" {
		t.Fatalf("got %+v, %v; want v2", a, err)
	}
	if old.closed.Load() {
		t.Fatal("v1 was closed with a request running on it")
	}
	// which finishes on v1, after which v1 is closed, and was never
	// closed under a call.
	release()
	if err := <-done; err != nil {
		t.Fatalf("the request in flight failed: %v", err)
	}
	testenv.Eventually(t, "v1 is closed", old.closed.Load)
	if old.closedUnder.Load() {
		t.Fatal("v1 was closed under a call")
	}
}

// l0 is the first held-out row, as a request.
func l0(t *testing.T) []tensor.Tensor {
	t.Helper()
	return []tensor.Tensor{tensor.New("features", []int64{1, 30}, testenv.Heldout(t)[0])}
}

func TestAModelWhoseClosePanicsDoesNotEndTheProcess(t *testing.T) {
	testenv.NoLeaks(t)
	// Given a tier whose loaded versions panic when closed,
	first, second := &fake{closePanic: true}, &fake{closePanic: true}
	rl := reload.New(reload.Config{Load: loaderOf(first, second), MustLoad: true, Rollback: reload.Rollback{Window: -1}})
	r, err := router.New(router.Config{
		Tiers:     []router.Tier{{Name: "m", Manage: []router.Manager{rl}}},
		Heuristic: answerY,
	})
	if err != nil {
		t.Fatal(err)
	}
	// when a reload replaces the first and the router closes the second,
	if err := rl.Reload(context.Background(), loaderOf(second)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the first version is closed", func() bool { return first.closes.Load() == 1 })
	err = r.Close()
	// then both panics are reported by Close, and the process goes on.
	if second.closes.Load() != 1 || !errors.Is(err, router.ErrPanic) {
		t.Fatalf("Close = %v after %d closes of the second version; want ErrPanic after one", err, second.closes.Load())
	}
}

func TestReloadsRacingRequestsAndCloseCloseEveryModelOnceAndNeverUnderACall(t *testing.T) {
	testenv.NoLeaks(t)
	// Given two tiers reloaded concurrently, with short rollback windows
	// on real time (the race of watches ending with reloads and Close is
	// the point), while requests run and the router closes midway,
	var made []*fake
	var mu = make(chan struct{}, 1)
	loader := reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
		f := &fake{}
		mu <- struct{}{}
		made = append(made, f)
		<-mu
		return reload.Loaded{Model: f}, nil
	})
	loaded := func() []*fake {
		mu <- struct{}{}
		defer func() { <-mu }()
		return slices.Clone(made)
	}
	reloaders := map[string]*reload.Reloader{}
	tier := func(name string) router.Tier {
		reloaders[name] = reload.New(reload.Config{Load: loader, MustLoad: true, Rollback: reload.Rollback{Window: time.Millisecond}})
		return router.Tier{Name: name, Manage: []router.Manager{reloaders[name]}}
	}
	r, err := router.New(router.Config{Tiers: []router.Tier{tier("a"), tier("b")}, Heuristic: answerY})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	var predictions atomic.Int64
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
					_ = reloaders[[]string{"a", "b"}[i%4/2]].Reload(context.Background(), loader)
				} else if _, err := r.Predict(context.Background(), yIn()); err != nil && !errors.Is(err, router.ErrClosed) {
					t.Errorf("Predict: %v", err)
				} else {
					predictions.Add(1)
				}
			}
		}()
	}
	testenv.Eventually(t, "reloads and requests race", func() bool { return len(loaded()) >= 20 && predictions.Load() >= 100 })
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
	testenv.Eventually(t, "every loaded model is closed", func() bool {
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

func TestAValidateThatIgnoresCtxHoldsUpNeitherReloadNorClose(t *testing.T) {
	testenv.NoLeaks(t)
	released, release := gate(t)
	v1, v2 := &closedModel{}, &closedModel{}
	rl := reload.New(reload.Config{Load: modelLoader(v2, "v2"),
		Validate: func(context.Context, router.Model) error {
			<-released // ignores ctx
			return nil
		}})
	r, err := router.New(router.Config{Tiers: []router.Tier{managed("primary", v1, "v1", rl)}, Heuristic: heuristic})
	if err != nil {
		t.Fatal(err)
	}
	// Given a reload whose Validate never looks at ctx, with a deadline
	// (the caller's real time),
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = rl.Reload(ctx, nil)
	// then Reload returns at ctx's deadline with ctx's error, v1 serves on,
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("Reload returned %v after %v; want DeadlineExceeded at about 50ms", err, time.Since(start))
	}
	in := []tensor.Tensor{tensor.New("x", []int64{1, 1}, []float32{1})}
	if a, err := r.Predict(context.Background(), in); err != nil || a.Version != "v1" {
		t.Fatalf("got %+v, %v; want v1 serving", a, err)
	}
	// Close returns without waiting for the Validate,
	start = time.Now()
	if err := r.Close(); err != nil || time.Since(start) > time.Second {
		t.Fatalf("Close returned %v after %v", err, time.Since(start))
	}
	if v2.closed.Load() {
		t.Fatal("v2 was closed under its running Validate")
	}
	// and once the Validate returns, the version it held is closed.
	release()
	testenv.Eventually(t, "v2 closed after its Validate returned", v2.closed.Load)
}

// hungModel ignores ctx and answers only once released; it records its
// Close.
type hungModel struct {
	release <-chan struct{}
	closedModel
}

func (m *hungModel) Predict(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	<-m.release
	return m.closedModel.Predict(ctx, in)
}

func TestACallLeftRunningOnALoadedModelDoesNotHoldUpClose(t *testing.T) {
	testenv.NoLeaks(t)
	released, release := gate(t)
	hung := &hungModel{release: released}
	rl := reload.New(reload.Config{Load: modelLoader(hung, "v2"), Rollback: reload.Rollback{Window: -1}})
	tier := managed("primary", &closedModel{}, "v1", rl)
	tier.Policy = policy.Config{Timeout: 20 * time.Millisecond, MaxAttempts: 1}
	r, err := router.New(router.Config{Tiers: []router.Tier{tier}, Heuristic: heuristic})
	if err != nil {
		t.Fatal(err)
	}
	// Given a model the router loaded, whose call ignores ctx and hangs,
	if err := rl.Reload(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	in := []tensor.Tensor{tensor.New("x", []int64{1, 1}, []float32{1})}
	a, err := r.Predict(context.Background(), in)
	if err != nil || a.Tier != router.RungHeuristic {
		t.Fatalf("served by %s, %v; want the heuristic once the primary's call is left running", a.Tier, err)
	}
	// when the router closes, then Close returns without waiting for the
	// call, and leaves the model open under it,
	start := time.Now()
	if err := r.Close(); err != nil || time.Since(start) > time.Second {
		t.Fatalf("Close returned %v after %v", err, time.Since(start))
	}
	if hung.closed.Load() {
		t.Fatal("the model was closed under its running call")
	}
	// and the model is closed once the call returns.
	release()
	testenv.Eventually(t, "the model closed after its last call returned", hung.closed.Load)
}

// busyModel answers 0.5 once release is closed, ignoring ctx, and records
// whether it was closed while a call was still running on it.
type busyModel struct {
	release     <-chan struct{}
	running     atomic.Int32
	closed      atomic.Bool
	closedUnder atomic.Bool
}

func (m *busyModel) Predict(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
	m.running.Add(1)
	defer m.running.Add(-1)
	<-m.release
	return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{0.5})}, nil
}

func (m *busyModel) Close() error {
	if m.running.Load() > 0 {
		m.closedUnder.Store(true)
	}
	m.closed.Store(true)
	return nil
}

func TestAVersionRejectedByACanaryIsNotClosedUnderTheCanaryStillRunning(t *testing.T) {
	testenv.NoLeaks(t)
	released, release := gate(t)
	v2 := &busyModel{release: released}
	in := []tensor.Tensor{tensor.New("x", []int64{1, 1}, []float32{1})}
	rl := reload.New(reload.Config{Load: modelLoader(v2, "v2"),
		Canaries: []probe.Canary{{Inputs: in}}, CanaryTimeout: 20 * time.Millisecond})
	r, err := router.New(router.Config{Tiers: []router.Tier{managed("primary", &closedModel{}, "v1", rl)}})
	if err != nil {
		t.Fatal(err)
	}
	// Given a reload whose model hangs on its canary past the canary's
	// timeout, ignoring ctx,
	err = rl.Reload(context.Background(), nil)
	// then the reload is rejected at the canary check,
	var rerr *reload.ReloadError
	if !errors.As(err, &rerr) || rerr.Check != reload.CheckCanary {
		t.Fatalf("Reload returned %v; want a canary ReloadError", err)
	}
	// Close does not wait for the canary left running,
	start := time.Now()
	if err := r.Close(); err != nil || time.Since(start) > time.Second {
		t.Fatalf("Close returned %v after %v", err, time.Since(start))
	}
	// and the version is not closed while the canary still runs on it
	// (Close has waited for the release of the rejected version),
	if v2.closed.Load() {
		t.Fatal("v2 was closed under its running canary")
	}
	// but once the canary returns.
	release()
	testenv.Eventually(t, "v2 closed after its canary returned", v2.closed.Load)
	if v2.closedUnder.Load() {
		t.Fatal("v2 was closed under a running call")
	}
}

func TestAValidateLeftRunningHoldsUpTheTiersNextLoad(t *testing.T) {
	testenv.NoLeaks(t)
	released, release := gate(t)
	var running, most, loads atomic.Int32
	var models []*closedModel
	var mu sync.Mutex
	load := reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
		loads.Add(1)
		m := &closedModel{}
		mu.Lock()
		models = append(models, m)
		mu.Unlock()
		return reload.Loaded{Model: m, Version: "v2"}, nil
	})
	rl := reload.New(reload.Config{Load: load,
		Validate: func(context.Context, router.Model) error {
			n := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			<-released // ignores ctx
			return nil
		}})
	r, err := router.New(router.Config{Tiers: []router.Tier{managed("primary", &closedModel{}, "v1", rl)}})
	if err != nil {
		t.Fatal(err)
	}
	// Given reloads, each ending at its deadline while the tier's
	// Validate ignores ctx,
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		err := rl.Reload(ctx, nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Reload returned %v; want DeadlineExceeded", err)
		}
	}
	// then the next load waits for the Validate left running, as it waits
	// for a Loader left running: one model at most is held by it, and the
	// tier's Validates never run at once.
	if n, m := loads.Load(), most.Load(); n != 1 || m != 1 {
		t.Errorf("%d loads and %d Validates at once while a Validate was left running; want 1 and 1", n, m)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	release()
	testenv.Eventually(t, "every loaded model closed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range models {
			if !m.closed.Load() {
				return false
			}
		}
		return true
	})
}

func TestALoaderIgnoringCtxHoldsUpNeitherReloadNorClose(t *testing.T) {
	testenv.NoLeaks(t)
	// Given a Loader that hangs, ignoring ctx, and then returns a model,
	released, release := gate(t)
	late := &fake{}
	var calls atomic.Int32
	hung := reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
		calls.Add(1)
		<-released
		return reload.Loaded{Model: late}, nil
	})
	rl := reload.New(reload.Config{Load: hung})
	r, err := router.New(router.Config{Tiers: []router.Tier{managed("m", &fake{}, "", rl)}, Heuristic: answerY})
	if err != nil {
		t.Fatal(err)
	}
	// when a Reload's ctx ends (the caller's real time), Reload returns,
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := rl.Reload(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reload = %v, want the deadline", err)
	}
	// the next Reload does not call a Loader while that one runs,
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if err := rl.Reload(ctx2, nil); !errors.Is(err, context.DeadlineExceeded) || calls.Load() != 1 {
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
	release()
	testenv.Eventually(t, "the late model is closed", func() bool { return late.closes.Load() == 1 })
}
