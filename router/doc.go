// Package router owns ladder's ladder: it routes each prediction down an
// ordered list of rungs and returns the best answer available now, labelled
// with where it came from.
//
// The default order is the model tiers (primary, backup, …), then the
// last-good cache, then a heuristic function, then a static default. Each
// model tier runs under its own failsafe-go policies (package policy):
// a per-attempt timeout that really stops ONNX runs, retries with backoff
// within a retry budget, a circuit breaker and a bulkhead.
//
// A tier falls when its model errors, times out, panics, or returns an
// invalid output (NaN, ±Inf, the wrong shape, or one the user's Check
// refuses); an invalid output is never served. Two things are not a tier's
// fault and never move a request down the ladder: invalid input, which is
// returned at once as an error matching tensor.ErrInvalidInput, and the
// caller's own cancellation, which returns promptly with ctx's error.
//
// Only answers from model tiers that passed validation are stored in the
// cache; heuristic, default and cached answers never are.
//
// Recovery: a tier whose breaker opened is skipped without an attempt. After
// policy.Config.OpenFor (default 1s) it lets Probes (default 3) requests
// through; when they all succeed the tier serves again. So traffic returns
// to a healed primary within OpenFor plus the time to serve three requests.
//
// Each request may ask for consistency over availability with
// [MaxStaleness] and [LowestTier]. A Router is safe for concurrent use.
package router
