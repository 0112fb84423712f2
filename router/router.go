package router

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/internal/mono"
	"github.com/ladder-ml/ladder/policy"
	"github.com/ladder-ml/ladder/tensor"
	"golang.org/x/sync/errgroup"
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

// Tier is one model rung of the ladder.
type Tier struct {
	// Name labels the tier in answers, errors and events. Required and
	// unique among the ladder's rungs; "cache", "heuristic" and "default"
	// name the built-in rungs.
	Name string
	// Model answers for the tier. Required, unless a manager in Manage
	// loads it.
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

	// Required makes [Router.Ready] false while the tier cannot serve.
	Required bool

	// Manage are the tier's managers: reloads of new versions (package
	// reload), health probes (package probe), and the like, each driving
	// the tier through a [Handle]. With a manager that loads the tier's
	// first version, Model may be nil: the tier is Loading, skipped
	// without an attempt, until a version is swapped in.
	Manage []Manager

	v *version // the model's version; set by New and by reloads
}

// Names of the rungs the router builds from [Config].Cache, Heuristic and
// Default, for [Config.Order] and [LowestTier].
const (
	RungCache     = "cache"
	RungHeuristic = "heuristic"
	RungDefault   = "default"
)

// AnyAge is the staleness that accepts every cached answer still in the
// cache, except one stored further in the future than [MaxClockSkew],
// whose age is unknown: the default of [Config.MaxStaleness].
const AnyAge time.Duration = math.MaxInt64

// defaultReserve is the default of [Config.Reserve].
const defaultReserve = 0.2

// Config describes a ladder. Only Tiers, or a Heuristic or Default, is
// required; every other zero value means the documented default.
type Config struct {
	// Tiers are the model tiers, best first.
	Tiers []Tier

	// Heuristic, when set, is the rule-based rung: a plain function of the
	// input, such as a few rules or a base rate, that answers when the
	// tiers and the cache cannot. Its answers are validated like a
	// model's but never cached.
	Heuristic ModelFunc

	// Default, when set, is the static answer of last resort. New checks
	// it like any answer and refuses one that would never be served.
	Default []tensor.Tensor

	// Rungs are rungs of kinds the router does not build itself, such as
	// an ensemble or a hedged pair ([Rung]). Each is placed by its Name,
	// which must be unique among the ladder's rungs.
	Rungs []Rung

	// Order is the order of the rungs, by name: tier names, the Rungs'
	// names, RungCache, RungHeuristic and RungDefault. The default is every
	// tier in order, then the Rungs in order, the cache, the heuristic (if
	// set) and the default (if set). Leaving RungCache out disables the
	// cache.
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
	// configure the store, or to use one behind a network, build it (with
	// [cache.New] for the in-process one) and set it here; the caller then
	// closes it after the router.
	Cache LastGood
	// StoreTimeout bounds each Get and Put of a Cache other than a
	// [*cache.Store], which never blocks: a Get that runs past it, or past
	// the request's deadline budget ([Config].Reserve), makes the cache
	// rung fall. Zero means 20ms; negative is an
	// error.
	StoreTimeout time.Duration
	// Key maps inputs to a cache key, e.g. an entity ID. The default,
	// [cache.Key], hashes the input tensors. A Key that panics is
	// reported, and that request is not cached.
	Key func(inputs []tensor.Tensor) string
	// MaxStaleness is the oldest cached answer served when a request does
	// not say with the [MaxStaleness] call option, which takes the same
	// values: zero means [AnyAge], any answer still in the cache whose age
	// is known ([MaxClockSkew]); negative means no cached answer.
	MaxStaleness time.Duration

	// Reserve is the fraction of the caller's remaining time, when ctx
	// has a deadline, that a model tier's attempt leaves to the rungs
	// below it: an attempt gets the smaller of its Timeout and the
	// remaining time × (1 − Reserve), so a lower rung still answers in
	// time. An attempt cut short this way is the tier's timeout. The last
	// rung keeps no reserve. Zero means 0.2; a negative
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

	// Clock is the time the router reads: request latencies and cached
	// answers' ages, the tiers' breakers and poison windows, probes,
	// reloads, rollback windows and watches, and the default cache's TTL.
	// Nil means [clock.Real]. A store set as Cache has a clock of its own
	// ([cache.Config].Clock): give it the same one.
	Clock clock.Clock

	// OnDone, when set, is called after every attempt at a model tier,
	// with its verdict ([policy.Done]): the seam through which outlier
	// ejection, hedging or a metrics adapter follows each attempt. It runs
	// on the request path, under no lock; keep it fast. A panic in it is
	// recovered and reported as a [HookPanicked] event.
	OnDone func(policy.Done)
}

// Router routes each prediction down a ladder of rungs and returns the
// best answer available now. It is safe for concurrent use; the request
// path takes no lock: it reads the ladder from an immutable snapshot.
type Router struct {
	ladder atomic.Pointer[ladder] // the ladder requests use now

	swap  sync.Mutex   // guards cfg, gen and owned; never held while user code runs
	cfg   Config       // what the current ladder was built from
	gen   uint64       // counts the ladders published since New
	owned *cache.Store // the default store, made by New, closed by Close

	events emitter
	seed   maphash.Seed
	clock  clock.Clock       // Config.Clock; nil for the real clock
	onDone func(policy.Done) // Config.OnDone

	serving    atomic.Pointer[string] // name of the rung that served last
	storeCalls atomic.Int64           // store calls it stopped waiting for, still running
	closed     atomic.Bool

	healths map[string]*tierHealth // by tier name; the map is never changed after New
	notes   map[string]*rungNote   // by name, for the other rungs; made by the first build

	life       sync.Mutex     // orders begin against Close
	bg         sync.WaitGroup // probes, loads, reloads, watches and drains
	stop       chan struct{}  // closed by Close
	stopCtx    context.Context
	stopCancel context.CancelFunc
	closeErrs  errList // from closing drained models
}

// New builds a router from cfg. It returns an error matching
// [ErrInvalidConfig] (or policy.ErrInvalidConfig, cache.ErrInvalidConfig)
// that names the bad setting.
//
// New starts every tier's managers ([Tier].Manage) and returns the first
// error of their Start. A manager that loads a tier's first version in
// the background leaves New free to return: the router answers from the
// other rungs meanwhile.
func New(cfg Config) (*Router, error) {
	r := &Router{
		events:  emitter{listen: cfg.OnEvent, log: cfg.Logger},
		seed:    maphash.MakeSeed(),
		onDone:  cfg.OnDone,
		healths: map[string]*tierHealth{},
		notes:   map[string]*rungNote{},
		stop:    make(chan struct{}),
	}
	if !clock.IsReal(cfg.Clock) {
		r.clock = cfg.Clock
	}
	r.stopCtx, r.stopCancel = context.WithCancel(context.Background())
	cfg.Tiers, cfg.Rungs, cfg.Order = slices.Clone(cfg.Tiers), slices.Clone(cfg.Rungs), slices.Clone(cfg.Order)
	for i, t := range cfg.Tiers {
		h := newTierHealth(t.Name, t.Required)
		cfg.Tiers[i].v = nil // build makes the version of a caller's model
		cfg.Tiers[i].Manage = slices.Clone(t.Manage)
		if isNil(t.Model) && len(t.Manage) > 0 {
			cfg.Tiers[i].Model = unloaded{name: t.Name}
			cfg.Tiers[i].v = newVersion(cfg.Tiers[i].Model, "", "", false)
			h.loading = true
			h.setDownLocked()
		}
		if r.healths[t.Name] == nil {
			r.healths[t.Name] = h
		}
	}
	l, err := r.build(cfg, nil)
	if err != nil {
		r.stopCancel()
		return nil, err
	}
	if l.ownStore {
		if r.owned, err = cache.New(cache.Config{Clock: r.clock}); err != nil {
			return nil, fmt.Errorf("router: %w", err)
		}
		l.useStore(r.owned)
	}
	r.cfg = cfg
	r.ladder.Store(l)
	if err := r.startManagers(cfg.Tiers); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// startManagers starts every tier's managers concurrently, and returns
// the first error; that error's ctx ends the others' Start.
func (r *Router) startManagers(tiers []Tier) error {
	g, ctx := errgroup.WithContext(r.stopCtx)
	for _, t := range tiers {
		h := &Handle{r: r, name: t.Name, hs: r.healths[t.Name]}
		for i, m := range t.Manage {
			if isNil(m) {
				return fmt.Errorf("%w: tier %q: Manage[%d] is nil", ErrInvalidConfig, t.Name, i)
			}
			g.Go(func() (err error) {
				defer func() {
					if v := recover(); v != nil {
						err = &PanicError{Tier: t.Name, Hook: "Manager", Value: v, Stack: debug.Stack()}
					}
				}()
				return m.Start(ctx, h)
			})
		}
	}
	return g.Wait()
}

// now reads the router's clock.
func (r *Router) now() time.Time { return clock.Or(r.clock).Now() }

func cloneInfos(in []tensor.Info) []tensor.Info {
	if in == nil {
		return nil
	}
	return tensor.Signature{Inputs: in}.Clone().Inputs
}

func sameInfos(a, b []tensor.Info) bool {
	return slices.EqualFunc(a, b, func(x, y tensor.Info) bool {
		return x.Name == y.Name && x.DType == y.DType && x.AnyRank == y.AnyRank && slices.Equal(x.Shape, y.Shape)
	})
}

func infosString(infos []tensor.Info) string {
	s := make([]string, len(infos))
	for i, in := range infos {
		s[i] = in.String()
	}
	return "(" + strings.Join(s, ", ") + ")"
}

// CallOption sets a limit or a value of one call of [Router.Predict],
// apart from the options of the ladder itself ([Config]).
type CallOption func(*call)

type call struct {
	stale  time.Duration
	lowest string
	values []callValue
}

type callValue struct{ key, value any }

// MaxStaleness sets the oldest cached answer this call accepts, taking
// the same values as [Config.MaxStaleness]: a positive bound; zero for
// [AnyAge]; negative for no cached answer (fail rather than answer
// stale).
func MaxStaleness(d time.Duration) CallOption {
	return func(c *call) { c.stale = staleness(d) }
}

// staleness turns a MaxStaleness setting into the bound a request
// carries, where zero or less accepts no cached answer.
func staleness(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return AnyAge
	case d < 0:
		return 0
	}
	return d
}

// LowestTier sets the lowest rung this call accepts, by name: rungs below
// it are not tried, and the call fails with a [*NoAnswerError] instead.
// For "models only", name the last model tier.
func LowestTier(name string) CallOption {
	return func(c *call) { c.lowest = name }
}

// CallValue attaches value to the call under key, for a [Rung] to read
// with [Request.Value]: the way a package outside router adds a value of
// its own to a call, such as a stream's identity. Like a context key,
// key should be of a type of that package's own; a nil or incomparable
// key makes Predict fail with an error saying so.
func CallValue(key, value any) CallOption {
	return func(c *call) { c.values = append(c.values, callValue{key, value}) }
}

func (l *ladder) options(opts []CallOption) (c call, lowest int, err error) {
	c.stale = l.stale
	for _, o := range opts {
		o(&c)
	}
	for _, v := range c.values {
		if v.key == nil || !reflect.TypeOf(v.key).Comparable() {
			return c, 0, fmt.Errorf("router: CallValue key %#v is not comparable; expected a comparable key, such as a value of a struct type of the package's own", v.key)
		}
	}
	lowest = len(l.rungs) - 1
	if c.lowest != "" {
		if lowest = l.position(c.lowest); lowest < 0 {
			return c, 0, fmt.Errorf("router: LowestTier(%q): no such rung; expected one of %s", c.lowest, strings.Join(l.names(), ", "))
		}
	}
	return c, lowest, nil
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
func (r *Router) Predict(ctx context.Context, inputs []tensor.Tensor, opts ...CallOption) (Answer, error) {
	if r.closed.Load() {
		return Answer{}, ErrClosed
	}
	l := r.ladder.Load() // one snapshot for the whole request
	// The request reads the clock when it starts and when it ends, and in
	// between only after a rung that may have taken time: a model tier
	// that ran an attempt, or any other rung. A tier skipped without an
	// attempt (an open breaker) reuses the last reading.
	var startNS int64 // read inline on the real clock: twice a request
	if l.real {
		startNS = mono.Now()
	} else {
		startNS = l.clk.Now()
	}
	nowNS := startNS // the latest reading
	stale, lowest := l.stale, len(l.rungs)-1
	var values []callValue
	if len(opts) > 0 {
		c, low, err := l.options(opts)
		if err != nil {
			return Answer{}, err
		}
		stale, lowest, values = c.stale, low, c.values
	}
	if l.inputs != nil {
		var buf [4]tensor.Tensor // on the stack for up to four inputs
		var ordered []tensor.Tensor
		if n := len(l.inputs); n <= len(buf) {
			ordered = buf[:n]
		} else {
			ordered = make([]tensor.Tensor, n)
		}
		if err := tensor.CheckInputs("ladder", l.inputs, inputs, ordered); err != nil {
			return Answer{}, err
		}
	}

	var falls []Fall
	req := Request{Inputs: inputs, MaxStaleness: stale, l: l, values: values}
	last := len(l.rungs) - 1
	for pos := range l.rungs {
		p := &l.rungs[pos]
		if err := ctx.Err(); err != nil {
			return Answer{}, err
		}
		if pos > lowest {
			falls = append(falls, Fall{Tier: p.name, Position: pos, Outcome: NotAccepted, Err: ErrNotAccepted})
			continue
		}
		if p.needsKey && !req.keyed && stale > 0 {
			req.key, req.keyed = l.safeKey(inputs), true
		}
		req.rung, req.below, req.at = p.name, pos < last, nowNS
		var (
			ans Answer
			o   policy.Outcome
			err error
		)
		switch {
		case p.tier != nil:
			ans, o, err = p.tier.serve(ctx, req)
		case p.builtin:
			ans, err = p.rung.Serve(ctx, req)
		default:
			ans, err = l.serveCustom(ctx, p, req)
		}
		if err == nil {
			var endNS int64
			if l.real {
				endNS = mono.Now()
			} else {
				endNS = l.clk.Now()
			}
			if p.hs != nil {
				p.hs.succeeded(l.unix(endNS), p.v)
			} else {
				stamp(&p.note.lastOK, l.unix(endNS))
			}
			if p.kind == KindModel && l.store != nil {
				// Only validated model answers become last-good answers.
				if !req.keyed {
					req.key, req.keyed = l.safeKey(inputs), true
				}
				if req.key != "" {
					l.remember(ctx, req.key, cache.Entry{Outputs: ans.Outputs, Tier: p.name, Version: ans.Version, Stored: l.clk.Time(endNS)})
				}
			}
			ans.Tier, ans.Position, ans.Kind = p.name, pos, p.kind
			ans.Degraded = pos > 0
			ans.Fell = falls
			ans.Latency = time.Duration(endNS - startNS)
			r.served(&ans, &p.name)
			return ans, nil
		}
		if o == "" {
			o = policy.Judge(ctx, err)
		}
		switch o {
		case NotAccepted:
			falls = append(falls, Fall{Tier: p.name, Position: pos, Outcome: o, Err: err})
			continue
		case policy.InvalidInput:
			if l.inputs == nil {
				// No contract to judge by: the tier's word is taken.
				return Answer{}, err
			}
		case policy.Canceled:
			return Answer{}, ctx.Err()
		}
		if falls == nil {
			// Room for the usual one or two falls in one allocation.
			falls = make([]Fall, 0, min(2, len(l.rungs)-pos))
		}
		falls = append(falls, Fall{Tier: p.name, Position: pos, Attempts: ans.Attempts, Outcome: o, Err: err})
		if p.kind != KindModel || ans.Attempts > 0 {
			nowNS = l.now()
		}
		if p.hs != nil {
			p.hs.fell(o, err, l.unix(nowNS), p.v)
		} else {
			p.note.fell(o, err, l.unix(nowNS))
		}
		if r.events.active() {
			r.emit(Event{Kind: Fell, Tier: p.name, Position: pos, Outcome: o, Err: err})
		}
	}
	if err := ctx.Err(); err != nil {
		return Answer{}, err // it ended as the last rungs were skipped
	}
	return Answer{}, &NoAnswerError{Falls: falls}
}

// served notes which rung served, reporting a switch by name, so that a
// new ladder with the same rungs is no switch.
func (r *Router) served(a *Answer, name *string) {
	if prev := r.serving.Load(); prev != name && r.serving.CompareAndSwap(prev, name) && prev != nil && *prev != *name {
		r.emit(Event{Kind: Switched, Tier: a.Tier, Position: a.Position, From: *prev, To: a.Tier})
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

// position returns the position of the named rung in the current ladder,
// or -1.
func (r *Router) position(name string) int {
	if l := r.ladder.Load(); l != nil {
		return l.position(name)
	}
	return -1
}

// done reports an attempt to [Config].OnDone, recovering its panic.
func (r *Router) done(d policy.Done) {
	defer func() {
		if v := recover(); v != nil {
			r.hookPanicked("OnDone", d.Member, v)
		}
	}()
	r.onDone(d)
}

// safeKey returns the cache key of inputs, or "" (not cached) when Key
// panics.
func (l *ladder) safeKey(inputs []tensor.Tensor) (key string) {
	defer func() {
		if v := recover(); v != nil {
			key = ""
			l.r.hookPanicked("Key", "", v)
		}
	}()
	return l.key(inputs)
}

// Rungs returns the names of the rungs in order.
func (r *Router) Rungs() []string { return r.ladder.Load().names() }

// Warmup calls Warmup on every tier's model that is a [Warmer], and on
// every rung of [Config].Rungs that is one, and returns their errors
// joined.
func (r *Router) Warmup(ctx context.Context) error {
	var errs []error
	for _, p := range r.ladder.Load().rungs {
		var w Warmer
		switch rg := p.rung.(type) {
		case *tierRung:
			w, _ = rg.model.(Warmer)
		case *cacheRung, *funcRung:
		default:
			w, _ = rg.(Warmer)
		}
		if w != nil {
			if err := warm(ctx, p.name, w); err != nil {
				errs = append(errs, fmt.Errorf("router: warming up %s: %w", p.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Close stops the managers' work ([Handle.Go], [Handle.Run]) and waits
// for it, then closes the models the router owns (those of
// [Handle.Prepare]) once every call on them has returned, and the default
// cache. Later calls to Predict return [ErrClosed]. The models given in
// [Tier].Model are the caller's: close them after the router. A call the
// router stopped waiting for (a Model that ignores ctx, past its timeout)
// is left running, and closes its model when it returns. Close is
// idempotent; it returns the errors of closing joined.
func (r *Router) Close() error {
	r.life.Lock()
	if r.closed.Swap(true) {
		r.life.Unlock()
		return nil
	}
	r.life.Unlock()
	close(r.stop)
	r.stopCancel()
	r.bg.Wait()
	// Nothing swaps ladders any more: drain and close the current models.
	// Each is closed once: a version released too is closed by whichever
	// comes first.
	for _, t := range r.ladder.Load().byTier {
		if !t.v.owned || !t.v.released.CompareAndSwap(false, true) {
			continue // the caller's, closed by the caller, or released already
		}
		r.bg.Add(1)
		go func() {
			defer r.bg.Done()
			_ = t.v.retire(context.Background())
			if err := t.v.close(); err != nil {
				r.closeErrs.add(err)
			}
		}()
	}
	r.bg.Wait()
	errs := r.closeErrs.all()
	r.swap.Lock()
	defer r.swap.Unlock()
	if r.owned != nil {
		errs = append(errs, r.owned.Close())
	}
	return errors.Join(errs...)
}

// warm runs one Warmer, recovering its panic into a [*PanicError].
func warm(ctx context.Context, rung string, w Warmer) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Tier: rung, Value: v, Stack: debug.Stack()}
		}
	}()
	return w.Warmup(ctx)
}
