// Package ladderhttp serves a ladder over HTTP: a prediction handler that
// fits net/http, a JSON codec for tensors, liveness and readiness probes,
// and structured request logs. It is pure Go.
//
//	h, err := ladderhttp.New(r, ladderhttp.Options{Logger: logger, Observer: metrics})
//	mux.Handle("POST /v1/predict", h)
//	mux.Handle("GET /healthz", h.Healthz())
//	mux.Handle("GET /readyz", h.Readyz())
//
// # Requests
//
// POST a JSON object of named inputs, each with its element type, shape
// and data, flat in row-major order:
//
//	{"inputs": {"features": {"dtype": "float32", "shape": [1, 30], "data": [17.99, 10.38, ...]}}}
//
// dtype is any element type of package tensor: float32, float64, float16,
// bfloat16, int8, int16, int32, int64, uint8, uint16, uint32, uint64, bool
// or string. A scalar has shape [] and its data may be a bare value.
// Floats may also be the strings "NaN", "+Inf" and "-Inf", and are rounded
// to the nearest value of their type: one that would round to ±Inf is out
// of range. Integers must be integral and within their type's range. For
// a single-input model the shorthand
//
//	{"vector": [17.99, 10.38, ...]}
//
// is one float32 row, shape [1, N], for the input named by
// [Options].VectorInput ("features" by default).
//
// The caller's limits come from headers or query parameters:
// [HeaderMaxStaleness] (max_staleness), [HeaderLowestTier] (lowest_tier)
// and [HeaderTimeout] (timeout). Without a timeout the request's own
// context bounds the prediction, and a client that disconnects cancels it:
// the native ONNX run stops.
//
// # Responses
//
// 200 carries the outputs in the same form as the inputs, plus the
// provenance: the rung that served, its position and kind, whether the
// answer is degraded, the model version, a cached answer's origin and age,
// the attempts, and every rung that fell before it with the reason. The
// same facts go in the Ladder-* response headers. [HeaderRequestID] is
// echoed when the request has one and made up otherwise.
//
// Every other status carries {"error": {"status", "code", "message",
// "field", "expected", "got"}, "request_id"}; a 200 never carries an error.
//
//   - 400: malformed JSON, an unknown field or input, a missing input, a
//     wrong shape, dtype or data length, a bad header. Invalid input is
//     refused before any rung runs, even while every breaker is open.
//   - 405: a method other than POST (Allow: POST).
//   - 413: a body larger than [Options].MaxBodyBytes.
//   - 503: no rung could answer within the caller's limits. The body's
//     "tiers" lists each rung's reason, and Retry-After says when an open
//     breaker lets a probe through.
//   - 504: the caller's deadline passed.
//
// # Probes
//
// [Handler.Healthz] answers 200 while the process serves HTTP.
// [Handler.Readyz] answers 200 while the ladder can answer a new input and
// every rung in [Options].Required can serve, 503 otherwise; with
// ?verbose it reports every rung's state, why it last fell, since when
// and until when, as JSON.
package ladderhttp
