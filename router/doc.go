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
// # Rungs
//
// Every rung implements [Rung]: a name, a [Kind] and Serve. The router
// builds the model tiers, the cache, the heuristic and the default itself;
// [Config].Rungs adds rungs of other kinds (an ensemble, a set of replicas,
// a hedged pair), which may live in packages of their own and take part
// in Order, [LowestTier], the deadline budget ([Request].Budget), the
// cache key ([Request].Key), validation and provenance like the built-in
// ones.
//
// A request reads the ladder from one immutable snapshot, loaded
// atomically when it starts, so the request path takes no lock and a
// ladder replaced meanwhile never changes a request midway. A model tier's
// breaker, counters and poison inputs belong to its name and outlive a
// replacement of its model.
//
// # The last-good store
//
// The cache rung reads a [LastGood] store: by default an in-process
// [cache.Store], or any store set as [Config].Cache, such as one behind a
// network. A store's failure is its rung's failure, never the request's:
// a Get that errs, panics or runs past [Config].StoreTimeout (or the
// request's deadline budget) makes the cache rung fall with a
// [*StoreError] or [*PanicError] in its [Fall]; a Put that fails is a
// [StoreFailed] event, and the answer is served. Stores that implement
// [Offerer], as cache.Store does, take writes without making the request
// wait. Package cache/cachetest checks a store's conformance.
//
// # Promises
//
// Invalid input is the caller's fault and is never answered from a lower
// rung. Every request is checked against the ladder's input contract
// ([Config].Inputs, by default the inputs of the first tier that reports a
// signature) before any rung runs, whatever the breakers say; one that
// does not fit fails at once with an error matching
// tensor.ErrInvalidInput. A tier whose model takes other inputs needs a
// [Tier].Inputs adapter, or [New] refuses the config. An input that fits
// the contract but that a tier refuses is that tier's failure: the
// request falls.
//
// No NaN or unfit answer is ever served. Every answer of every rung, model,
// cache, heuristic and default alike, passes the same checks before it is
// served: at least one output, the ladder's output contract, finite values,
// and [Config].Check.
//
// User code cannot break the router. Every call into it (models, Inputs,
// Heuristic, Key, Check, OnEvent, the Logger's handler, a custom LastGood,
// a custom Rung) is recovered; none runs while a lock is held, and breaker changes are
// delivered after the breaker has released its lock. A panicking hook is
// reported as a [HookPanicked] event (and logged when a Logger is set); it
// never changes which answer is served and never counts against a tier. A
// panicking Check does not refuse the answer.
//
// A hang costs at most the timeout. The router stops waiting for an
// attempt at the tier's timeout and falls to the next rung, for any Model.
// A [TimeoutPredictor] bounds its own run, on the request's goroutine; any
// other Model runs on a helper goroutine, and the calls the router stopped
// waiting for are counted ([TierHealth].Abandoned): while the tier's
// MaxConcurrent of them still run, the tier is skipped.
//
// When ctx has a deadline, the ladder budgets it: an attempt at a model
// tier gets the smaller of its Timeout and the remaining time less a
// reserve for the rungs below ([Config].Reserve, by default 20% of the
// remaining time; the last rung keeps none). An attempt cut short this way
// is the tier's timeout, not the caller's cancellation.
//
// The breaker never opens because of callers. What counts against a tier:
// its errors, its timeouts (its own or the budgeted ones), its invalid
// outputs, its panics and its refusals of inputs that fit the contract.
// What does not: invalid input, the caller's cancellation or deadline, a
// full bulkhead or open breaker, a panicking hook, and repeats of a poison
// input. The poison-input rule: a deterministic failure (invalid output,
// panic, refusal, an error marked policy.Permanent) on an input that
// already failed that way on the same tier within the tier's OpenFor
// counts once; the repeats fall at once, uncounted. Transient errors and
// timeouts always count.
//
// Only answers from model tiers that passed validation are stored in the
// cache; heuristic, default and cached answers never are.
//
// Recovery: a tier whose breaker opened is skipped without an attempt. After
// policy.Config.OpenFor (default 1s) it lets Probes (default 3) requests
// through; when they all succeed the tier serves again. A probe the caller
// cancels gives its place back. So traffic returns to a healed primary
// within OpenFor plus the time to serve three requests. [Router.Health]
// reports each breaker's state and since when, and a breaker whose OpenFor
// has passed as half-open.
//
// Health and reloads: a tier with [Tier].Canaries is probed in the
// background ([Probe]); failed probes take it out of service without an
// attempt and passing ones readmit it. [Router.Health] reports each tier's
// [Condition], version, source, last error and counts, and [Router.Ready]
// answers a readiness probe. [Router.Reload] loads a new version beside
// the old one, checks it (the contract, the canaries, [Tier].Validate),
// swaps it in atomically, closes the old one once its calls have drained,
// and rolls it back when it fails under traffic ([Rollback]). A tier given
// a [Tier].Load instead of a Model loads in the background, so [New] never
// blocks on a model; [Tier].Watch reloads a tier when its file changes.
// Every change of state is an [Event].
//
// Each request may ask for consistency over availability with
// [MaxStaleness] and [LowestTier]. A Router is safe for concurrent use.
package router
