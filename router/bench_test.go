package router_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/chaos"
	"github.com/ladder-ml/ladder/internal/dataset"
	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// BenchmarkOverhead measures what the ladder costs over calling
// onnxruntime_go directly, one row per call. Read router/raw,
// failover − raw-backup and cache from one run. The medium/ variants do the
// same on a model of about 0.5 ms per row. The parallel/ pair runs
// router and raw from b.RunParallel at 64 goroutines on 2 cores: compare
// their throughput, background work (the cache's writer) included.
func BenchmarkOverhead(b *testing.B) {
	testenv.MustHaveRuntime(b)
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
			r := newRouter(b, testenv.Load(b, pair.primary), testenv.Load(b, pair.backup))
			benchPredict(b, r, in, "primary")
		})
		b.Run(pair.prefix+"failover", func(b *testing.B) {
			r := newRouter(b, chaos.Wrap(down, chaos.Fault{}), testenv.Load(b, pair.backup))
			benchPredict(b, r, in, "backup")
		})
		b.Run(pair.prefix+"cache", func(b *testing.B) {
			benchPredict(b, cachedRouter(b, pair.primary, in), in, router.RungCache)
		})
	}

	// The pairs above, interleaved in rounds of 1,000 calls each within
	// one benchmark, for a machine whose load moves raw itself by ±30%
	// within a minute: each difference or ratio is taken within a round,
	// then the median over rounds is reported. ns/op is the router's
	// median. The router's cost over raw is split into the models layer
	// (the model called as the router calls it), the ladder without a
	// cache key, and the key with the last-good store's refresh.
	b.Run("interleaved", func(b *testing.B) {
		raw, free := testenv.Raw(b, "primary.onnx", row)
		defer free()
		rawBackup, freeBackup := testenv.Raw(b, "backup.onnx", row)
		defer freeBackup()
		m, ctx := testenv.Load(b, "primary.onnx"), context.Background()
		defaults, _ := policy.Config{}.Resolve()
		noKey, err := router.New(router.Config{
			Tiers: []router.Tier{{Name: "primary", Model: testenv.Load(b, "primary.onnx")}, {Name: "backup", Model: testenv.Load(b, "backup.onnx")}},
			Key:   func([]tensor.Tensor) string { return "" }, // nothing cached
		})
		if err != nil {
			b.Fatal(err)
		}
		defer noKey.Close()
		const (
			rawCall = iota
			modelCall
			noKeyCall
			routerCall
			rawBackupCall
			failoverCall
			cacheCall
		)
		ns := testenv.Interleave(b, 1000,
			raw,
			func() {
				if _, err := m.PredictTimeout(ctx, defaults.Timeout, in); err != nil {
					b.Fatal(err)
				}
			},
			predictCall(b, noKey, in, "primary"),
			predictCall(b, newRouter(b, testenv.Load(b, "primary.onnx"), testenv.Load(b, "backup.onnx")), in, "primary"),
			rawBackup,
			predictCall(b, newRouter(b, chaos.Wrap(down, chaos.Fault{}), testenv.Load(b, "backup.onnx")), in, "backup"),
			predictCall(b, cachedRouter(b, "primary.onnx", in), in, router.RungCache))
		over := func(x, base int) float64 {
			d := make([]float64, len(ns[x]))
			for i := range d {
				d[i] = ns[x][i] - ns[base][i]
			}
			return testenv.Median(d)
		}
		ratio := make([]float64, len(ns[rawCall]))
		for i := range ratio {
			ratio[i] = ns[routerCall][i] / ns[rawCall][i]
		}
		b.ReportMetric(testenv.Median(ns[routerCall]), "ns/op")
		b.ReportMetric(testenv.Median(ratio), "router/raw")
		b.ReportMetric(over(modelCall, rawCall), "models-ns")
		b.ReportMetric(over(noKeyCall, modelCall), "ladder-ns")
		b.ReportMetric(over(routerCall, noKeyCall), "key-ns")
		b.ReportMetric(over(failoverCall, rawBackupCall), "failover-ns-over-raw-backup")
		b.ReportMetric(testenv.Median(ns[cacheCall]), "cache-ns")
	})

	// The ladder's own cost, without ONNX Runtime's noise: a Go model that
	// answers at once, called bare and through a router.
	b.Run("instant/model", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (instant{}).PredictTimeout(ctx, time.Second, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("instant/router", func(b *testing.B) {
		benchPredict(b, newRouter(b, instant{}, instant{}), in, "primary")
	})

	// The parallel pair interleaved in rounds, as above: in each round 64
	// goroutines make 200 calls each through raw, then through the
	// router. The throughput ratio is the median over rounds.
	b.Run("parallel/interleaved", func(b *testing.B) {
		n := testenv.Parallelism * runtime.GOMAXPROCS(0)
		raws, free := testenv.RawRunners(b, "primary.onnx", row, n)
		defer free()
		r := wideRouter(b)
		routers := make([]func(), n)
		for i := range routers {
			routers[i] = predictCall(b, r, in, "primary")
		}
		ns := testenv.InterleaveParallel(b, 200, raws, routers)
		ratio := make([]float64, len(ns[0]))
		for i := range ratio {
			ratio[i] = ns[0][i] / ns[1][i]
		}
		b.ReportMetric(testenv.Median(ns[1]), "ns/op")
		b.ReportMetric(testenv.Median(ns[0]), "raw-ns/op")
		b.ReportMetric(testenv.Median(ratio), "throughput-router/raw")
	})

	b.Run("parallel/raw", func(b *testing.B) { testenv.BenchmarkRawParallel(b, "primary.onnx", row) })
	b.Run("parallel/router", func(b *testing.B) {
		r := wideRouter(b)
		ctx := context.Background()
		b.ReportAllocs()
		b.SetParallelism(testenv.Parallelism)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				a, err := r.Predict(ctx, in)
				if err != nil || a.Tier != "primary" {
					b.Errorf("served by %q, %v, %v; want primary", a.Tier, err, a.Fell)
					return
				}
			}
		})
	})
}

func newRouter(b *testing.B, primary, backup router.Model) *router.Router {
	return newRouterWith(b, router.Config{Tiers: []router.Tier{
		{Name: "primary", Model: primary},
		{Name: "backup", Model: backup},
	}})
}

// newRouterWith returns a router of cfg, closed when b ends.
func newRouterWith(b *testing.B, cfg router.Config) *router.Router {
	r, err := router.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// wideRouter returns a router for the parallel pairs. 64 requests in
// flight would fill the default bulkhead (4 × GOMAXPROCS) and spill to
// the backup, as they should; and 64 goroutines that never block are
// time-sliced 10 ms at a time, so one can wait in the run queue past the
// default 100ms timeout. It admits them all and waits for each, so that
// both sides run the same model: the pairs measure throughput, not
// latency.
func wideRouter(b *testing.B) *router.Router {
	wide := policy.Config{MaxConcurrent: 2 * testenv.Parallelism * runtime.GOMAXPROCS(0), Timeout: time.Minute}
	return newRouterWith(b, router.Config{Tiers: []router.Tier{
		{Name: "primary", Model: testenv.Load(b, "primary.onnx"), Policy: wide},
		{Name: "backup", Model: testenv.Load(b, "backup.onnx"), Policy: wide},
	}})
}

// cachedRouter returns a router whose primary, loaded from file, has
// answered in once and then fails, and whose backup is down: in is
// served from the cache.
func cachedRouter(b *testing.B, file string, in []tensor.Tensor) *router.Router {
	down := chaos.Func(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
		return nil, errors.New("backup down")
	})
	primary := chaos.Wrap(testenv.Load(b, file), chaos.Fault{})
	r := newRouter(b, primary, chaos.Wrap(down, chaos.Fault{}))
	if _, err := r.Predict(context.Background(), in); err != nil { // fills the cache
		b.Fatal(err)
	}
	primary.Set(chaos.Fault{ErrorRate: 1})
	return r
}

// predictCall returns one call of benchPredict's loop.
func predictCall(b *testing.B, r *router.Router, in []tensor.Tensor, want string) func() {
	ctx := context.Background()
	return func() {
		a, err := r.Predict(ctx, in)
		if err != nil || a.Tier != want {
			b.Fatalf("served by %q, %v; want %s", a.Tier, err, want)
		}
	}
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

// instant is a model of the primary's signature that answers at once
// with a fresh output, as a model does: the baseline of the ladder's own
// cost.
type instant struct{}

var instantOut = []float32{0.5}

func (instant) Predict(ctx context.Context, in []tensor.Tensor) ([]tensor.Tensor, error) {
	return (instant{}).PredictTimeout(ctx, 0, in)
}

//go:noinline
func (instant) PredictTimeout(context.Context, time.Duration, []tensor.Tensor) ([]tensor.Tensor, error) {
	return []tensor.Tensor{tensor.New("probability", []int64{1, 1}, slices.Clone(instantOut))}, nil
}

func (instant) Signature() tensor.Signature {
	return tensor.Signature{
		Inputs:  []tensor.Info{{Name: "features", DType: tensor.Float32, Shape: []int64{-1, 30}}},
		Outputs: []tensor.Info{{Name: "probability", DType: tensor.Float32, Shape: []int64{-1, 1}}},
	}
}
