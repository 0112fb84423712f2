//go:build !cgo

package models_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/models"
)

func TestWithoutCgo(t *testing.T) {
	// Given a build without cgo,
	var m *models.Model
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
	}{
		{"InitRuntime", func() error { return models.InitRuntime("") }},
		{"Load", func() error { _, err := models.Load("../testdata/primary.onnx", models.Options{}); return err }},
		{"LoadBytes", func() error { _, err := models.LoadBytes([]byte("onnx"), models.Options{}); return err }},
		{"Predict", func() error { _, err := m.Predict(ctx, nil); return err }},
		{"PredictTimeout", func() error { _, err := m.PredictTimeout(ctx, time.Second, nil); return err }},
		{"Warmup", func() error { return m.Warmup(ctx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// when a call needs ONNX Runtime,
			err := tt.call()
			// then it fails with a RuntimeError that says why and what to do.
			var re *models.RuntimeError
			if !errors.As(err, &re) || !errors.Is(err, models.ErrRuntime) {
				t.Fatalf("err = %v, want a *models.RuntimeError", err)
			}
			for _, want := range []string{"built without cgo (CGO_ENABLED=0)", "ONNX Runtime needs cgo", "rebuild with CGO_ENABLED=1"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q lacks %q", err, want)
				}
			}
		})
	}
	// What needs no runtime does nothing.
	if models.ShutdownRuntime() != nil || models.RuntimeLibrary() != "" || m.Close() != nil || m.Name() != "" || m.Version() != "" {
		t.Error("ShutdownRuntime, RuntimeLibrary, Close, Name or Version did something")
	}
}
