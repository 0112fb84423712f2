package router

import (
	"context"
	"errors"
	"fmt"
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

// timeoutPredictor is a Model that bounds a run itself and stops the work
// when the timeout passes, more cheaply than a context per attempt.
// models.Model implements it, and reports a run ended by its timeout
// with an error matching context.DeadlineExceeded.
type timeoutPredictor interface {
	PredictTimeout(ctx context.Context, timeout time.Duration, inputs []tensor.Tensor) ([]tensor.Tensor, error)
}

// LastGood is the store of last-good answers the cache rung reads and model
// tiers write. [*cache.Store] implements it.
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
	// Version labels the tier's answers. The default is the model's own
	// Version() when it has one.
	Version string
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

// Config describes a ladder. Only Tiers, or a Heuristic or Default, is
// required; every other zero value means the documented default.
type Config struct {
	// Tiers are the model tiers, best first.
	Tiers []Tier

	// Heuristic, when set, answers when the tiers and the cache cannot.
	Heuristic HeuristicFunc

	// Default, when set, is the static answer of last resort.
	Default []tensor.Tensor

	// Order is the order of the rungs, by name: tier names, RungCache,
	// RungHeuristic and RungDefault. The default is every tier in order,
	// then the cache, the heuristic (if set) and the default (if set).
	// Leaving RungCache out disables the cache.
	Order []string

	// Cache holds last-good answers. The default is a [cache.Store] built
	// from CacheConfig, owned and closed by the router.
	Cache LastGood
	// CacheConfig configures the default cache.
	CacheConfig cache.Config
	// Key maps inputs to a cache key, e.g. an entity ID. The default,
	// [cache.Key], hashes the input tensors.
	Key func(inputs []tensor.Tensor) string
	// MaxStaleness is the oldest cached answer served when a request does
	// not say; the default accepts anything still in the cache.
	MaxStaleness time.Duration

	// Check validates every answer before it is served, e.g. that a
	// probability lies in [0, 1]. NaN and ±Inf are always rejected, and a
	// model's outputs are checked against its signature when it has one.
	Check func(outputs []tensor.Tensor) error

	// OnEvent, when set, is called synchronously for every [Event]. Keep
	// it fast: it runs on the request path.
	OnEvent func(Event)
	// Logger, when set, logs events: switches and breaker changes at
	// Warn, falls at Info, the rest at Debug.
	Logger *slog.Logger

	// Now is the clock. The default is time.Now.
	Now func() time.Time
}

// Router routes each prediction down a ladder of rungs and returns the
// best answer available now. It is safe for concurrent use; the request
// path takes no lock of its own.
type Router struct {
	rungs  []*rung
	key    func([]tensor.Tensor) string
	store  LastGood
	offer  offerer      // store, when it can take writes without waiting
	owned  *cache.Store // the default cache, closed by Close
	check  func([]tensor.Tensor) error
	stale  time.Duration
	now    func() time.Time
	events emitter

	serving atomic.Int32 // position of the rung that served last
	closed  atomic.Bool
}

// rung is one step of the ladder, immutable after New.
type rung struct {
	name    string
	pos     int
	kind    Kind
	model   Model
	timed   timeoutPredictor // model, when it can bound its own runs
	version string
	timeout time.Duration // the tier's per-attempt timeout
	policy  *policy.Tier
	outputs []tensor.Info  // expected outputs, when the model has a signature
	attempt policy.Attempt // bound once, so Do allocates nothing
	router  *Router
}

// New builds a router from cfg. It returns an error matching
// [ErrInvalidConfig] (or policy.ErrInvalidConfig, cache.ErrInvalidConfig)
// that names the bad setting.
func New(cfg Config) (*Router, error) {
	r := &Router{
		key:    cfg.Key,
		check:  cfg.Check,
		stale:  cfg.MaxStaleness,
		now:    cfg.Now,
		events: emitter{listen: cfg.OnEvent, log: cfg.Logger},
	}
	if r.key == nil {
		r.key = cache.Key
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.stale <= 0 {
		r.stale = math.MaxInt64
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
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
		rg := &rung{name: t.Name, kind: KindModel, model: t.Model, version: t.Version, router: r}
		rg.timed, _ = t.Model.(timeoutPredictor)
		if v, ok := t.Model.(interface{ Version() string }); ok && rg.version == "" {
			rg.version = v.Version()
		}
		if s, ok := t.Model.(interface{ Signature() tensor.Signature }); ok {
			rg.outputs = s.Signature().Outputs
		}
		name := t.Name
		p, err := policy.New(t.Policy, runtime.GOMAXPROCS(0), func(c policy.StateChange) {
			r.emit(Event{Kind: BreakerChanged, Tier: name, Position: byName[name].pos, From: c.From, To: c.To})
		})
		if err != nil {
			return nil, fmt.Errorf("router: tier %q: %w", t.Name, err)
		}
		rg.policy = p
		rg.timeout = p.Config().Timeout
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

	if slices.Contains(order, RungCache) {
		r.store = cfg.Cache
		if r.store == nil {
			s, err := cache.New(cfg.CacheConfig)
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

// Option sets a per-request limit on [Router.Predict].
type Option func(*request)

type request struct {
	stale  time.Duration
	lowest string
}

// MaxStaleness sets the oldest cached answer this request accepts. Zero
// means never serve a cached answer: fail rather than answer stale.
func MaxStaleness(d time.Duration) Option {
	return func(r *request) { r.stale = d }
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
//   - the input is invalid: an error matching [tensor.ErrInvalidInput],
//     returned at once without retries or fallback;
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

	var (
		falls []Fall
		key   string
		keyed bool
	)
	cacheKey := func() string {
		if !keyed {
			key, keyed = r.key(inputs), true
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
			ans.Outputs, ans.Attempts, err = rg.policy.Do(ctx, inputs, rg.attempt)
			ans.Version = rg.version
		case KindCache:
			ans, err = r.serveCache(cacheKey(), stale, rg)
		default:
			ans, err = rg.serveFunc(ctx, inputs)
		}
		if err == nil {
			end := r.now()
			if rg.kind == KindModel && r.store != nil {
				// Only validated model answers become last-good answers.
				e := cache.Entry{Outputs: ans.Outputs, Tier: rg.name, Version: rg.version, Stored: end}
				if r.offer != nil {
					r.offer.Offer(cacheKey(), e)
				} else {
					r.store.Put(cacheKey(), e)
				}
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
			return Answer{}, err
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

// try is one attempt at a model tier: bounded by the tier's timeout, with
// panics recovered and outputs validated.
func (rg *rung) try(ctx context.Context, inputs []tensor.Tensor) (out []tensor.Tensor, err error) {
	defer func() {
		if v := recover(); v != nil {
			// A panic is not retried on the same tier.
			out, err = nil, policy.Permanent(&PanicError{Tier: rg.name, Value: v, Stack: debug.Stack()})
		}
	}()
	timeout := rg.timeout
	if rg.timed != nil {
		out, err = rg.timed.PredictTimeout(ctx, timeout, inputs)
		// A run that ended on its own timeout reports a deadline while the
		// caller's ctx is still live.
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", policy.ErrTimeout, err)
		}
	} else {
		tctx, cancel := context.WithTimeout(ctx, timeout)
		out, err = rg.model.Predict(tctx, inputs)
		if err != nil && ctx.Err() == nil && tctx.Err() != nil {
			err = fmt.Errorf("%w after %v: %w", policy.ErrTimeout, timeout, err)
		}
		cancel()
	}
	if err != nil {
		return nil, err
	}
	if err := rg.validate(out); err != nil {
		// The same input would give the same bad output: not retried.
		return nil, policy.Permanent(err)
	}
	return out, nil
}

// serveFunc answers from the heuristic or the default, recovering panics.
func (rg *rung) serveFunc(ctx context.Context, inputs []tensor.Tensor) (a Answer, err error) {
	defer func() {
		if v := recover(); v != nil {
			a, err = Answer{}, &PanicError{Tier: rg.name, Value: v, Stack: debug.Stack()}
		}
	}()
	out, err := rg.model.Predict(ctx, inputs)
	if err == nil {
		err = rg.validate(out)
	}
	if err != nil {
		if errors.Is(err, tensor.ErrInvalidInput) || ctx.Err() != nil {
			return Answer{Attempts: 1}, err
		}
		// A failing heuristic is the heuristic's fault, whatever it returned.
		return Answer{Attempts: 1}, policy.Permanent(err)
	}
	return Answer{Outputs: out, Attempts: 1}, nil
}

func (r *Router) serveCache(key string, stale time.Duration, rg *rung) (Answer, error) {
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
	return Answer{Outputs: e.Outputs, Version: e.Version, Origin: e.Tier, Age: age}, nil
}

// validate rejects outputs holding NaN or ±Inf, outputs that do not match
// the model's signature, and outputs the user's Check refuses.
func (rg *rung) validate(out []tensor.Tensor) error {
	if rg.outputs != nil {
		if len(out) != len(rg.outputs) {
			return &OutputError{Tier: rg.name, Problem: fmt.Sprintf("%d outputs, expected %d", len(out), len(rg.outputs))}
		}
		for i, info := range rg.outputs {
			if err := rg.checkShape(out[i], info); err != nil {
				return err
			}
		}
	}
	for _, t := range out {
		if i := firstNonFinite(t.Data); i >= 0 {
			return &OutputError{Tier: rg.name, Output: t.Name, Problem: fmt.Sprintf("NaN or Inf at element %d", i)}
		}
	}
	if check := rg.router.check; check != nil {
		if err := check(out); err != nil {
			return &OutputError{Tier: rg.name, Problem: err.Error()}
		}
	}
	return nil
}

func (rg *rung) checkShape(t tensor.Tensor, info tensor.Info) error {
	bad := func(problem string) error { return &OutputError{Tier: rg.name, Output: info.Name, Problem: problem} }
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

func firstNonFinite(data any) int {
	switch d := data.(type) {
	case []float32:
		for i, v := range d {
			if v != v || v > math.MaxFloat32 || v < -math.MaxFloat32 {
				return i
			}
		}
	case []float64:
		for i, v := range d {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return i
			}
		}
	}
	return -1
}

// Health returns the breaker state of every model tier, by name: "closed",
// "open" or "half-open".
func (r *Router) Health() map[string]string {
	h := map[string]string{}
	for _, rg := range r.rungs {
		if rg.policy != nil {
			h[rg.name] = rg.policy.State()
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
