package reload_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/reload"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }

// fileLoader loads path with models.Load, labelling versions v1, v2, ...
func fileLoader(path string) reload.Loader {
	var n atomic.Int64
	return reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
		m, err := models.Load(path, models.Options{})
		if err != nil {
			return reload.Loaded{}, err
		}
		return reload.Loaded{Model: m, Version: fmt.Sprintf("v%d", n.Add(1)), Source: path}, nil
	})
}

// modelLoader hands out m as version label.
func modelLoader(m router.Model, label string) reload.Loader {
	return reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
		return reload.Loaded{Model: m, Version: label, Source: "test"}, nil
	})
}

// loaderOf hands out models in turn, unlabelled.
func loaderOf(models ...router.Model) reload.Loader {
	var n atomic.Int32
	return reload.LoaderFunc(func(context.Context) (reload.Loaded, error) {
		i := int(n.Add(1)-1) % len(models)
		return reload.Loaded{Model: models[i]}, nil
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

// reloadable is a ladder whose primary the Reloader rl loads from a file,
// with two load attempts 1ms apart, the canaries of testenv.Canaries and
// the default rollback watch. Its events are recorded in ev.
type reloadable struct {
	*testenv.Ladder
	rl   *reload.Reloader
	path string
	ev   *testenv.Events
}

// retry is the reloadable primary's: two attempts, 1ms apart (on the
// ladder's fake clock), and up to 2ms with jitter.
var retry = reload.Retry{Attempts: 2, Backoff: time.Millisecond}

// option changes a reloadable primary's Reloader or tier.
type option func(*reload.Config, *router.Tier)

// rollback sets the primary's rollback watch.
func rollback(rb reload.Rollback) option {
	return func(c *reload.Config, _ *router.Tier) { c.Rollback = rb }
}

// validate sets the primary's last check of a version.
func validate(f func(context.Context, router.Model) error) option {
	return func(c *reload.Config, _ *router.Tier) { c.Validate = f }
}

// timeout sets the primary's attempt timeout, for a test whose requests
// must not time out on a loaded machine.
func timeout(d time.Duration) option {
	return func(_ *reload.Config, t *router.Tier) { t.Policy.Timeout = d }
}

func newReloadable(t *testing.T, opts ...option) *reloadable {
	t.Helper()
	testenv.MustHaveRuntime(t)
	path := filepath.Join(t.TempDir(), "primary.onnx")
	copyFile(t, "primary.onnx", path)
	cfg := reload.Config{Load: fileLoader(path), MustLoad: true, Retry: retry, Canaries: testenv.Canaries(t)}
	tier := router.Tier{Name: "primary", Policy: testenv.Fast}
	for _, o := range opts {
		o(&cfg, &tier)
	}
	l := &reloadable{rl: reload.New(cfg), path: path, ev: &testenv.Events{}}
	tier.Manage = []router.Manager{l.rl}
	// The primary is the Reloader's own: the ladder's fault injector on
	// it is a stand-in that is never asked.
	l.Ladder = testenv.NewLadder(t, nop, testenv.Load(t, "backup.onnx"), func(c *router.Config) {
		c.Tiers[0] = tier
		c.OnEvent = l.ev.Add
	})
	return l
}

// reloadPastBackoff reloads the primary with from while a load of it
// fails once: it advances the clock past the backoff before the second
// attempt, once armed timers are armed (the backoff's among them).
func (l *reloadable) reloadPastBackoff(t *testing.T, from reload.Loader, armed int) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- l.rl.Reload(context.Background(), from) }()
	testenv.Advance(t, l.Clock, armed, 2*retry.Backoff)
	return <-done
}

// sweeper is the timer the ladder's default cache arms on the router's
// clock, to sweep its expired entries every 5 minutes: one of the armed
// timers the tests count.
const sweeper = 1

// nop stands in for a model never asked.
var nop = router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return nil, nil })

// fake is a pure-Go model answering y = 0.5 that records its calls and
// its Close, and can be told to fail, to panic on Close or to hang
// ignoring ctx.
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

func yIn() []tensor.Tensor { return []tensor.Tensor{tensor.New("x", []int64{1}, []float32{1})} }

func answerY(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
	return []tensor.Tensor{tensor.New("y", []int64{1}, []float32{1})}, nil
}

// heuristic answers p = 0.1.
func heuristic(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
	return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{0.1})}, nil
}

// closedModel answers 0.5 and records its Close.
type closedModel struct{ closed atomic.Bool }

func (m *closedModel) Predict(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
	return []tensor.Tensor{tensor.New("p", []int64{1, 1}, []float32{0.5})}, nil
}

func (m *closedModel) Close() error { m.closed.Store(true); return nil }

// managed returns a tier named name served by m, managed by rl.
func managed(name string, m router.Model, version string, rl *reload.Reloader) router.Tier {
	return router.Tier{Name: name, Model: m, Version: version, Manage: []router.Manager{rl}}
}
