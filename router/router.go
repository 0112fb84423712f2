package router

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"math"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
)

// Model is anything that can answer a prediction: a models.Model, a
// remote client, a Go function. Return an error matching
// [tensor.ErrInvalidInput] for input the model cannot take; wrap a
// deterministic failure with [policy.Permanent] so it is not retried.
type Model interface {
	Predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error)
}

// ModelFunc adapts a plain function to [Model].
type ModelFunc func(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error)

// Predict calls f.
func (f ModelFunc) Predict(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	return f(ctx, inputs)
}

// HeuristicFunc is the rule-based rung: a plain function of the input, such
// as a few rules or a base rate. Its answers are validated like a model's
// but never cached.
type HeuristicFunc func(ctx context.Context, inputs []tensor.Tensor) ([]tensor.Tensor, error)

// LastGood is the store of last-good answers the cache rung reads and model
// tiers write. [*cache.Store] implements it. The router recovers a panic
// in either method: a Get that panics makes the cache rung fall, a Put
// that panics loses that write.
type LastGood interface {
	Get(key string) (cache.Entry, bool)
	Put(key string, e cache.Entry)
}

// offerer is a LastGood that can store without making the request wait:
// [*cache.Store] queues the write for its own goroutine. The router uses it
// when present, so requests never contend for the cache's locks.
type offerer interface {
	Offer(key string, e cache.Entry) bool
}

// Tier is one model rung of the ladder.
type Tier struct {
	// Name labels the tier in answers, errors and events. Required and
	// unique; "cache", "heuristic" and "default" are reserved.
	Name string
	// Model answers for the tier. Required.
	Model Model
	// Version labels the tier's answers. The default is [VersionOf] the
	// model.
	Version string
	// Inputs, when set, adapts a request that fits the ladder's input
	// contract to what this tier's model takes. It is required when the
	// model's signature takes other inputs than the contract. An error or
	// a panic from Inputs makes the tier fall for that request, without
	// counting against its breaker.
	Inputs func(inputs []tensor.Tensor) ([]tensor.Tensor, error)
	// Policy is the tier's timeout, retry, breaker and bulkhead settings;
	// the zero value means the defaults documented on [policy.Config].
	Policy policy.Config
}

// Names of the built-in rungs, for [Config.Order] and [LowestTier].
const (
	RungCache     = "cache"
	RungHeuristic = "heuristic"
	RungDefault   = "default"
)

// AnyAge is the staleness that accepts every cached answer still in the
// cache: the default of [Config.MaxStaleness].
const AnyAge time.Duration = math.MaxInt64

// DefaultReserve is the default of [Config.Reserve].
const DefaultReserve = 0.2

// Config describes a ladder. Only Tiers, or a Heuristic or Default, is
// required; every other zero value means the documented default.
type Config struct {
	// Tiers are the model tiers, best first.
	Tiers []Tier

	// Heuristic, when set, answers when the tiers and the cache cannot.
	Heuristic HeuristicFunc

	// Default, when set, is the static answer of last resort. New checks
	// it like any answer and refuses one that would never be served.
	Default []tensor.Tensor

	// Order is the order of the rungs, by name: tier names, RungCache,
	// RungHeuristic and RungDefault. The default is every tier in order,
	// then the cache, the heuristic (if set) and the default (if set).
	// Leaving RungCache out disables the cache.
	Order []string

	// Inputs is the ladder's input contract: every request is checked
	// against it before any rung runs, and one that does not fit fails at
	// once with an error matching [tensor.ErrInvalidInput]. The default is
	// the inputs of the first tier that reports a signature
	// ([SignatureOf]); with neither, requests are not checked and a
	// tier's ErrInvalidInput is returned to the caller.
	Inputs []tensor.Info
	// Outputs is the ladder's output contract: every answer of every rung
	// is checked against it before it is served. The default is the
	// outputs of the first tier that reports a signature.
	Outputs []tensor.Info

	// Cache holds last-good answers. The default is a [cache.Store] with
	// the defaults of [cache.Config], owned and closed by the router. To
	// configure the store, build it with [cache.New] and set it here; the
	// caller then closes it after the router.
	Cache LastGood
	// Key maps inputs to a cache key, e.g. an entity ID. The default,
	// [cache.Key], hashes the input tensors. A Key that panics is
	// reported, and that request is not cached.
	Key func(inputs []tensor.Tensor) string
	// MaxStaleness is the oldest cached answer served when a request does
	// not say with the [MaxStaleness] option. Zero means the default,
	// [AnyAge]: any answer still in the cache. Negative is an error; to
	// never serve cached answers, leave RungCache out of Order.
	MaxStaleness time.Duration

	// Reserve is the fraction of the caller's remaining time, when ctx
	// has a deadline, that a model tier's attempt leaves to the rungs
	// below it: an attempt gets the smaller of its Timeout and the
	// remaining time × (1 − Reserve), so a lower rung still answers in
	// time. An attempt cut short this way is the tier's timeout. The last
	// rung keeps no reserve. Zero means [DefaultReserve] (0.2); a negative
	// value means none; 1 or more is an error.
	Reserve float64

	// Check validates every answer of every rung before it is served,
	// e.g. that a probability lies in [0, 1]. NaN and ±Inf are always
	// rejected, and answers are checked against the ladder's Outputs. A
	// Check that panics is reported and does not refuse the answer.
	Check func(outputs []tensor.Tensor) error

	// OnEvent, when set, is called synchronously for every [Event]. Keep
	// it fast: it runs on the request path. A panic in it is recovered
	// and reported as a [HookPanicked] event.
	OnEvent func(Event)
	// Logger, when set, logs events: switches and breaker changes at
	// Warn, falls and hook panics at Info, the rest at Debug.
	Logger *slog.Logger

	// Now is the clock. The default is time.Now.
	Now func() time.Time
}

// Router routes each prediction down a ladder of rungs and returns the
// best answer available now. It is safe for concurrent use; the request
// path takes no lock of its own.
type Router struct {
	rungs   []*rung
	inputs  []tensor.Info // the input contract; nil when there is none
	outputs []tensor.Info // the output contract; nil when there is none
	key     func([]tensor.Tensor) string
	store   LastGood
	offer   offerer      // store, when it can take writes without waiting
	owned   *cache.Store // the default cache, closed by Close
	check   func([]tensor.Tensor) error
	stale   time.Duration
	reserve float64
	now     func() time.Time
	events  emitter
	seed    maphash.Seed

	serving atomic.Int32 // position of the rung that served last
	closed  atomic.Bool
}

// rung is one step of the ladder, immutable after New.
type rung struct {
	name    string
	pos     int
	kind    Kind
	model   Model
	timed   TimeoutPredictor // model, when it can bound its own runs
	adapt   func([]tensor.Tensor) ([]tensor.Tensor, error)
	version string
	timeout time.Duration // the tier's per-attempt timeout
	below   bool          // a rung follows, so an attempt keeps a reserve
	policy  *policy.Tier
	attempt policy.Attempt // bound once, so Do allocates nothing
	router  *Router

	// Calls on a helper goroutine that the router stopped waiting for and
	// that have not returned yet; at most maxAbandoned.
	abandoned    atomic.Int64
	maxAbandoned int64

	// Recent failures by input, for the poison-input rule.
	poison poisonSet
}

// New builds a router from cfg. It returns an error matching
// [ErrInvalidConfig] (or policy.ErrInvalidConfig, cache.ErrInvalidConfig)
// that names the bad setting.
func New(cfg Config) (*Router, error) {
	r := &Router{
		key:     cfg.Key,
		check:   cfg.Check,
		stale:   cfg.MaxStaleness,
		reserve: cfg.Reserve,
		now:     cfg.Now,
		events:  emitter{listen: cfg.OnEvent, log: cfg.Logger},
		seed:    maphash.MakeSeed(),
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if r.key == nil {
		r.key = cache.Key
	}
	if r.now == nil {
		r.now = time.Now
	}
	switch {
	case r.stale < 0:
		return nil, bad("MaxStaleness is %v; expected 0 (any age) or more", r.stale)
	case r.stale == 0:
		r.stale = AnyAge
	}
	switch {
	case r.reserve >= 1:
		return nil, bad("Reserve is %v; expected a fraction below 1, 0 for the default %v, or negative for none", r.reserve, DefaultReserve)
	case r.reserve == 0:
		r.reserve = DefaultReserve
	case r.reserve < 0:
		r.reserve = 0
	}

	r.inputs, r.outputs = cloneInfos(cfg.Inputs), cloneInfos(cfg.Outputs)
	for _, t := range cfg.Tiers {
		if t.Model == nil {
			continue
		}
		if sig, ok := SignatureOf(t.Model); ok {
			if r.inputs == nil {
				r.inputs = cloneInfos(sig.Inputs)
			}
			if r.outputs == nil {
				r.outputs = cloneInfos(sig.Outputs)
			}
			break
		}
	}

	byName := map[string]*rung{}
	for i, t := range cfg.Tiers {
		switch {
		case t.Name == "":
			return nil, bad("Tiers[%d] has no Name; expected a unique name such as \"primary\"", i)
		case t.Name == RungCache || t.Name == RungHeuristic || t.Name == RungDefault:
			return nil, bad("Tiers[%d] is named %q, which is reserved; expected another name", i, t.Name)
		case byName[t.Name] != nil:
			return nil, bad("two tiers are named %q; expected unique names", t.Name)
		case t.Model == nil:
			return nil, bad("tier %q has no Model", t.Name)
		}
		rg := &rung{name: t.Name, kind: KindModel, model: t.Model, version: t.Version, adapt: t.Inputs, router: r}
		rg.timed, _ = t.Model.(TimeoutPredictor)
		if rg.version == "" {
			rg.version, _ = VersionOf(t.Model)
		}
		if sig, ok := SignatureOf(t.Model); ok {
			if r.inputs != nil && t.Inputs == nil && !sameInfos(sig.Inputs, r.inputs) {
				return nil, bad("tier %q takes %s but the ladder's input contract is %s; expected the same inputs, or Tier.Inputs to adapt them",
					t.Name, infosString(sig.Inputs), infosString(r.inputs))
			}
			if r.outputs != nil && !sameInfos(sig.Outputs, r.outputs) {
				return nil, bad("tier %q returns %s but the ladder's output contract is %s; expected the same outputs",
					t.Name, infosString(sig.Outputs), infosString(r.outputs))
			}
		}
		p, err := policy.New(t.Policy, runtime.GOMAXPROCS(0), func(c policy.StateChange) {
			r.emit(Event{Kind: BreakerChanged, Tier: rg.name, Position: rg.pos, Breaker: c})
		})
		if err != nil {
			return nil, fmt.Errorf("router: tier %q: %w", t.Name, err)
		}
		rg.policy = p
		rg.timeout = p.Config().Timeout
		rg.maxAbandoned = int64(p.Config().MaxConcurrent)
		rg.poison.window = int64(p.Config().OpenFor)
		rg.attempt = rg.try
		byName[t.Name] = rg
	}
	if cfg.Heuristic != nil {
		h := cfg.Heuristic
		byName[RungHeuristic] = &rung{name: RungHeuristic, kind: KindHeuristic, router: r,
			model: ModelFunc(h)}
	}
	if cfg.Default != nil {
		def := tensor.CloneAll(cfg.Default)
		if err := r.validate(RungDefault, def); err != nil {
			return nil, bad("Default would never be served: %v", err)
		}
		byName[RungDefault] = &rung{name: RungDefault, kind: KindDefault, router: r,
			model: ModelFunc(func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
				return tensor.CloneAll(def), nil
			})}
	}

	order := cfg.Order
	if order == nil {
		for _, t := range cfg.Tiers {
			order = append(order, t.Name)
		}
		order = append(order, RungCache)
		if cfg.Heuristic != nil {
			order = append(order, RungHeuristic)
		}
		if cfg.Default != nil {
			order = append(order, RungDefault)
		}
	}
	for _, name := range order {
		if name == RungCache && byName[RungCache] == nil {
			byName[RungCache] = &rung{name: RungCache, kind: KindCache, router: r}
		}
		rg := byName[name]
		switch {
		case rg == nil:
			return nil, bad("Order names %q, which is neither a tier nor a configured rung; expected one of %s",
				name, strings.Join(slices.Sorted(maps.Keys(byName)), ", "))
		case slices.Contains(r.rungs, rg):
			return nil, bad("Order names %q twice", name)
		}
		rg.pos = len(r.rungs)
		r.rungs = append(r.rungs, rg)
	}
	if len(r.rungs) == 0 {
		return nil, bad("no rungs; expected at least one tier, a Heuristic or a Default")
	}
	for name := range byName {
		if !slices.Contains(order, name) && name != RungCache {
			return nil, bad("%q is configured but missing from Order", name)
		}
	}
	for _, rg := range r.rungs {
		rg.below = rg.pos < len(r.rungs)-1
	}

	if slices.Contains(order, RungCache) {
		r.store = cfg.Cache
		if r.store == nil {
			s, err := cache.New(cache.Config{})
			if err != nil {
				return nil, fmt.Errorf("router: %w", err)
			}
			r.owned, r.store = s, s
		}
		r.offer, _ = r.store.(offerer)
	}
	r.serving.Store(-1)
	return r, nil
}

func cloneInfos(in []tensor.Info) []tensor.Info {
	if in == nil {
		return nil
	}
	return tensor.Signature{Inputs: in}.Clone().Inputs
}

func sameInfos(a, b []tensor.Info) bool {
	return slices.EqualFunc(a, b, func(x, y tensor.Info) bool {
		return x.Name == y.Name && x.DType == y.DType && slices.Equal(x.Shape, y.Shape)
	})
}

func infosString(infos []tensor.Info) string {
	s := make([]string, len(infos))
	for i, in := range infos {
		s[i] = in.String()
	}
	return "(" + strings.Join(s, ", ") + ")"
}

// Option sets a per-request limit on [Router.Predict].
type Option func(*request)

type request struct {
	stale  time.Duration
	lowest string
}

// MaxStaleness sets the oldest cached answer this request accepts, as
// [Config.MaxStaleness] does for requests that do not say, except that
// here the value is taken as it is: zero or less accepts no cached answer
// (fail rather than answer stale), and [AnyAge] accepts any.
func MaxStaleness(d time.Duration) Option {
	return func(r *request) { r.stale = max(d, 0) }
}

// LowestTier sets the lowest rung this request accepts, by name: rungs
// below it are not tried, and the request fails with a [*NoAnswerError]
// instead. For "models only", name the last model tier.
func LowestTier(name string) Option {
	return func(r *request) { r.lowest = name }
}

func (r *Router) options(opts []Option) (stale time.Duration, lowest int, err error) {
	req := request{stale: r.stale}
	for _, o := range opts {
		o(&req)
	}
	lowest = len(r.rungs) - 1
	if req.lowest != "" {
		i := slices.IndexFunc(r.rungs, func(rg *rung) bool { return rg.name == req.lowest })
		if i < 0 {
			return 0, 0, fmt.Errorf("router: LowestTier(%q): no such rung; expected one of %s", req.lowest, strings.Join(r.Rungs(), ", "))
		}
		lowest = i
	}
	return req.stale, lowest, nil
}

// Predict returns the best answer available now for inputs, labelled with
// where it came from. A degraded answer is a success, with a nil error.
//
// Predict fails only when:
//   - the input does not fit the ladder's input contract
//     ([Config.Inputs]): an error matching [tensor.ErrInvalidInput],
//     returned before any rung runs, whatever state the breakers are in;
//   - ctx is done: ctx's error, returned promptly;
//   - no rung can answer within the request's limits: a [*NoAnswerError]
//     listing each rung's reason.
func (r *Router) Predict(ctx context.Context, inputs []tensor.Tensor, opts ...Option) (Answer, error) {
	if r.closed.Load() {
		return Answer{}, ErrClosed
	}
	start := r.now()
	stale, lowest := r.stale, len(r.rungs)-1
	if len(opts) > 0 {
		var err error
		if stale, lowest, err = r.options(opts); err != nil {
			return Answer{}, err
		}
	}
	if r.inputs != nil {
		var buf [4]tensor.Tensor // on the stack for up to four inputs
		var ordered []tensor.Tensor
		if n := len(r.inputs); n <= len(buf) {
			ordered = buf[:n]
		} else {
			ordered = make([]tensor.Tensor, n)
		}
		if err := tensor.CheckInputs("ladder", r.inputs, inputs, ordered); err != nil {
			return Answer{}, err
		}
	}

	var (
		falls []Fall
		key   string
		keyed bool
	)
	cacheKey := func() string {
		if !keyed {
			key, keyed = r.safeKey(inputs), true
		}
		return key
	}
	for pos, rg := range r.rungs {
		if err := ctx.Err(); err != nil {
			return Answer{}, err
		}
		if pos > lowest || (rg.kind == KindCache && stale == 0) {
			falls = append(falls, Fall{Tier: rg.name, Position: pos, Err: ErrNotAccepted})
			continue
		}
		var (
			ans Answer
			err error
		)
		switch rg.kind {
		case KindModel:
			in := inputs
			switch {
			case rg.timed == nil && rg.abandoned.Load() >= rg.maxAbandoned:
				err = &AbandonedError{Tier: rg.name, Running: rg.abandoned.Load()}
			case rg.adapt != nil:
				in, err = rg.adaptInputs(inputs)
			}
			if err == nil {
				ans.Outputs, ans.Attempts, err = rg.policy.Do(ctx, in, rg.attempt)
				ans.Version = rg.version
			}
		case KindCache:
			ans, err = r.serveCache(cacheKey(), stale, rg)
		default:
			ans, err = rg.serveFunc(ctx, inputs)
		}
		if err == nil {
			end := r.now()
			if rg.kind == KindModel && r.store != nil {
				// Only validated model answers become last-good answers.
				r.remember(cacheKey(), cache.Entry{Outputs: ans.Outputs, Tier: rg.name, Version: rg.version, Stored: end})
			}
			ans.Tier, ans.Position, ans.Kind = rg.name, pos, rg.kind
			ans.Degraded = pos > 0
			ans.Fell = falls
			ans.Latency = end.Sub(start)
			r.served(&ans)
			return ans, nil
		}
		switch policy.Classify(ctx, err) {
		case policy.Reject:
			if r.inputs == nil {
				// No contract to judge by: the tier's word is taken.
				return Answer{}, err
			}
		case policy.Abandon:
			return Answer{}, ctx.Err()
		}
		falls = append(falls, Fall{Tier: rg.name, Position: pos, Attempts: ans.Attempts, Err: err})
		if r.events.active() {
			r.emit(Event{Kind: Fell, Tier: rg.name, Position: pos, Err: err})
		}
	}
	return Answer{}, &NoAnswerError{Falls: falls}
}

func (r *Router) served(a *Answer) {
	if prev := r.serving.Load(); prev != int32(a.Position) && r.serving.CompareAndSwap(prev, int32(a.Position)) && prev >= 0 {
		r.emit(Event{Kind: Switched, Tier: a.Tier, Position: a.Position, From: r.rungs[prev].name, To: a.Tier})
	}
	if r.events.active() {
		if a.Kind == KindCache {
			r.emit(Event{Kind: CacheServed, Tier: a.Tier, Position: a.Position, Age: a.Age})
		}
		r.emit(Event{Kind: Served, Tier: a.Tier, Position: a.Position, Latency: a.Latency})
	}
}

func (r *Router) emit(e Event) { r.events.emit(e) }

// hookPanicked reports a panic recovered from the user's hook.
func (r *Router) hookPanicked(hook, tier string, v any) {
	r.events.hookPanicked(&PanicError{Tier: tier, Hook: hook, Value: v, Stack: debug.Stack()})
}

// safeKey returns the cache key of inputs, or "" (not cached) when Key
// panics.
func (r *Router) safeKey(inputs []tensor.Tensor) (key string) {
	defer func() {
		if v := recover(); v != nil {
			key = ""
			r.hookPanicked("Key", "", v)
		}
	}()
	return r.key(inputs)
}

// remember stores a validated model answer as the last good one.
func (r *Router) remember(key string, e cache.Entry) {
	if key == "" {
		return
	}
	if r.offer != nil {
		r.offer.Offer(key, e)
		return
	}
	defer func() {
		if v := recover(); v != nil {
			r.hookPanicked("Cache.Put", RungCache, v)
		}
	}()
	r.store.Put(key, e)
}

// adaptInputs runs the tier's input adapter, recovering its panic.
func (rg *rung) adaptInputs(inputs []tensor.Tensor) (out []tensor.Tensor, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, &PanicError{Tier: rg.name, Hook: "Inputs", Value: v, Stack: debug.Stack()}
		}
	}()
	out, err = rg.adapt(inputs)
	if err != nil {
		err = &AdaptError{Tier: rg.name, Err: err}
	}
	return out, err
}

// try is one attempt at a model tier: bounded by the tier's timeout and
// the caller's deadline, with panics recovered and outputs validated.
func (rg *rung) try(ctx context.Context, inputs []tensor.Tensor) (out []tensor.Tensor, err error) {
	defer func() {
		if v := recover(); v != nil {
			// A panic is not retried on the same tier.
			out, err = nil, policy.Permanent(&PanicError{Tier: rg.name, Value: v, Stack: debug.Stack()})
		}
		if err != nil {
			err = rg.poison.judge(rg.router, ctx, inputs, err)
		}
	}()
	timeout := rg.budget(ctx)
	if timeout <= 0 {
		return nil, policy.Uncounted(fmt.Errorf("%w: no time left before the caller's deadline", policy.ErrTimeout))
	}
	if rg.timed != nil {
		out, err = rg.timed.PredictTimeout(ctx, timeout, inputs)
		// A run that ended on its own timeout reports a deadline while the
		// caller's ctx is still live.
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w after %v: %w", policy.ErrTimeout, timeout, err)
		}
	} else {
		out, err = rg.predictAside(ctx, timeout, inputs)
	}
	if err != nil {
		if errors.Is(err, tensor.ErrInvalidInput) && rg.router.inputs != nil {
			// The input fits the ladder's contract: refusing it is the
			// tier's failure, not the caller's.
			err = policy.Permanent(err)
		}
		return nil, err
	}
	if err := rg.router.validate(rg.name, out); err != nil {
		// The same input would give the same bad output: not retried.
		return nil, policy.Permanent(err)
	}
	return out, nil
}

// budget returns how long the next attempt may run: the tier's timeout,
// shortened to the caller's remaining time less the reserve for the rungs
// below.
func (rg *rung) budget(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return rg.timeout
	}
	left := time.Until(dl)
	if rg.below {
		left = time.Duration(float64(left) * (1 - rg.router.reserve))
	}
	return min(rg.timeout, left)
}

// aside is one call run on a helper goroutine.
type aside struct {
	done  chan struct{}
	out   []tensor.Tensor
	err   error
	state atomic.Int32 // running, finished or abandoned
}

const (
	running int32 = iota
	finished
	abandoned
)

// predictAside runs a Model that may ignore ctx on a helper goroutine and
// stops waiting for it at the timeout. Calls it stopped waiting for are
// counted until they return; while maxAbandoned of them are still running,
// the tier is skipped as if its bulkhead were full.
func (rg *rung) predictAside(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	if n := rg.abandoned.Load(); n >= rg.maxAbandoned {
		return nil, &AbandonedError{Tier: rg.name, Running: n}
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &aside{done: make(chan struct{})}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				c.out, c.err = nil, policy.Permanent(&PanicError{Tier: rg.name, Value: v, Stack: debug.Stack()})
			}
			close(c.done)
			if !c.state.CompareAndSwap(running, finished) {
				rg.abandoned.Add(-1)
			}
		}()
		c.out, c.err = rg.model.Predict(tctx, inputs)
	}()
	select {
	case <-c.done:
	case <-tctx.Done():
		if c.state.CompareAndSwap(running, abandoned) {
			rg.abandoned.Add(1)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w after %v: %w", policy.ErrTimeout, timeout, tctx.Err())
		}
		<-c.done // it has just finished
	}
	if c.err != nil && ctx.Err() == nil && tctx.Err() != nil {
		return nil, fmt.Errorf("%w after %v: %w", policy.ErrTimeout, timeout, c.err)
	}
	return c.out, c.err
}

// serveFunc answers from the heuristic or the default, recovering panics.
func (rg *rung) serveFunc(ctx context.Context, inputs []tensor.Tensor) (a Answer, err error) {
	defer func() {
		if v := recover(); v != nil {
			a, err = Answer{Attempts: 1}, &PanicError{Tier: rg.name, Value: v, Stack: debug.Stack()}
		}
	}()
	out, err := rg.model.Predict(ctx, inputs)
	if err == nil {
		err = rg.router.validate(rg.name, out)
	}
	if err != nil {
		if (errors.Is(err, tensor.ErrInvalidInput) && rg.router.inputs == nil) || ctx.Err() != nil {
			return Answer{Attempts: 1}, err
		}
		// A failing heuristic is the heuristic's fault, whatever it returned.
		return Answer{Attempts: 1}, policy.Permanent(err)
	}
	return Answer{Outputs: out, Attempts: 1}, nil
}

func (r *Router) serveCache(key string, stale time.Duration, rg *rung) (a Answer, err error) {
	defer func() {
		if v := recover(); v != nil {
			a, err = Answer{}, &PanicError{Tier: rg.name, Hook: "Cache.Get", Value: v, Stack: debug.Stack()}
		}
	}()
	if key == "" {
		return Answer{}, ErrNotCached
	}
	e, ok := r.store.Get(key)
	if !ok {
		return Answer{}, ErrNotCached
	}
	age := r.now().Sub(e.Stored)
	if age > stale {
		if r.events.active() {
			r.emit(Event{Kind: CacheStale, Tier: rg.name, Position: rg.pos, Age: age})
		}
		return Answer{}, &StaleError{Age: age, Max: stale}
	}
	if err := r.validate(rg.name, e.Outputs); err != nil {
		return Answer{}, err
	}
	return Answer{Outputs: e.Outputs, Version: e.Version, Origin: e.Tier, Age: age}, nil
}

// validate is the one check every answer of every rung passes before it
// is served: at least one output, the ladder's output contract, finite
// values, and the user's Check.
func (r *Router) validate(tier string, out []tensor.Tensor) error {
	if len(out) == 0 {
		return &OutputError{Tier: tier, Problem: "no outputs"}
	}
	if r.outputs != nil {
		if len(out) != len(r.outputs) {
			return &OutputError{Tier: tier, Problem: fmt.Sprintf("%d outputs, expected %d", len(out), len(r.outputs))}
		}
		for i, info := range r.outputs {
			if err := checkShape(tier, out[i], info); err != nil {
				return err
			}
		}
	}
	for _, t := range out {
		if i := tensor.FirstNonFinite(t); i >= 0 {
			return &OutputError{Tier: tier, Output: t.Name, Problem: fmt.Sprintf("NaN or Inf at element %d", i)}
		}
	}
	if r.check != nil {
		return r.safeCheck(tier, out)
	}
	return nil
}

// safeCheck runs the user's Check. A panic is reported and does not
// refuse the answer: a broken hook never changes which answer is served.
func (r *Router) safeCheck(tier string, out []tensor.Tensor) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = nil
			r.hookPanicked("Check", tier, v)
		}
	}()
	if err := r.check(out); err != nil {
		return &OutputError{Tier: tier, Problem: err.Error()}
	}
	return nil
}

func checkShape(tier string, t tensor.Tensor, info tensor.Info) error {
	bad := func(problem string) error { return &OutputError{Tier: tier, Output: info.Name, Problem: problem} }
	if t.Name != info.Name || t.DType() != info.DType {
		return bad(fmt.Sprintf("got %s %s, expected %s", t.Name, t.DType(), info))
	}
	if len(t.Shape) != len(info.Shape) {
		return bad(fmt.Sprintf("shape %v, expected %s", t.Shape, info))
	}
	n := int64(1)
	for d, size := range t.Shape {
		if size < 0 || (info.Shape[d] >= 0 && size != info.Shape[d]) {
			return bad(fmt.Sprintf("shape %v, expected %s", t.Shape, info))
		}
		n *= size
	}
	if int64(t.Len()) != n {
		return bad(fmt.Sprintf("%d elements for shape %v", t.Len(), t.Shape))
	}
	return nil
}

// TierHealth is a model tier's health: its breaker's state, since when,
// and the calls the router stopped waiting for that are still running.
type TierHealth struct {
	policy.Status
	// Abandoned is the number of calls to a Model without
	// [TimeoutPredictor] that outlived their timeout and still run.
	Abandoned int64
}

// String reads like "open since 12:00:00.000, retry after 12:00:01.000".
func (h TierHealth) String() string {
	s := h.Status.String()
	if h.Abandoned > 0 {
		s += fmt.Sprintf(", %d abandoned calls running", h.Abandoned)
	}
	return s
}

// Health returns the health of every model tier, by name. A breaker whose
// OpenFor has passed is reported half-open, as the next request finds it,
// not open until traffic happens to probe it.
func (r *Router) Health() map[string]TierHealth {
	h := map[string]TierHealth{}
	for _, rg := range r.rungs {
		if rg.policy != nil {
			h[rg.name] = TierHealth{Status: rg.policy.Status(), Abandoned: rg.abandoned.Load()}
		}
	}
	return h
}

// Rungs returns the names of the rungs in order.
func (r *Router) Rungs() []string {
	names := make([]string, len(r.rungs))
	for i, rg := range r.rungs {
		names[i] = rg.name
	}
	return names
}

// Warmup calls Warmup on every tier's model that is a [Warmer], and
// returns their errors joined.
func (r *Router) Warmup(ctx context.Context) error {
	var errs []error
	for _, rg := range r.rungs {
		if w, ok := rg.model.(Warmer); ok && rg.kind == KindModel {
			if err := w.Warmup(ctx); err != nil {
				errs = append(errs, fmt.Errorf("router: warming up %s: %w", rg.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Close stops what the router started: the default cache and its sweeper.
// Later calls to Predict return [ErrClosed]. It does not close the tiers'
// models, which belong to the caller: close them after the router. Close
// is idempotent.
func (r *Router) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	if r.owned != nil {
		return r.owned.Close()
	}
	return nil
}
