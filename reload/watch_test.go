package reload_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/reload"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

func TestAWatchedFileIsReloadedWhenItChanges(t *testing.T) {
	testenv.NoLeaks(t)
	testenv.MustHaveRuntime(t)
	path := filepath.Join(t.TempDir(), "primary.onnx")
	copyFile(t, "primary.onnx", path)
	old := time.Now().Add(-time.Hour) // deployed long before this start-up
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	var ev testenv.Events
	// Given a primary loaded from a file it polls every 5ms of the
	// router's clock (which starts at the wall time, as the file's
	// modification times are the wall clock's), with one load attempt a
	// reload, so that a bad file is rejected without a backoff,
	const interval = 5 * time.Millisecond
	f := clock.NewFake(time.Now())
	rl := reload.New(reload.Config{Load: fileLoader(path), MustLoad: true, Canaries: testenv.Canaries(t),
		Retry: reload.Retry{Attempts: 1}, Watch: reload.Watch{Path: path, Interval: interval}})
	r, err := router.New(router.Config{
		Tiers:   []router.Tier{{Name: "primary", Manage: []router.Manager{rl}}},
		OnEvent: ev.Add,
		Clock:   f,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const poller = 1 // the Watch's timer
	// when a new version is caught half-copied, written in place,
	data, err := os.ReadFile(testenv.Testdata("backup.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Advance(t, f, sweeper+poller, interval)
	// it is rejected and the old version keeps serving,
	testenv.Eventually(t, "the half copy is rejected", func() bool { return len(ev.Of(router.ReloadRejected)) > 0 })
	if h := r.Health()["primary"]; h.Version != "v1" || h.Condition != router.ReloadFailed {
		t.Fatalf("health %v, want v1, reload-failed", h)
	}
	// and once the copy completes, the next poll loads the new version,
	// which serves.
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Advance(t, f, sweeper+poller, interval)
	testenv.Eventually(t, "the new version serves", func() bool {
		h := r.Health()["primary"]
		return h.Version != "v1" && h.Condition == router.Healthy
	})
	if n := len(ev.Of(router.ReloadRejected)); n != 1 {
		t.Errorf("%d rejected reloads, want the half copy's alone", n)
	}
	if a, err := r.Predict(context.Background(), l0(t)); err != nil || a.Version == "v1" {
		t.Fatalf("got %+v, %v; want the new version", a, err)
	}
}

func TestNewRefusesAWatchIntervalThatWouldSpin(t *testing.T) {
	// Given an interval of a nanosecond, which would spin a core,
	rl := reload.New(reload.Config{Load: modelLoader(router.ModelFunc(answerY), "v2"),
		Watch: reload.Watch{Path: "model.onnx", Interval: time.Nanosecond}})
	m := router.ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) { return nil, nil })
	_, err := router.New(router.Config{Tiers: []router.Tier{managed("m", m, "v1", rl)}})
	// then New refuses it, naming the interval.
	if !errors.Is(err, reload.ErrInvalidConfig) || !strings.Contains(err.Error(), "Interval") {
		t.Fatalf("New err = %v, want reload.ErrInvalidConfig naming the interval", err)
	}
}
