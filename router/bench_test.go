package router_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/internal/dataset"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// BenchmarkOverhead measures what the ladder costs over calling
// onnxruntime_go directly, one row per call. Read router/raw,
// failover − raw-backup and cache from one run. The medium/ variants do the
// same on a model of about 0.5 ms per row.
func BenchmarkOverhead(b *testing.B) {
	testenv.RequireRuntime(b, haveRuntime)
	set, err := dataset.Load(testenv.Testdata("heldout.csv"))
	if err != nil {
		b.Fatal(err)
	}
	row := set.Rows[0]
	in := []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)}
	down := chaos.Func(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("primary down")
	})

	for _, pair := range []struct{ prefix, primary, backup string }{
		{"", "primary.onnx", "backup.onnx"},
		{"medium/", "medium.onnx", "backup.onnx"},
	} {
		b.Run(pair.prefix+"raw", func(b *testing.B) { testenv.BenchmarkRaw(b, pair.primary, row) })
		b.Run(pair.prefix+"raw-backup", func(b *testing.B) { testenv.BenchmarkRaw(b, pair.backup, row) })
		b.Run(pair.prefix+"router", func(b *testing.B) {
			r := newRouter(b, load(b, pair.primary), load(b, pair.backup))
			benchPredict(b, r, in, "primary")
		})
		b.Run(pair.prefix+"failover", func(b *testing.B) {
			r := newRouter(b, chaos.Wrap(down, chaos.Fault{}), load(b, pair.backup))
			benchPredict(b, r, in, "backup")
		})
		b.Run(pair.prefix+"cache", func(b *testing.B) {
			primary := chaos.Wrap(load(b, pair.primary), chaos.Fault{})
			r := newRouter(b, primary, chaos.Wrap(down, chaos.Fault{}))
			if _, err := r.Predict(context.Background(), in); err != nil { // fills the cache
				b.Fatal(err)
			}
			primary.Set(chaos.Fault{ErrorRate: 1})
			benchPredict(b, r, in, router.RungCache)
		})
	}
}

func newRouter(b *testing.B, primary, backup router.Model) *router.Router {
	r, err := router.New(router.Config{Tiers: []router.Tier{
		{Name: "primary", Model: primary},
		{Name: "backup", Model: backup},
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

func benchPredict(b *testing.B, r *router.Router, in []tensor.Tensor, want string) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		a, err := r.Predict(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		if a.Tier != want {
			b.Fatalf("served by %s, want %s", a.Tier, want)
		}
	}
}
