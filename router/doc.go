// Package router owns ladder's ladder: it routes each prediction down an
// ordered list of rungs and returns the best answer available now, labelled
// with where it came from.
//
// The default order is the model tiers (primary, backup, …), the rungs of
// [Config].Rungs, the last-good cache, a heuristic function and a static
// default. Each model tier runs under its own [policy.Config]: a
// per-attempt timeout that really stops ONNX runs, retries with backoff
// within a retry budget, a circuit breaker and a bulkhead. A tier that
// timed out, answered NaN or panicked is not retried: the request falls to
// the next rung at once.
//
// An [Answer] carries its provenance, [Answer].Fell says why each rung
// above it fell, and a degraded answer is a success (err is nil). Each
// fall carries its verdict ([Fall].Outcome, such as "breaker_open"),
// decided once where the rung fell, and [Config].OnDone sees every
// attempt's; nothing downstream judges an error again. When a
// retry is refused (the breaker just opened, the budget is spent), the
// fall's error joins the attempt's own error and the refusal, so
// [errors.Is] finds both. [MaxStaleness] and [LowestTier] put consistency
// before availability for one request: a would-be degraded answer becomes
// a [*NoAnswerError] that lists and unwraps each rung's reason.
//
// [Config].Rungs adds rungs of kinds the router does not build itself (an
// ensemble, replicas, a hedged pair; see [Rung]). A request reads the ladder
// from one immutable snapshot behind an atomic pointer, so the request path
// takes no lock; a model replaced meanwhile never changes a request midway,
// and a tier's breaker, counters and poison inputs outlive the replacement.
//
// The cache rung reads a [LastGood] store, by default an in-process
// [cache.Store] keyed by [cache.Key]; [Config].Cache takes any other, such
// as one behind a network, and package cache/cachetest checks it. Only
// answers of [KindModel] rungs that passed validation are stored. A store's
// failure is the cache rung's, never the request's, and the router stops
// waiting for it at [Config].StoreTimeout even when it ignores ctx (the call
// runs on a helper goroutine; while 64 such calls run, the store is
// skipped).
//
// # Optional capabilities
//
// A [Model] may implement [TimeoutPredictor], [Versioner],
// [SignatureReporter], [Warmer] and [io.Closer]; *models.Model implements
// them all. A wrapper forwards them by implementing the same methods
// ([PredictTimeout] forwards the timeout path) or, for signature and
// version, by implementing [Unwrapper]. The router never looks through an
// Unwrapper for PredictTimeout, Warmup or Close, which would bypass the
// wrapper. chaos.Faulty forwards all five.
//
// # Promises
//
// Each is a scenario test in promises_test.go, run with -race and goleak
// against the real models in testdata/.
//
// Invalid input is the caller's fault, never answered from a lower rung.
// Every request is checked in Go against the input contract
// ([Config].Inputs, by default the first signature's inputs) before any
// rung runs, whatever the breakers say. A missing, unknown or misnamed
// input, or a wrong element type, rank, dimension or data length, fails at
// once with a *tensor.InputError: no rung runs, nothing is retried, no
// breaker counts it. A tier whose model takes other inputs needs a
// [Tier].Inputs adapter, or [New] fails naming the tier and both
// signatures. An input that fits but that a tier or its adapter refuses is
// that tier's failure. With no contract, a tier's tensor.ErrInvalidInput
// goes back to the caller.
//
// No NaN or unfit answer is ever served. Every answer of every rung, cached
// ones from any store included, must have at least one output, fit the
// output contract ([Config].Outputs, by default the first signature's:
// names, types, shapes, data lengths), be finite, half precision included,
// and pass [Config].Check; else its rung falls with an [*OutputError]. New
// refuses a tier whose signature returns other outputs, and a Default that
// would never pass.
//
// User code cannot break the router. Every call into it is recovered:
// models, Tier.Inputs, Heuristic, Key, Check, OnEvent, the Logger's
// handler, a store's Get and Put, a [Manager]'s Start (package reload
// recovers its Loader and Validate too), the Close of a model the router
// loaded (its panic is in [Router.Close]'s error) and a custom rung (New
// refuses a nil one, or one whose Name or Kind panics).
// None runs while a lock is held: breaker changes are delivered after the
// call that caused them. A panicking model or heuristic makes its rung fall
// with a [*PanicError] holding the stack. A panicking hook is a
// [HookPanicked] event, logged at Info; it never changes the answer and
// never counts against a tier. A panicking Check refuses nothing; a
// panicking Key means the request is not cached.
//
// A hang costs at most the timeout, for any Model. A [TimeoutPredictor]
// bounds its own run on the request's goroutine; any other Model runs on a
// helper goroutine, and the calls left running past their timeout are
// counted ([TierHealth].Abandoned): while MaxConcurrent of them run, the
// tier is skipped like a full bulkhead. Neither a version swap nor Close
// waits for them; a model the router loaded is closed when the last
// returns.
// Timeouts are Go timers: on a machine starved of CPU a run can outlive its
// timeout by as long as the process waits to be scheduled. When ctx has a
// deadline, an attempt gets the smaller of its Timeout and the remaining
// time × (1 − [Config].Reserve, 20% by default), keeping time for the rungs
// below (the last keeps none): with a 50 ms deadline a hanging primary gets
// 40 ms. An attempt cut short this way is the tier's timeout.
//
// The breaker never opens because of callers. Against a tier count its
// errors, its timeouts (own or budgeted), its invalid outputs, its panics
// and its refusals of inputs that fit. Never counted: invalid input, the
// caller's cancellation or deadline, an open breaker, a full bulkhead, a
// spent retry budget, too many abandoned calls, a panicking hook, and
// repeats of a poison input. A half-open trial whose caller left gives its
// place back, so a healed tier closes within OpenFor plus three good
// trials. A deterministic failure (an invalid output, a panic, a refusal
// of a valid input, an error marked policy.Permanent) on an input that
// already failed that way on the tier within its OpenFor counts once; the
// repeats fall at once, uncounted and not retried. So one client repeating
// a poison input does not open the breaker for everyone, while a tier
// failing on many inputs still opens. Transient errors and timeouts always
// count.
//
// # Events and health
//
// [Config].OnEvent and [Config].Logger receive every [Event]; without them
// the router is silent. [Router.Health] reports each model tier's breaker
// state (a breaker whose OpenFor has passed reads half-open), condition,
// version and counts; [Router.Status] reports every rung's kind, state and
// last verdict, and [Router.Ready] applies [Readiness] to it. What
// manages a tier over time is a [Manager] in [Tier].Manage, which drives
// the tier through a [Handle]: package reload loads, checks, swaps in and
// rolls back versions and watches model files; package probe runs canaries
// in the background. The repository's docs/operations.md describes them.
//
// Everything that reads time reads [Config].Clock: breakers, poison
// windows, probes, reloads, rollback windows, watches and the default
// cache, so a test moves a clock.Fake instead of sleeping.
//
// A Router is safe for concurrent use.
package router
