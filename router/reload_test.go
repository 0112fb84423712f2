package router_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/internal/dataset"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/source"
	"github.com/ladder-ml/ladder/tensor"
)

// fileLoader loads path with models.Load, labelling versions v1, v2, ...
func fileLoader(path string) router.Loader {
	var n atomic.Int64
	return router.LoaderFunc(func(context.Context) (router.Loaded, error) {
		m, err := models.Load(path, models.Options{})
		if err != nil {
			return router.Loaded{}, err
		}
		return router.Loaded{Model: m, Version: fmt.Sprintf("v%d", n.Add(1)), Source: path}, nil
	})
}

// modelLoader hands out m once as version label.
func modelLoader(m router.Model, label string) router.Loader {
	return router.LoaderFunc(func(context.Context) (router.Loaded, error) {
		return router.Loaded{Model: m, Version: label, Source: "test"}, nil
	})
}

// copyFile writes testdata/name to path through a rename, as a deploy
// would, so the path never holds half a file.
func copyFile(t *testing.T, name, path string) {
	t.Helper()
	data, err := os.ReadFile(testenv.Testdata(name))
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond every 5ms for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// reloadable is a ladder whose primary is loaded from a file by the router.
type reloadable struct {
	*ladder
	path string
}

func newReloadable(t *testing.T, opts ...func(*router.Config)) *reloadable {
	t.Helper()
	testenv.RequireRuntime(t, haveRuntime)
	path := filepath.Join(t.TempDir(), "primary.onnx")
	copyFile(t, "primary.onnx", path)
	l := newLadder(t, "primary.onnx", append([]func(*router.Config){func(c *router.Config) {
		c.Tiers[0] = router.Tier{Name: "primary", Load: fileLoader(path), MustLoad: true, Policy: fast,
			LoadRetry: router.Retry{Attempts: 2, Backoff: time.Millisecond},
			Canaries:  canaries(t), Probe: router.Probe{Interval: -1}}
	}}, opts...)...)
	// The primary is the router's own: the after-scenario check needs no
	// fault injector on it.
	l.primary = chaos.Wrap(router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return nil, nil }), chaos.Fault{})
	return &reloadable{ladder: l, path: path}
}

// canaries are the first held-out row and the first with a large mean
// radius, each accepting any valid answer.
func canaries(t *testing.T) []router.Canary {
	t.Helper()
	rows := heldout(t)
	large := slices.IndexFunc(rows, func(r []float32) bool { return r[0] > 15 })
	in := func(r []float32) []tensor.Tensor { return []tensor.Tensor{tensor.New("features", []int64{1, 30}, r)} }
	return []router.Canary{{Inputs: in(rows[0])}, {Inputs: in(rows[large])}}
}

// l0 is the first held-out row, as a request.
func l0(t *testing.T) []tensor.Tensor {
	t.Helper()
	l := &ladder{rows: heldout(t)}
	return l.in(0)
}

func TestReloadChecksTheNewVersionAndKeepsTheOldOne(t *testing.T) {
	t.Run("a corrupt or truncated file on disk", func(t *testing.T) {
		for _, bad := range []string{"corrupt.onnx", "truncated.onnx"} {
			t.Run(bad, func(t *testing.T) {
				var ev events
				l := newReloadable(t, func(c *router.Config) { c.OnEvent = ev.add })
				// Given the primary serving v1 from its file,
				if h := l.r.Health()["primary"]; h.Version != "v1" || h.Source != l.path || h.Condition != router.Healthy {
					t.Fatalf("health %v, want v1 from the file, healthy", h)
				}
				// when the file is replaced by a bad one and the tier reloads,
				copyFile(t, bad, l.path)
				err := l.r.Reload(context.Background(), "primary", fileLoader(l.path))
				// then the reload fails at its load, with a typed error,
				var re *router.ReloadError
				if !errors.As(err, &re) || re.Check != router.CheckLoad || re.Serving != "v1" || !errors.Is(err, models.ErrLoad) || !errors.Is(err, router.ErrReload) {
					t.Fatalf("Reload: %v; want a ReloadError of the load check, serving v1", err)
				}
				// the old version keeps serving, and the failure is visible.
				if a := l.predict(t, 0); a.Tier != "primary" || a.Version != "v1" {
					t.Fatalf("served %+v, want primary v1", a)
				}
				h := l.r.Health()["primary"]
				if h.Condition != router.ReloadFailed || h.Version != "v1" || !errors.Is(h.ReloadErr, router.ErrReload) || h.ReloadFailures != 1 {
					t.Fatalf("health %v, want reload-failed, serving v1", h)
				}
				if got := ev.of(router.ReloadRejected); len(got) != 1 {
					t.Errorf("%d reload-rejected events, want 1", len(got))
				}
				// When the good file is back, the next reload is accepted.
				copyFile(t, "primary.onnx", l.path)
				if err := l.r.Reload(context.Background(), "primary", fileLoader(l.path)); err != nil {
					t.Fatal(err)
				}
				if h := l.r.Health()["primary"]; h.Condition != router.Healthy || h.Reloads != 2 {
					t.Fatalf("health %v after a good reload, want healthy after 2 loads", h)
				}
			})
		}
	})

	t.Run("a version that outputs NaN fails its canary", func(t *testing.T) {
		l := newReloadable(t)
		err := l.r.Reload(context.Background(), "primary", fileLoader(testenv.Testdata("nan.onnx")))
		var re *router.ReloadError
		if !errors.As(err, &re) || re.Check != router.CheckCanary || !errors.Is(err, router.ErrCanary) || !errors.Is(err, router.ErrInvalidOutput) {
			t.Fatalf("Reload: %v; want a ReloadError of the canary check, for an invalid output", err)
		}
		if a := l.predict(t, 0); a.Tier != "primary" || a.Version != "v1" {
			t.Fatalf("served %+v, want primary v1", a)
		}
	})

	t.Run("a version with another signature", func(t *testing.T) {
		l := newReloadable(t)
		err := l.r.Reload(context.Background(), "primary", fileLoader(testenv.Testdata("multi_io.onnx")))
		var re *router.ReloadError
		if !errors.As(err, &re) || re.Check != router.CheckSignature {
			t.Fatalf("Reload: %v; want a ReloadError of the signature check", err)
		}
	})

	t.Run("a version its Validate refuses", func(t *testing.T) {
		var calls atomic.Int32
		l := newReloadable(t, func(c *router.Config) {
			c.Tiers[0].Validate = func(context.Context, router.Model) error {
				if calls.Add(1) > 1 { // the version loaded at start-up passes
					return errors.New("accuracy 0.61 below 0.9")
				}
				return nil
			}
		})
		err := l.r.Reload(context.Background(), "primary", fileLoader(l.path))
		var re *router.ReloadError
		if !errors.As(err, &re) || re.Check != router.CheckValidate || !strings.Contains(err.Error(), "accuracy") {
			t.Fatalf("Reload: %v; want a ReloadError of the validate check", err)
		}
	})

	t.Run("a version below an accuracy threshold", func(t *testing.T) {
		set, err := dataset.Load(testenv.Testdata("heldout.csv"))
		if err != nil {
			t.Fatal(err)
		}
		var sample []router.Labelled
		for i, row := range set.Rows {
			benign := set.Labels[i] == 1
			sample = append(sample, router.Labelled{Inputs: []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)},
				Correct: func(out []tensor.Tensor) bool { return (out[0].Data.([]float32)[0] >= 0.5) == benign }})
		}
		// primary.onnx scores 0.971 on the held-out rows: it passes 0.95,
		threshold := 0.95
		l := newReloadable(t, func(c *router.Config) {
			c.Tiers[0].Validate = func(ctx context.Context, m router.Model) error {
				return router.AccuracyAtLeast(threshold, sample)(ctx, m)
			}
		})
		if err := l.r.Reload(context.Background(), "primary", fileLoader(l.path)); err != nil {
			t.Fatal(err)
		}
		// and not 0.99.
		threshold = 0.99
		err = l.r.Reload(context.Background(), "primary", fileLoader(l.path))
		var re *router.ReloadError
		var ae *router.AccuracyError
		if !errors.As(err, &re) || re.Check != router.CheckValidate || !errors.As(err, &ae) || ae.N != len(sample) || ae.Accuracy < 0.96 || ae.Accuracy > 0.98 {
			t.Fatalf("Reload: %v; want an AccuracyError of about 0.971 at the validate check", err)
		}
	})

	t.Run("a transient load failure is retried", func(t *testing.T) {
		l := newReloadable(t)
		var calls atomic.Int32
		inner := fileLoader(l.path)
		flaky := router.LoaderFunc(func(ctx context.Context) (router.Loaded, error) {
			if calls.Add(1) == 1 {
				return router.Loaded{}, errors.New("connection reset")
			}
			return inner.Load(ctx)
		})
		if err := l.r.Reload(context.Background(), "primary", flaky); err != nil || calls.Load() != 2 {
			t.Fatalf("Reload: %v after %d loads; want success on the second", err, calls.Load())
		}
	})
}

// picky is primary.onnx that answers its canaries and fails every other
// input: a version that passes its checks and fails under traffic.
type picky struct {
	m        *models.Model
	canaries []router.Canary
	closed   atomic.Bool
}

func (p *picky) Predict(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	f, _ := tensor.Data[float32](in[0])
	for _, c := range p.canaries {
		if slices.Equal(f, c.Inputs[0].Data.([]float32)) {
			return p.m.Predict(ctx, in)
		}
	}
	return nil, errors.New("bad version")
}

func (p *picky) Signature() tensor.Signature { return p.m.Signature() }
func (p *picky) Close() error                { p.closed.Store(true); return p.m.Close() }

func TestAVersionFailingUnderTrafficIsRolledBack(t *testing.T) {
	noLeaks(t)
	var ev events
	l := newReloadable(t, func(c *router.Config) {
		c.OnEvent = ev.add
		c.Tiers[0].Rollback = router.Rollback{Window: 3 * time.Second, MinRequests: 10}
	})
	m, err := models.Load(testenv.Testdata("primary.onnx"), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bad := &picky{m: m, canaries: canaries(t)}
	// Given a version that passes its canary,
	if err := l.r.Reload(context.Background(), "primary", modelLoader(bad, "v2-bad")); err != nil {
		t.Fatalf("Reload: %v; want the canary passed", err)
	}
	// when it fails under traffic,
	for i := 1; i <= 30; i++ {
		if a := l.predict(t, 1); a.Tier == "primary" {
			t.Fatalf("the bad version served request %d", i)
		}
	}
	// then it is rolled back within its window, and an event says so,
	eventually(t, "the bad version is rolled back", func() bool { return len(ev.of(router.RolledBack)) == 1 })
	rb := ev.of(router.RolledBack)[0]
	var rerr *router.RollbackError
	if rb.Version != "v1" || !errors.As(rb.Err, &rerr) || rerr.Version != "v2-bad" || rerr.Restored != "v1" {
		t.Fatalf("event %+v, want v2-bad rolled back to v1", rb)
	}
	// the previous version serves again once the breaker lets it,
	eventually(t, "v1 serves again", func() bool {
		a, err := l.r.Predict(context.Background(), l.in(0))
		return err == nil && a.Tier == "primary" && a.Version == "v1"
	})
	h := l.r.Health()["primary"]
	if h.Rollbacks != 1 || h.Condition != router.ReloadFailed || !errors.Is(h.ReloadErr, router.ErrRolledBack) || h.Version != "v1" {
		t.Fatalf("health %v, want one rollback, reload-failed, serving v1", h)
	}
	// and the bad version is closed once drained.
	eventually(t, "the bad version is closed", bad.closed.Load)
}

func TestAVersionThatServesThroughItsWindowBecomesLastGood(t *testing.T) {
	l := newReloadable(t, func(c *router.Config) {
		c.Tiers[0].Rollback = router.Rollback{Window: 100 * time.Millisecond}
	})
	// Given v1, loaded at start-up, as the last known-good version,
	if h := l.r.Health()["primary"]; h.LastGood != "v1" {
		t.Fatalf("health %v, want v1 last-good", h)
	}
	// when v2 is reloaded, it is watched: v1 is still the last good one,
	m, err := models.Load(testenv.Testdata("primary.onnx"), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.r.Reload(context.Background(), "primary", modelLoader(m, "v2")); err != nil {
		t.Fatal(err)
	}
	if h := l.r.Health()["primary"]; h.Version != "v2" || h.LastGood != "v1" {
		t.Fatalf("health %v, want v2 serving and v1 last-good during the window", h)
	}
	// and once it has served through its window, v2 is.
	eventually(t, "v2 is last-good", func() bool {
		l.predict(t, 0)
		return l.r.Health()["primary"].LastGood == "v2"
	})
}

func TestAReloadUnderLoadDropsNoRequest(t *testing.T) {
	noLeaks(t)
	l := newReloadable(t, func(c *router.Config) {
		c.Tiers[0].Rollback = router.Rollback{Window: -1} // the old version closes as soon as it drains
		c.Tiers[0].Policy.Timeout = time.Second
	})
	var (
		wg                    sync.WaitGroup
		stop                  atomic.Bool
		served, failed, other atomic.Int64
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; !stop.Load(); i += 4 {
				a, err := l.r.Predict(context.Background(), l.in(i), router.LowestTier("primary"))
				switch {
				case err != nil:
					failed.Add(1)
				case a.Tier != "primary":
					other.Add(1)
				default:
					served.Add(1)
				}
			}
		}()
	}
	const reloads = 20
	for range reloads {
		if err := l.r.Reload(context.Background(), "primary", fileLoader(l.path)); err != nil {
			t.Error(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d reloads under 4 concurrent callers: %d requests served by the primary, %d failed, %d fell", reloads, served.Load(), failed.Load(), other.Load())
	if failed.Load() != 0 || other.Load() != 0 || served.Load() == 0 {
		t.Fatalf("%d failed and %d fell of %d; want none", failed.Load(), other.Load(), served.Load())
	}
}

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
	l := newReloadable(t, func(c *router.Config) {
		c.Tiers[0].Rollback = router.Rollback{Window: -1}
		c.Tiers[0].Policy.Timeout = time.Second
	})
	medium := testenv.Testdata("medium.onnx")
	reload := func(n int) {
		for range n {
			if err := l.r.Reload(context.Background(), "primary", fileLoader(medium)); err != nil {
				t.Fatal(err)
			}
			l.predict(t, 0)
		}
	}
	reload(20) // let the allocators reach their steady state
	before := rss(t)
	reload(100)
	// Wait for the last old versions to drain and close.
	time.Sleep(50 * time.Millisecond)
	after := rss(t)
	t.Logf("RSS %d MiB before and %d MiB after 100 reloads of medium.onnx: %+d KiB (bound %d MiB)", before>>20, after>>20, (after-before)>>10, rssBound>>20)
	if after-before > rssBound {
		t.Fatalf("100 reloads grew RSS by %d KiB, more than %d MiB", (after-before)>>10, rssBound>>20)
	}
}

func TestStartUpWithThePrimaryMissing(t *testing.T) {
	noLeaks(t)
	testenv.RequireRuntime(t, haveRuntime)
	path := filepath.Join(t.TempDir(), "primary.onnx")
	var ev events
	// Given a primary whose file is not there yet,
	l := newLadder(t, "primary.onnx", func(c *router.Config) {
		c.Tiers[0] = router.Tier{Name: "primary", Load: fileLoader(path), Policy: fast,
			LoadRetry: router.Retry{Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}}
		c.OnEvent = ev.add
	})
	l.primary = chaos.Wrap(router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return nil, nil }), chaos.Fault{})
	// when the router starts, New does not wait: the primary is loading
	// and skipped without an attempt, and the backup serves.
	if h := l.r.Health()["primary"]; h.Condition != router.Loading {
		t.Fatalf("primary %v, want loading", h)
	}
	if !l.r.Ready() {
		t.Fatal("not ready, though the backup and the heuristic can answer")
	}
	a := l.predict(t, 0)
	if a.Tier != "backup" || a.Fell[0].Attempts != 0 || !errors.Is(a.Fell[0].Err, router.ErrUnavailable) {
		t.Fatalf("got %+v; want the backup, the primary skipped as unavailable", a)
	}
	// Each failed load is reported.
	eventually(t, "a failed load is reported", func() bool {
		h := l.r.Health()["primary"]
		return len(ev.of(router.ReloadRejected)) > 0 && errors.Is(h.ReloadErr, router.ErrReload) && h.Condition == router.Loading
	})
	// Once the file appears, the primary serves.
	copyFile(t, "primary.onnx", path)
	eventually(t, "the primary serves", func() bool {
		a, err := l.r.Predict(context.Background(), l.in(0))
		return err == nil && a.Tier == "primary"
	})
	if n := len(ev.of(router.Reloaded)); n != 1 {
		t.Errorf("%d reloaded events, want 1", n)
	}
}

func TestStartUpCanBeAskedToFailHard(t *testing.T) {
	testenv.RequireRuntime(t, haveRuntime)
	missing := fileLoader(filepath.Join(t.TempDir(), "missing.onnx"))
	retry := router.Retry{Attempts: 2, Backoff: time.Millisecond}
	for _, tc := range []struct {
		name string
		cfg  router.Config
	}{
		{"for one tier", router.Config{Tiers: []router.Tier{
			{Name: "primary", Load: missing, LoadRetry: retry, MustLoad: true},
			{Name: "backup", Model: load(t, "backup.onnx")}}}},
		{"for the whole ladder", router.Config{Tiers: []router.Tier{
			{Name: "primary", Load: missing, LoadRetry: retry}}, MustLoad: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := router.New(tc.cfg)
			var re *router.ReloadError
			if !errors.As(err, &re) || re.Tier != "primary" || re.Check != router.CheckLoad || !errors.Is(err, models.ErrLoad) {
				t.Fatalf("New: %v; want the primary's load ReloadError", err)
			}
		})
	}
}

// sourcesLoader loads from redundant sources with models.LoadBytes.
func sourcesLoader(srcs []source.Source, opts source.Options, report func(*source.Error)) router.Loader {
	return router.LoaderFunc(func(ctx context.Context) (router.Loaded, error) {
		m, from, err := source.Load(ctx, srcs, opts, func(b []byte) (*models.Model, error) { return models.LoadBytes(b, models.Options{}) }, report)
		if err != nil {
			return router.Loaded{}, err
		}
		return router.Loaded{Model: m, Source: from.String()}, nil
	})
}

func TestRedundantSourcesOverHTTP(t *testing.T) {
	testenv.RequireRuntime(t, haveRuntime)
	good, err := os.ReadFile(testenv.Testdata("primary.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		case "/hang":
			<-r.Context().Done()
		case "/corrupt":
			bad := bytes.Clone(good)
			bad[len(bad)/2] ^= 0xff
			w.Write(bad)
		case "/truncated":
			w.Write(good[:len(good)/2])
		}
	}))
	defer srv.Close()
	sum := sha256hex(good)
	var reported []string
	srcs := []source.Source{
		{URL: srv.URL + "/fail"},
		{URL: srv.URL + "/hang"},
		{URL: srv.URL + "/corrupt", SHA256: sum},
		{URL: srv.URL + "/truncated"},
		{Path: filepath.Join(t.TempDir(), "gone.onnx")},
		{Bytes: good, SHA256: sum, Name: "embedded"},
	}
	// Given a primary whose first five sources are bad,
	r, err := router.New(router.Config{Tiers: []router.Tier{{Name: "primary", MustLoad: true,
		Load: sourcesLoader(srcs, source.Options{Timeout: 100 * time.Millisecond}, func(e *source.Error) { reported = append(reported, e.Reason.String()) })}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// it loads from the embedded copy, and each bad source was reported.
	if h := r.Health()["primary"]; h.Source != "embedded" || h.Condition != router.Healthy {
		t.Fatalf("health %v, want healthy from the embedded copy", h)
	}
	if got := strings.Join(reported, ","); got != "unreachable,unreachable,corrupt,unloadable,missing" {
		t.Fatalf("reported %s", got)
	}
	if a, err := r.Predict(context.Background(), l0(t)); err != nil || a.Tier != "primary" {
		t.Fatalf("got %+v, %v", a, err)
	}
}

func heldout(t *testing.T) [][]float32 {
	t.Helper()
	set, err := dataset.Load(testenv.Testdata("heldout.csv"))
	if err != nil {
		t.Fatal(err)
	}
	return set.Rows
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestAWatchedFileIsReloadedWhenItChanges(t *testing.T) {
	noLeaks(t)
	testenv.RequireRuntime(t, haveRuntime)
	path := filepath.Join(t.TempDir(), "primary.onnx")
	copyFile(t, "primary.onnx", path)
	old := time.Now().Add(-time.Hour) // deployed long before this start-up
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	var ev events
	// Given a primary loaded from a file it watches,
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Load: fileLoader(path), MustLoad: true, Canaries: canaries(t),
			Probe: router.Probe{Interval: -1}, Watch: router.Watch{Path: path, Interval: 5 * time.Millisecond}}},
		OnEvent: ev.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// when a new version is caught half-copied, written in place,
	data, err := os.ReadFile(testenv.Testdata("backup.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	// it is rejected and the old version keeps serving,
	eventually(t, "the half copy is rejected", func() bool { return len(ev.of(router.ReloadRejected)) > 0 })
	if h := r.Health()["primary"]; h.Version != "v1" || h.Condition != router.ReloadFailed {
		t.Fatalf("health %v, want v1, reload-failed", h)
	}
	// and once the copy completes, the new version serves.
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		// (A poll may catch this write under way too, and load twice.)
		if h := r.Health()["primary"]; h.Version != "v1" && h.Condition == router.Healthy {
			break
		}
		if time.Now().After(deadline) {
			for _, e := range ev.of(router.ReloadRejected) {
				t.Log(e.Err)
			}
			t.Fatalf("the new version does not serve: %v", r.Health()["primary"])
		}
	}
	if a, err := r.Predict(context.Background(), l0(t)); err != nil || a.Version == "v1" {
		t.Fatalf("got %+v, %v; want the new version", a, err)
	}
}

// holding answers like m, but holds a request marked with -1 until
// released, and records its Close.
type holding struct {
	m                 *models.Model
	entered, released chan struct{}
	closed            atomic.Bool
}

func (h *holding) Predict(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
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
func (h *holding) Close() error                { h.closed.Store(true); return h.m.Close() }

func TestAnOldVersionClosesOnlyOnceItsRequestsHaveReturned(t *testing.T) {
	noLeaks(t)
	testenv.RequireRuntime(t, haveRuntime)
	m, err := models.Load(testenv.Testdata("primary.onnx"), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := &holding{m: m, entered: make(chan struct{}), released: make(chan struct{})}
	r, err := router.New(router.Config{Tiers: []router.Tier{{Name: "primary", MustLoad: true, Load: modelLoader(old, "v1"),
		Policy: policy.Config{Timeout: 10 * time.Second}, Rollback: router.Rollback{Window: -1}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Given a request running on v1,
	marked := slices.Clone(heldout(t)[0])
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
	if err := r.Reload(context.Background(), "primary", modelLoader(m2, "v2")); err != nil {
		t.Fatal(err)
	}
	// then v2 serves new requests while v1 stays open for the one in flight,
	if a, err := r.Predict(context.Background(), l0(t)); err != nil || a.Version != "v2" {
		t.Fatalf("got %+v, %v; want v2", a, err)
	}
	time.Sleep(20 * time.Millisecond) // time for a wrong Close to happen
	if old.closed.Load() {
		t.Fatal("v1 was closed with a request running on it")
	}
	// which finishes on v1, after which v1 is closed.
	close(old.released)
	if err := <-done; err != nil {
		t.Fatalf("the request in flight failed: %v", err)
	}
	eventually(t, "v1 is closed", old.closed.Load)
}

func TestAFailureOfTheOldVersionAfterASwapDoesNotRollBackTheNewOne(t *testing.T) {
	noLeaks(t)
	entered, released := make(chan struct{}), make(chan struct{})
	v1 := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		close(entered)
		<-released
		return nil, errors.New("v1 lost its weights")
	})
	v2 := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{0.5})}, nil
	})
	var ev events
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: v1, Version: "v1",
			Policy:   policy.Config{Timeout: 10 * time.Second, MaxAttempts: 1},
			Rollback: router.Rollback{Window: 500 * time.Millisecond, MinRequests: 1}}},
		Heuristic: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{0.1})}, nil
		},
		OnEvent: ev.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in := []tensor.Tensor{tensor.New("x", []int64{1, 1}, []float32{1})}
	// Given a request running on v1,
	done := make(chan router.Answer)
	go func() {
		a, _ := r.Predict(context.Background(), in)
		done <- a
	}()
	<-entered
	// when v2 is swapped in and the request on v1 then fails,
	if err := r.Reload(context.Background(), "primary", modelLoader(v2, "v2")); err != nil {
		t.Fatal(err)
	}
	close(released)
	if a := <-done; a.Tier != router.RungHeuristic {
		t.Fatalf("the request on v1 was served by %s, want the heuristic", a.Tier)
	}
	// then that failure is v1's, not v2's: within v2's window, watched
	// every 10ms, v2 is not rolled back and serves.
	time.Sleep(100 * time.Millisecond)
	if rb := ev.of(router.RolledBack); len(rb) != 0 {
		t.Fatalf("v2 was rolled back for v1's failure: %v", rb[0].Err)
	}
	if a, err := r.Predict(context.Background(), in); err != nil || a.Version != "v2" {
		t.Fatalf("got %+v, %v; want v2 serving", a, err)
	}
}

// closedModel answers 0.5 and records its Close.
type closedModel struct{ closed atomic.Bool }

func (m *closedModel) Predict(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
	return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{0.5})}, nil
}

func (m *closedModel) Close() error { m.closed.Store(true); return nil }

func TestAValidateThatIgnoresCtxHoldsUpNeitherReloadNorClose(t *testing.T) {
	noLeaks(t)
	release := make(chan struct{})
	v1, v2 := &closedModel{}, &closedModel{}
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: v1, Version: "v1",
			Validate: func(context.Context, router.Model) error {
				<-release // ignores ctx
				return nil
			}}},
		Heuristic: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{0.1})}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Given a reload whose Validate never looks at ctx,
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = r.Reload(ctx, "primary", modelLoader(v2, "v2"))
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
	close(release)
	eventually(t, "v2 closed after its Validate returned", v2.closed.Load)
}

// hungModel ignores ctx and answers only once released; it records its
// Close.
type hungModel struct {
	release chan struct{}
	closedModel
}

func (m *hungModel) Predict(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	<-m.release
	return m.closedModel.Predict(ctx, in)
}

func TestACallLeftRunningOnALoadedModelDoesNotHoldUpClose(t *testing.T) {
	noLeaks(t)
	hung := &hungModel{release: make(chan struct{})}
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: &closedModel{}, Version: "v1",
			Policy:   policy.Config{Timeout: 20 * time.Millisecond, MaxAttempts: 1},
			Rollback: router.Rollback{Window: -1}}},
		Heuristic: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{0.1})}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Given a model the router loaded, whose call ignores ctx and hangs,
	if err := r.Reload(context.Background(), "primary", modelLoader(hung, "v2")); err != nil {
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
	close(hung.release)
	eventually(t, "the model closed after its last call returned", hung.closed.Load)
}

// busyModel answers 0.5 once release is closed, ignoring ctx, and records
// whether it was closed while a call was still running on it.
type busyModel struct {
	release     chan struct{}
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
	noLeaks(t)
	release := make(chan struct{})
	v2 := &busyModel{release: release}
	in := []tensor.Tensor{tensor.New("x", []int64{1, 1}, []float32{1})}
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: &closedModel{}, Version: "v1",
			Canaries: []router.Canary{{Inputs: in}}, Probe: router.Probe{Interval: time.Hour}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Given a reload whose model hangs on its canary past the canary's
	// timeout, ignoring ctx,
	err = r.Reload(context.Background(), "primary", modelLoader(v2, "v2"))
	// then the reload is rejected at the canary check,
	var rerr *router.ReloadError
	if !errors.As(err, &rerr) || rerr.Check != router.CheckCanary {
		t.Fatalf("Reload returned %v; want a canary ReloadError", err)
	}
	// Close does not wait for the canary left running,
	start := time.Now()
	if err := r.Close(); err != nil || time.Since(start) > time.Second {
		t.Fatalf("Close returned %v after %v", err, time.Since(start))
	}
	// and the version is not closed while the canary still runs on it,
	time.Sleep(20 * time.Millisecond)
	if v2.closed.Load() {
		t.Fatal("v2 was closed under its running canary")
	}
	// but once the canary returns.
	close(release)
	eventually(t, "v2 closed after its canary returned", v2.closed.Load)
	if v2.closedUnder.Load() {
		t.Fatal("v2 was closed under a running call")
	}
}

func TestAValidateLeftRunningHoldsUpTheTiersNextLoad(t *testing.T) {
	noLeaks(t)
	release := make(chan struct{})
	var running, most, loads atomic.Int32
	var models []*closedModel
	var mu sync.Mutex
	r, err := router.New(router.Config{
		Tiers: []router.Tier{{Name: "primary", Model: &closedModel{}, Version: "v1",
			Validate: func(context.Context, router.Model) error {
				n := running.Add(1)
				defer running.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				<-release // ignores ctx
				return nil
			}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	load := router.LoaderFunc(func(context.Context) (router.Loaded, error) {
		loads.Add(1)
		m := &closedModel{}
		mu.Lock()
		models = append(models, m)
		mu.Unlock()
		return router.Loaded{Model: m, Version: "v2"}, nil
	})
	// Given reloads, each ending at its deadline while the tier's
	// Validate ignores ctx,
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		err := r.Reload(ctx, "primary", load)
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
	close(release)
	eventually(t, "every loaded model closed", func() bool {
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
