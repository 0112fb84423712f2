package reload_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ladder-ml/ladder/internal/dataset"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/probe"
	"github.com/ladder-ml/ladder/reload"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

func TestReloadChecksTheNewVersionAndKeepsTheOldOne(t *testing.T) {
	t.Run("a corrupt or truncated file on disk", func(t *testing.T) {
		for _, bad := range []string{"corrupt.onnx", "truncated.onnx"} {
			t.Run(bad, func(t *testing.T) {
				l := newReloadable(t)
				// Given the primary serving v1 from its file,
				if h := l.R.Health()["primary"]; h.Version != "v1" || h.Source != l.path || h.Condition != router.Healthy {
					t.Fatalf("health %v, want v1 from the file, healthy", h)
				}
				// when the file is replaced by a bad one and the tier
				// reloads, retrying the load once,
				copyFile(t, bad, l.path)
				err := l.reloadPastBackoff(t, fileLoader(l.path), sweeper+1)
				// then the reload fails at its load, with a typed error,
				var re *reload.ReloadError
				if !errors.As(err, &re) || re.Check != reload.CheckLoad || re.Serving != "v1" || !errors.Is(err, models.ErrLoad) || !errors.Is(err, reload.ErrReload) {
					t.Fatalf("Reload: %v; want a ReloadError of the load check, serving v1", err)
				}
				// the old version keeps serving, and the failure is visible.
				if a := l.Predict(t, 0); a.Tier != "primary" || a.Version != "v1" {
					t.Fatalf("served %+v, want primary v1", a)
				}
				h := l.R.Health()["primary"]
				if h.Condition != router.ReloadFailed || h.Version != "v1" || !errors.Is(h.ReloadErr, reload.ErrReload) || h.ReloadFailures != 1 {
					t.Fatalf("health %v, want reload-failed, serving v1", h)
				}
				if got := l.ev.Of(router.ReloadRejected); len(got) != 1 {
					t.Errorf("%d reload-rejected events, want 1", len(got))
				}
				// When the good file is back, the next reload is accepted.
				copyFile(t, "primary.onnx", l.path)
				if err := l.rl.Reload(context.Background(), fileLoader(l.path)); err != nil {
					t.Fatal(err)
				}
				if h := l.R.Health()["primary"]; h.Condition != router.Healthy || h.Reloads != 2 {
					t.Fatalf("health %v after a good reload, want healthy after 2 loads", h)
				}
			})
		}
	})

	t.Run("a version that outputs NaN fails its canary", func(t *testing.T) {
		l := newReloadable(t)
		err := l.rl.Reload(context.Background(), fileLoader(testenv.Testdata("nan.onnx")))
		var re *reload.ReloadError
		if !errors.As(err, &re) || re.Check != reload.CheckCanary || !errors.Is(err, probe.ErrCanary) || !errors.Is(err, router.ErrInvalidOutput) {
			t.Fatalf("Reload: %v; want a ReloadError of the canary check, for an invalid output", err)
		}
		if a := l.Predict(t, 0); a.Tier != "primary" || a.Version != "v1" {
			t.Fatalf("served %+v, want primary v1", a)
		}
	})

	t.Run("a version with another signature", func(t *testing.T) {
		l := newReloadable(t)
		err := l.rl.Reload(context.Background(), fileLoader(testenv.Testdata("multi_io.onnx")))
		var re *reload.ReloadError
		if !errors.As(err, &re) || re.Check != reload.CheckSignature {
			t.Fatalf("Reload: %v; want a ReloadError of the signature check", err)
		}
	})

	t.Run("a version its Validate refuses", func(t *testing.T) {
		var calls atomic.Int32
		l := newReloadable(t, validate(func(context.Context, router.Model) error {
			if calls.Add(1) > 1 { // the version loaded at start-up passes
				return errors.New("accuracy 0.61 below 0.9")
			}
			return nil
		}))
		err := l.rl.Reload(context.Background(), nil) // nil: the Config's Load
		var re *reload.ReloadError
		if !errors.As(err, &re) || re.Check != reload.CheckValidate || !strings.Contains(err.Error(), "accuracy") {
			t.Fatalf("Reload: %v; want a ReloadError of the validate check", err)
		}
	})

	t.Run("a version below an accuracy threshold", func(t *testing.T) {
		set, err := dataset.Load(testenv.Testdata("heldout.csv"))
		if err != nil {
			t.Fatal(err)
		}
		var sample []reload.Labelled
		for i, row := range set.Rows {
			benign := set.Labels[i] == 1
			sample = append(sample, reload.Labelled{Inputs: []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)},
				Correct: func(out []tensor.Tensor) bool { return (out[0].Data.([]float32)[0] >= 0.5) == benign }})
		}
		// primary.onnx scores 0.971 on the held-out rows: it passes 0.95,
		threshold := 0.95
		l := newReloadable(t, validate(func(ctx context.Context, m router.Model) error {
			return reload.AccuracyAtLeast(threshold, sample)(ctx, m)
		}))
		if err := l.rl.Reload(context.Background(), fileLoader(l.path)); err != nil {
			t.Fatal(err)
		}
		// and not 0.99.
		threshold = 0.99
		err = l.rl.Reload(context.Background(), fileLoader(l.path))
		var re *reload.ReloadError
		var ae *reload.AccuracyError
		if !errors.As(err, &re) || re.Check != reload.CheckValidate || !errors.As(err, &ae) || ae.N != len(sample) || ae.Accuracy < 0.96 || ae.Accuracy > 0.98 {
			t.Fatalf("Reload: %v; want an AccuracyError of about 0.971 at the validate check", err)
		}
		if !errors.Is(err, reload.ErrAccuracy) {
			t.Errorf("Reload: %v; want it to match ErrAccuracy", err)
		}
	})

	t.Run("a transient load failure is retried", func(t *testing.T) {
		l := newReloadable(t)
		var calls atomic.Int32
		inner := fileLoader(l.path)
		flaky := reload.LoaderFunc(func(ctx context.Context) (reload.Loaded, error) {
			if calls.Add(1) == 1 {
				return reload.Loaded{}, errors.New("connection reset")
			}
			return inner.Load(ctx)
		})
		if err := l.reloadPastBackoff(t, flaky, sweeper+1); err != nil || calls.Load() != 2 {
			t.Fatalf("Reload: %v after %d loads; want success on the second", err, calls.Load())
		}
	})
}

func TestALoaderReturningTheModelServingNowNeverClosesIt(t *testing.T) {
	testenv.NoLeaks(t)
	// Given a Loader that hands out the same model every time (a
	// memoising loader),
	m := &fake{}
	rl := reload.New(reload.Config{Load: loaderOf(m), MustLoad: true, Rollback: reload.Rollback{Window: -1}})
	r, err := router.New(router.Config{
		Tiers:     []router.Tier{{Name: "m", Manage: []router.Manager{rl}}},
		Heuristic: answerY,
	})
	if err != nil {
		t.Fatal(err)
	}
	// when the tier is reloaded with it,
	err = rl.Reload(context.Background(), loaderOf(m))
	// then the model serving now is refused as a new version and is
	// never closed under the requests it still serves: it answers (a
	// fake answers no call after its Close),
	var re *reload.ReloadError
	if !errors.As(err, &re) || re.Check != reload.CheckLoad {
		t.Fatalf("Reload = %v, want a ReloadError at the load check", err)
	}
	if a, err := r.Predict(context.Background(), yIn()); err != nil || a.Tier != "m" {
		t.Fatalf("Predict = %+v, %v; want the tier serving", a, err)
	}
	if n := m.closes.Load(); n != 0 {
		t.Fatalf("the model serving was closed %d times", n)
	}
	// and Close, which waits for every close the router started, closes
	// it once.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := m.closes.Load(); n != 1 {
		t.Fatalf("the model was closed %d times by the router's Close, want once", n)
	}
}
