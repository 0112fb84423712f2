//go:build cgo

package models_test

import (
	"context"
	"testing"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/tensor"
)

// BenchmarkOverhead measures what the models layer costs over calling
// onnxruntime_go directly, one row per call on the primary model. Read the
// ratio model/raw from one run.
func BenchmarkOverhead(b *testing.B) {
	testenv.MustHaveRuntime(b)
	row := heldout(b).Rows[0]
	path := testenv.Testdata("primary.onnx")

	b.Run("raw", func(b *testing.B) { testenv.BenchmarkRaw(b, "primary.onnx", row) })

	b.Run("model", func(b *testing.B) {
		m, err := models.Load(path, models.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		in := []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Predict(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("model-deadline", func(b *testing.B) {
		// The same with a cancellable context, as under the router's timeout.
		m, err := models.Load(path, models.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		in := []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Predict(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
