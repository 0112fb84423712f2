// Package ladder is an embedded, in-process model router with graceful
// degradation. A Go service links it in, hands it ONNX models and a few Go
// functions, and every prediction then gets the best answer available right
// now, labelled with where it came from: a healthy primary model, else a
// smaller backup, else a recent last-good answer, else a rule-based
// heuristic or a static default. A degraded answer is a success; an invalid
// input is the caller's error at once; a NaN is never served.
//
// The work is done by its packages:
//
//   - [github.com/ladder-ml/ladder/tensor]: the values that flow through a
//     ladder (tensors, element types, signatures), in plain Go;
//   - [github.com/ladder-ml/ladder/models]: ONNX models run in-process
//     through ONNX Runtime, the only package that needs cgo;
//   - [github.com/ladder-ml/ladder/router]: the ladder itself, with
//     provenance, per-request consistency and events;
//   - [github.com/ladder-ml/ladder/reload] and
//     [github.com/ladder-ml/ladder/probe]: what manages a tier over time,
//     hot reload with checks and rollback, and canary probes;
//   - [github.com/ladder-ml/ladder/policy]: a tier's timeout, retry, breaker
//     and bulkhead settings, on failsafe-go;
//   - [github.com/ladder-ml/ladder/cache]: the bounded last-good store, and
//     cache/cachetest, a conformance suite for stores of your own;
//   - [github.com/ladder-ml/ladder/source]: a model's bytes from redundant
//     sources, each pinned by its SHA-256;
//   - [github.com/ladder-ml/ladder/ladderhttp] and
//     [github.com/ladder-ml/ladder/ladderprom]: a ladder over HTTP, and its
//     Prometheus metrics;
//   - [github.com/ladder-ml/ladder/chaos]: a fault-injecting model wrapper
//     for your own chaos tests;
//   - [github.com/ladder-ml/ladder/clock]: the one clock everything reads,
//     which tests replace.
//
// The happy path, with primary and backup loaded by models.Load from the
// models this repository ships in testdata/ (Example has the whole
// program):
//
//	baseRate := []tensor.Tensor{tensor.New("probability", []int64{1, 1}, []float32{0.63})}
//	r, err := router.New(router.Config{
//		Tiers: []router.Tier{{Name: "primary", Model: primary}, {Name: "backup", Model: backup}},
//		Heuristic: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
//			return baseRate, nil
//		},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer r.Close() // before the models: deferred calls run last-in, first-out
//
//	a, err := r.Predict(ctx, []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)})
//	fmt.Println(a.Tier, a.Degraded, err)
//
// This package holds no code: its tests drive the assembled ladder end to
// end on real models, and its examples are the README's samples, compiled.
package ladder
