package router

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/internal/mono"
	"github.com/ladder-ml/ladder/tensor"
)

// ladder is one immutable snapshot of the rungs and everything a request
// reads, built from a Config. A request loads the current ladder once and
// runs on it to the end, so replacing the ladder (a tier's model, say)
// takes no lock on the request path and never changes a request midway.
// What must outlive a ladder, a tier's breaker and counters, lives in
// tierState, carried over by tier name.
type ladder struct {
	r     *Router
	rungs []placed

	inputs  []tensor.Info // the input contract; nil when there is none
	outputs []tensor.Info // the output contract; nil when there is none

	key          func([]tensor.Tensor) string
	store        LastGood // nil when the ladder has no cache
	ownStore     bool     // the store is the router's own
	offer        Offerer  // store, when it can take writes without waiting
	inproc       bool     // store is a *cache.Store, which never blocks
	storeTimeout time.Duration

	check   func([]tensor.Tensor) error
	stale   time.Duration
	reserve float64
	clk     mono.Reader // the router's clock
	real    bool        // clk is the real clock, read on the request path without a call

	tiers  map[string]*tierState // by name
	byTier map[string]*tierRung  // by name
}

// now reads the ladder's clock. The real clock's reading is inlined: the
// request path reads it twice a request.
func (l *ladder) now() int64 {
	if l.real {
		return mono.Now()
	}
	return l.clk.Now()
}

// unix is the reading ns in Unix nanoseconds.
func (l *ladder) unix(ns int64) int64 {
	if l.real {
		return mono.Unix(ns)
	}
	return ns
}

// position returns the position of the named rung, or -1.
func (l *ladder) position(name string) int {
	for i := range l.rungs {
		if l.rungs[i].name == name {
			return i
		}
	}
	return -1
}

// names returns the names of the rungs in order.
func (l *ladder) names() []string {
	names := make([]string, len(l.rungs))
	for i, p := range l.rungs {
		names[i] = p.name
	}
	return names
}

// build makes a ladder from cfg. Tiers named as in old, with the same
// Policy, carry old's state over. It calls the user's code (a model's
// Signature and Version, a rung's Name and Kind, Check on the Default), so
// it runs under no lock. A ladder whose cache is the router's own store
// comes back with store nil and ownStore set: useStore gives it the store.
func (r *Router) build(cfg Config, old *ladder) (*ladder, error) {
	l := &ladder{
		r:            r,
		key:          cfg.Key,
		check:        cfg.Check,
		stale:        cfg.MaxStaleness,
		reserve:      cfg.Reserve,
		storeTimeout: cfg.StoreTimeout,
		clk:          mono.For(cfg.Clock),
		real:         clock.IsReal(cfg.Clock),
		tiers:        map[string]*tierState{},
		byTier:       map[string]*tierRung{},
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if l.key == nil {
		l.key = cache.Key
	}
	l.stale = staleness(l.stale)
	switch {
	case l.reserve >= 1:
		return nil, bad("Reserve is %v; expected a fraction below 1, 0 for the default %v, or negative for none", l.reserve, defaultReserve)
	case l.reserve == 0:
		l.reserve = defaultReserve
	case l.reserve < 0:
		l.reserve = 0
	}
	switch {
	case l.storeTimeout < 0:
		return nil, bad("StoreTimeout is %v; expected a positive duration, or 0 for the default %v", l.storeTimeout, defaultStoreTimeout)
	case l.storeTimeout == 0:
		l.storeTimeout = defaultStoreTimeout
	}

	l.inputs, l.outputs = cloneInfos(cfg.Inputs), cloneInfos(cfg.Outputs)
	for _, t := range cfg.Tiers {
		if isNil(t.Model) {
			continue
		}
		sig, ok, err := describe(t.Name, t.Model, SignatureOf)
		if err != nil {
			return nil, err
		}
		if ok {
			if l.inputs == nil {
				l.inputs = cloneInfos(sig.Inputs)
			}
			if l.outputs == nil {
				l.outputs = cloneInfos(sig.Outputs)
			}
			break
		}
	}

	reserved := func(name string) bool { return name == RungCache || name == RungHeuristic || name == RungDefault }
	byName := map[string]Rung{}
	tiers := map[string]*tierRung{}
	for i, t := range cfg.Tiers {
		switch {
		case t.Name == "":
			return nil, bad("Tiers[%d] has no Name; expected a unique name such as \"primary\"", i)
		case reserved(t.Name):
			return nil, bad("Tiers[%d] is named %q, which is reserved; expected another name", i, t.Name)
		case byName[t.Name] != nil:
			return nil, bad("two tiers are named %q; expected unique names", t.Name)
		case isNil(t.Model):
			return nil, bad("tier %q has no Model (or a nil %T); expected a loaded model, or a manager in Manage that loads one (package reload)", t.Name, t.Model)
		}
		tr := &tierRung{l: l, model: t.Model, version: t.Version, adapt: t.Inputs}
		tr.timed = boundsItsRuns(t.Model)
		if tr.version == "" {
			v, _, err := describe(t.Name, t.Model, VersionOf)
			if err != nil {
				return nil, err
			}
			tr.version = v
		}
		sig, ok, err := describe(t.Name, t.Model, SignatureOf)
		if err != nil {
			return nil, err
		}
		if ok {
			if l.inputs != nil && t.Inputs == nil && !sameInfos(sig.Inputs, l.inputs) {
				return nil, bad("tier %q takes %s but the ladder's input contract is %s; expected the same inputs, or Tier.Inputs to adapt them",
					t.Name, infosString(sig.Inputs), infosString(l.inputs))
			}
			if l.outputs != nil && !sameInfos(sig.Outputs, l.outputs) {
				return nil, bad("tier %q returns %s but the ladder's output contract is %s; expected the same outputs",
					t.Name, infosString(sig.Outputs), infosString(l.outputs))
			}
		}
		resolved, err := t.Policy.Resolve()
		if err != nil {
			return nil, fmt.Errorf("router: tier %q: %w", t.Name, err)
		}
		var st *tierState
		if old != nil {
			// A version swapped in ([Handle.Swap]) gets a guard of its own,
			// so that a late failure of the calls still running on the
			// previous version never counts against it.
			if prev := old.byTier[t.Name]; prev != nil && (t.v == nil || prev.v == t.v) && prev.guard.Config() == resolved {
				st = prev.tierState
			}
		}
		if st == nil {
			if st, err = r.newTierState(t.Name, t.Policy); err != nil {
				return nil, fmt.Errorf("router: tier %q: %w", t.Name, err)
			}
		}
		tr.tierState = st
		tr.timeout = resolved.Timeout
		tr.attempt = tr.run
		tr.validate = func(out []tensor.Tensor) error { return l.validate(t.Name, out) }
		if t.v == nil {
			t.v = newVersion(t.Model, tr.version, "", false)
			cfg.Tiers[i].v = t.v // kept in the config for the next ladder
		}
		tr.v = t.v
		if tr.hs = r.healths[t.Name]; tr.hs == nil { // a tier added by a new config
			tr.hs = newTierHealth(t.Name, false)
		}
		l.tiers[t.Name] = st
		l.byTier[t.Name] = tr
		byName[t.Name] = tr
		tiers[t.Name] = tr
	}
	custom := make([]string, len(cfg.Rungs)) // their names, asked once
	kinds := map[string]Kind{}
	for i, rg := range cfg.Rungs {
		if rg == nil || isNil(rg) {
			return nil, bad("Rungs[%d] is nil", i)
		}
		name, kind, err := describeRung(rg)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: Rungs[%d]: asking it its Name and Kind: %w", ErrInvalidConfig, i, err)
		case name == "":
			return nil, bad("Rungs[%d] has no Name; expected a unique name", i)
		case reserved(name):
			return nil, bad("Rungs[%d] is named %q, which is reserved; expected another name", i, name)
		case byName[name] != nil:
			return nil, bad("two rungs are named %q; expected unique names", name)
		case kind == "":
			return nil, bad("rung %q has no Kind", name)
		default:
			byName[name], kinds[name], custom[i] = rg, kind, name
		}
	}
	if cfg.Heuristic != nil {
		byName[RungHeuristic] = &funcRung{l: l, name: RungHeuristic, kind: KindHeuristic, fn: cfg.Heuristic}
	}
	if cfg.Default != nil {
		def := tensor.CloneAll(cfg.Default)
		if err := l.validate(RungDefault, def); err != nil {
			return nil, bad("Default would never be served: %v", err)
		}
		byName[RungDefault] = &funcRung{l: l, name: RungDefault, kind: KindDefault,
			fn: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
				return tensor.CloneAll(def), nil
			}}
	}

	order := cfg.Order
	if order == nil {
		for _, t := range cfg.Tiers {
			order = append(order, t.Name)
		}
		order = append(order, custom...)
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
			byName[RungCache] = &cacheRung{l: l}
		}
		rg := byName[name]
		switch {
		case rg == nil:
			return nil, bad("Order names %q, which is neither a tier nor a configured rung; expected one of %s",
				name, strings.Join(slices.Sorted(maps.Keys(byName)), ", "))
		case l.position(name) >= 0:
			return nil, bad("Order names %q twice", name)
		}
		p := placed{rung: rg, name: name, kind: kinds[name]}
		switch rg := rg.(type) {
		case *tierRung:
			p.builtin, p.tier, p.hs, p.v, p.kind = true, rg, rg.hs, rg.v, KindModel
		case *funcRung:
			p.builtin, p.kind = true, rg.kind
		case *cacheRung:
			p.builtin, p.needsKey, p.kind = true, true, KindCache
		}
		if p.tier == nil {
			// New's build makes the notes; a later one, with the same rungs,
			// only reads them.
			if old == nil && r.notes[name] == nil {
				r.notes[name] = new(rungNote)
			}
			if p.note = r.notes[name]; p.note == nil {
				p.note = new(rungNote)
			}
		}
		l.rungs = append(l.rungs, p)
	}
	if len(l.rungs) == 0 {
		return nil, bad("no rungs; expected at least one tier, a Heuristic or a Default")
	}
	for name := range byName {
		if !slices.Contains(order, name) && name != RungCache {
			return nil, bad("%q is configured but missing from Order", name)
		}
	}
	last := len(l.rungs) - 1
	for pos, p := range l.rungs {
		switch rg := p.rung.(type) {
		case *tierRung:
			rg.below = pos < last
		case *cacheRung:
			rg.below = pos < last
		}
	}

	if slices.Contains(order, RungCache) {
		if cfg.Cache == nil {
			l.ownStore = true
		} else {
			l.useStore(cfg.Cache)
		}
	}
	return l, nil
}

// useStore makes s the ladder's store of last-good answers.
func (l *ladder) useStore(s LastGood) {
	l.store = s
	l.offer, _ = s.(Offerer)
	_, l.inproc = s.(*cache.Store)
}

// replaceTier replaces the model tier named t.Name with t, in a new ladder
// that requests use from then on; requests in flight finish on the old
// one. The tier keeps its breaker, counters and poison inputs when its
// Policy is unchanged, unless t brings a version that [Handle.Swap]
// swaps in, which gets a guard of its own; the rung that served last is
// still known by name. It is the operation under hot reload and replication; the old
// model is the caller's to drain and close. The new ladder is built under
// no lock; when another replacement landed meanwhile, it is built again
// on top of that one.
func (r *Router) replaceTier(t Tier) error {
	for {
		r.swap.Lock()
		cfg, gen, old := r.cfg, r.gen, r.ladder.Load()
		r.swap.Unlock()
		i := slices.IndexFunc(cfg.Tiers, func(x Tier) bool { return x.Name == t.Name })
		if i < 0 {
			return fmt.Errorf("%w: no tier is named %q", ErrInvalidConfig, t.Name)
		}
		cfg.Tiers = slices.Clone(cfg.Tiers)
		cfg.Tiers[i] = t
		l, err := r.build(cfg, old)
		if err != nil {
			return err
		}

		r.swap.Lock()
		switch {
		case r.closed.Load():
			r.swap.Unlock()
			return ErrClosed
		case r.gen != gen:
			r.swap.Unlock()
			continue
		}
		if l.ownStore {
			if r.owned == nil { // not so far: the cache setting is old's
				if r.owned, err = cache.New(cache.Config{Clock: r.clock}); err != nil {
					r.swap.Unlock()
					return fmt.Errorf("router: %w", err)
				}
			}
			l.useStore(r.owned)
		}
		r.cfg, r.gen = cfg, gen+1
		r.ladder.Store(l)
		r.swap.Unlock()
		return nil
	}
}

// describeRung asks a rung of [Config].Rungs its name and kind, turning a
// panic into an error matching [ErrPanic].
func describeRung(rg Rung) (name string, kind Kind, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Hook: "Rung.Name", Value: p, Stack: debug.Stack()}
		}
	}()
	return rg.Name(), rg.Kind(), nil
}

// isNil reports whether m is nil, or an interface holding a nil pointer,
// map, func or chan, such as the *models.Model of a failed Load.
func isNil(m any) bool {
	if m == nil {
		return true
	}
	switch v := reflect.ValueOf(m); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// describe asks a tier's model about itself through ask ([SignatureOf] or
// [VersionOf]), turning a panic in the model's own method into an error
// that names the tier and matches [ErrInvalidConfig] and [ErrPanic].
func describe[T any](tier string, m Model, ask func(Model) (T, bool)) (v T, ok bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: tier %q: asking its model about itself: %w", ErrInvalidConfig, tier,
				&PanicError{Tier: tier, Value: p, Stack: debug.Stack()})
		}
	}()
	v, ok = ask(m)
	return v, ok, nil
}
