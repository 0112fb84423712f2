// Package ladderhttp serves a ladder over HTTP: a prediction handler that
// fits net/http, a JSON codec for tensors, liveness and readiness probes,
// and structured request logs. It is pure Go; package ladderprom adds
// metrics through [Options].Observer.
//
//	h, err := ladderhttp.New(r, ladderhttp.Options{Logger: logger})
//	if err != nil {
//		log.Fatal(err)
//	}
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
// of range. Integers must be integral and within their type's range.
// Inputs are sorted by name, so the same request always makes the same
// cache key. For a single-input model the shorthand
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
// the native ONNX run stops, and the request is logged and observed as
// [StatusClientClosedRequest] (499), which nobody receives.
//
// # Responses
//
// 200 carries the outputs in the same form as the inputs, with the
// provenance; a cached answer adds "origin" and "age_seconds":
//
//	{"outputs": {"probability": {"dtype": "float32", "shape": [1, 1], "data": [0.00039]}},
//	 "tier": "backup", "position": 1, "kind": "model", "degraded": true, "version": "1",
//	 "attempts": 1, "fell": [{"tier": "primary", "position": 0, "attempts": 2, "reason": "error",
//	 "error": "chaos: injected failure: error rate"}], "latency_seconds": 0.00041, "request_id": "9e7bbd696d8c942d"}
//
// The same facts go in the Ladder-* response headers, [HeaderFell] as
// "primary=breaker_open, backup=timeout". [HeaderRequestID] is kept and
// echoed when sane (1 to 128 printable ASCII characters), made up
// otherwise, and is in every body and log line. The reasons a rung fell
// are error, timeout, breaker_open, bulkhead_full, retry_budget, abandoned,
// invalid_output (NaN, off the output contract, refused by Check), panic,
// not_cached, too_stale, not_accepted, deadline and canceled.
//
// A 200 never carries an error. Every other status carries {"error":
// {"status", "code", "message", "field", "expected", "got"}, "request_id"},
// with code one of invalid_input, method_not_allowed, body_too_large,
// no_answer, closed (the router was closed) and deadline_exceeded:
//
//   - 400: malformed JSON, an unknown field or input, a missing input, a
//     wrong dtype, shape or data length, an integer out of range, a bad
//     header. The body names the field (inputs.features.data[3]) and what
//     was expected (float32[?,30]). It is checked before any rung runs, so
//     it is a 400 even while every breaker is open.
//   - 405: a method other than POST (Allow: POST).
//   - 413: a body larger than [Options].MaxBodyBytes (1 MiB).
//   - 503: no rung could answer within the caller's limits. The body's
//     "tiers" lists each rung's reason, and Retry-After says when the first
//     open breaker lets a probe through.
//   - 504: the caller's deadline passed, or the deadline budget ran out for
//     the last rung the caller accepts.
//
// With [Options].Logger set, each request logs one line with its id,
// status, tier, degraded, attempts, latency and, for a fall or a failure,
// the chain ("fell": "primary=error: chaos: injected failure", ...).
//
// # Probes
//
// [Handler.Healthz] answers 200 while the process serves HTTP; it never
// looks at the models, so an outage or a reload never gets the pod
// restarted. [Handler.Readyz] applies router.Readiness, the rule
// router.Router.Ready applies too: 200 while at least one rung can answer
// a new input (a model tier neither loading, unhealthy nor behind an open
// breaker, the heuristic or the default; not the cache, which answers only
// inputs it has seen) and every required rung can serve (the tiers marked
// Required, and [Options].Required), 503 with the reason otherwise. With
// ?verbose it reports every rung's state, whether it can serve, since and
// until when, and why it last fell, as JSON.
package ladderhttp
