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
//   - [github.com/ladder-ml/ladder/policy]: a tier's timeout, retry, breaker
//     and bulkhead settings, on failsafe-go;
//   - [github.com/ladder-ml/ladder/cache]: the bounded last-good store;
//   - [github.com/ladder-ml/ladder/chaos]: a fault-injecting model wrapper
//     for your own chaos tests.
//
// The happy path, with the models this repository ships in testdata/:
//
//	models.InitRuntime("") // finds the ONNX Runtime that `make ort` installed
//	primary, _ := models.Load("testdata/primary.onnx", models.Options{})
//	backup, _ := models.Load("testdata/backup.onnx", models.Options{})
//	r, _ := router.New(router.Config{
//		Tiers: []router.Tier{{Name: "primary", Model: primary}, {Name: "backup", Model: backup}},
//	})
//	a, err := r.Predict(ctx, []tensor.Tensor{tensor.New("features", []int64{1, 30}, row)})
//	// a.Tier == "primary", a.Degraded == false, err == nil
//
// This package holds no code: its tests drive the assembled ladder end to
// end on real models, and its examples are the README's samples, compiled.
package ladder
