package reload_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/reload"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/source"
)

// A Reloader loads a tier's first version: in the background while the
// other rungs answer, or before router.New returns when the tier must
// load.

func TestStartUpWithThePrimaryMissing(t *testing.T) {
	testenv.NoLeaks(t)
	testenv.MustHaveRuntime(t)
	path := filepath.Join(t.TempDir(), "primary.onnx")
	var ev testenv.Events
	// Given a primary whose file is not there yet,
	const maxBackoff = 20 * time.Millisecond
	rl := reload.New(reload.Config{Load: fileLoader(path),
		Retry: reload.Retry{Backoff: 5 * time.Millisecond, MaxBackoff: maxBackoff}})
	l := testenv.NewLadder(t, nop, testenv.Load(t, "backup.onnx"), func(c *router.Config) {
		c.Tiers[0] = router.Tier{Name: "primary", Policy: testenv.Fast, Manage: []router.Manager{rl}}
		c.OnEvent = ev.Add
	})
	// when the router starts, New does not wait: the primary is loading
	// and skipped without an attempt, and the backup serves.
	if h := l.R.Health()["primary"]; h.Condition != router.Loading {
		t.Fatalf("primary %v, want loading", h)
	}
	if !l.R.Ready() {
		t.Fatal("not ready, though the backup and the heuristic can answer")
	}
	a := l.Predict(t, 0)
	if a.Tier != "backup" || a.Fell[0].Attempts != 0 || !errors.Is(a.Fell[0].Err, router.ErrUnavailable) {
		t.Fatalf("got %+v; want the backup, the primary skipped as unavailable", a)
	}
	// The loads wait out their backoffs on the router's clock, which
	// moves past each as soon as the load waits on it.
	backoffs := func() {
		if l.Clock.Timers() > sweeper {
			l.Clock.Advance(maxBackoff + maxBackoff/4) // with jitter
		}
	}
	// Each failed load is reported.
	testenv.Eventually(t, "a failed load is reported", func() bool {
		backoffs()
		h := l.R.Health()["primary"]
		return len(ev.Of(router.ReloadRejected)) > 0 && errors.Is(h.ReloadErr, reload.ErrReload) && h.Condition == router.Loading
	})
	// Once the file appears, the primary serves.
	copyFile(t, "primary.onnx", path)
	testenv.Eventually(t, "the primary serves", func() bool {
		backoffs()
		a, err := l.R.Predict(context.Background(), l.In(0))
		return err == nil && a.Tier == "primary"
	})
	if n := len(ev.Of(router.Reloaded)); n != 1 {
		t.Errorf("%d reloaded events, want 1", n)
	}
}

func TestStartUpCanBeAskedToFailHard(t *testing.T) {
	testenv.MustHaveRuntime(t)
	// (New blocks on these loads, on real time: nothing can move a clock
	// meanwhile, and the backoff is a millisecond.)
	missing := fileLoader(filepath.Join(t.TempDir(), "missing.onnx"))
	retry := reload.Retry{Attempts: 2, Backoff: time.Millisecond}
	mustLoad := func(name string, from reload.Loader) router.Tier {
		return router.Tier{Name: name, Manage: []router.Manager{reload.New(reload.Config{Load: from, Retry: retry, MustLoad: true})}}
	}
	for _, tc := range []struct {
		name string
		cfg  router.Config
	}{
		{"for one tier", router.Config{Tiers: []router.Tier{
			mustLoad("primary", missing),
			{Name: "backup", Model: testenv.Load(t, "backup.onnx")}}}},
		{"for one of two tiers that must load", router.Config{Tiers: []router.Tier{
			mustLoad("primary", missing),
			mustLoad("backup", fileLoader(testenv.Testdata("backup.onnx")))}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := router.New(tc.cfg)
			var re *reload.ReloadError
			if !errors.As(err, &re) || re.Tier != "primary" || re.Check != reload.CheckLoad || !errors.Is(err, models.ErrLoad) {
				t.Fatalf("New: %v; want the primary's load ReloadError", err)
			}
		})
	}
}

// sourcesLoader loads from redundant sources with models.LoadBytes.
func sourcesLoader(srcs []source.Source, opts source.Options, report func(*source.Error)) reload.Loader {
	return reload.LoaderFunc(func(ctx context.Context) (reload.Loaded, error) {
		m, from, err := source.Load(ctx, srcs, opts, func(b []byte) (*models.Model, error) { return models.LoadBytes(b, models.Options{}) }, report)
		if err != nil {
			return reload.Loaded{}, err
		}
		return reload.Loaded{Model: m, Source: from.String()}, nil
	})
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestRedundantSourcesOverHTTP(t *testing.T) {
	testenv.MustHaveRuntime(t)
	good, err := os.ReadFile(testenv.Testdata("primary.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	// A real server, whose hanging source is cut at the sources' real
	// timeout.
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
	rl := reload.New(reload.Config{MustLoad: true,
		Load: sourcesLoader(srcs, source.Options{Timeout: 100 * time.Millisecond}, func(e *source.Error) { reported = append(reported, e.Reason.String()) })})
	r, err := router.New(router.Config{Tiers: []router.Tier{{Name: "primary", Manage: []router.Manager{rl}}}})
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

// running reports whether a goroutine is running fn, by the name in its
// stack.
func running(fn string) bool {
	buf := make([]byte, 1<<20)
	return bytes.Contains(buf[:runtime.Stack(buf, true)], []byte(fn))
}

func TestAReloadDuringStartUpIsNotOverwrittenByTheStartUpLoad(t *testing.T) {
	testenv.NoLeaks(t)
	// Given a tier whose start-up load keeps failing for now,
	const backoff = 20 * time.Millisecond
	f := clock.NewFake(time.Now())
	var startUp atomic.Int32
	failing := reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
		if startUp.Add(1) < 3 {
			return reload.Loaded{}, errors.New("not there yet")
		}
		return reload.Loaded{Model: &fake{}, Version: "start-up"}, nil
	})
	rl := reload.New(reload.Config{Load: failing, Retry: reload.Retry{Attempts: 1, Backoff: backoff, MaxBackoff: backoff}})
	r, err := router.New(router.Config{
		Tiers:     []router.Tier{{Name: "m", Manage: []router.Manager{rl}}},
		Heuristic: answerY,
		Clock:     f,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// and now waits out its backoff,
	if !f.WaitTimers(sweeper+1, 10*time.Second) || startUp.Load() != 1 {
		t.Fatalf("%d start-up loads and no backoff; want one load, then its backoff", startUp.Load())
	}
	// when an operator reloads it by hand meanwhile,
	if err := rl.Reload(context.Background(), reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
		return reload.Loaded{Model: &fake{}, Version: "by-hand"}, nil
	})); err != nil {
		t.Fatal(err)
	}
	// then once the backoff has passed, the start-up load stops without
	// loading again, and the version loaded by hand serves on.
	f.Advance(backoff + backoff/4) // with jitter
	testenv.Eventually(t, "the start-up load stops", func() bool { return !running("reload.(*Reloader).loadInBackground") })
	if v := r.Health()["m"].Version; v != "by-hand" || startUp.Load() != 1 {
		t.Fatalf("serving %q after %d start-up loads, want the version loaded by hand after one", v, startUp.Load())
	}
}
