package router

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/ladder-ml/ladder/policy"
)

// EventKind says what an [Event] reports.
type EventKind int

// The events a router reports.
const (
	// Served: a rung answered a request. Tier, Position, Latency are set.
	Served EventKind = iota
	// Fell: a rung could not answer; the request moves down. Tier,
	// Position and Err are set.
	Fell
	// Switched: the rung serving traffic changed, e.g. failover from the
	// primary to the backup, or the return to the primary. From and To
	// are rung names; Tier and Position are the new rung's.
	Switched
	// BreakerChanged: a tier's circuit breaker changed state. Breaker is
	// set. It is delivered after the call that caused the change returns,
	// never from inside the breaker.
	BreakerChanged
	// CacheServed: the last-good cache answered. Age is set.
	CacheServed
	// CacheStale: a cached answer existed but was too old for the request,
	// or was stored further in the future than [MaxClockSkew] and has an
	// unknown age. Age is set; it is negative for one stored in the future.
	CacheStale
	// HookPanicked: the user's code panicked in a hook (Check, Key,
	// OnEvent, the Logger's handler, a tier's Inputs, the cache's Get or
	// Put). Err is the [*PanicError]. The panic changed neither which
	// answer was served nor any breaker.
	HookPanicked
	// StoreFailed: a write of a last-good answer to the store
	// ([Config].Cache) failed; the request was served all the same. Err is
	// the [*StoreError]. A failed read is a [Fell] event of the cache rung.
	StoreFailed
	// HealthChanged: a tier's [Condition] changed, by its probes, a load
	// or a reload. Health is set; Err is the cause of a change for the
	// worse.
	HealthChanged
	// Reloaded: a manager swapped a new version of a tier in
	// ([Handle.Swap]). Version and Source are set.
	Reloaded
	// ReloadRejected: a load or reload was rejected and the tier serves what
	// it served before ([Handle.Reject]). Err is why, such as a
	// *reload.ReloadError; Version is the rejected version, when known.
	ReloadRejected
	// RolledBack: a new version failed under traffic within its rollback
	// window and the previous one serves again ([Handle.Restore]). Version
	// is the restored version; Err is why, such as a *reload.RollbackError.
	RolledBack
)

var eventNames = [...]string{"served", "fell", "switched", "breaker", "cache-served", "cache-stale", "hook-panicked", "store-failed",
	"health", "reloaded", "reload-rejected", "rolled-back"}

func (k EventKind) String() string {
	if k < 0 || int(k) >= len(eventNames) {
		return fmt.Sprintf("EventKind(%d)", int(k))
	}
	return eventNames[k]
}

// Event is one thing that happened in the ladder, for metrics and logs.
type Event struct {
	Kind     EventKind // what happened; it says which other fields are set
	Tier     string    // the rung it happened on
	Position int       // that rung's position in the ladder, from 0
	// From and To are the rungs a Switched event moves between.
	From, To string
	// Breaker is a BreakerChanged event's change of state.
	Breaker policy.StateChange
	// Health is a HealthChanged event's change of condition.
	Health HealthChange
	// Version and Source are the version of a Reloaded, ReloadRejected or
	// RolledBack event, and where a reloaded one came from.
	Version, Source string
	Outcome         policy.Outcome // a Fell event's verdict, e.g. "breaker_open"
	Err             error          // why a rung fell, or the hook's *PanicError
	Age             time.Duration  // a cached answer's age; negative for one stored in the future
	Latency         time.Duration  // how long the served request took
}

// HealthChange reports a tier moving from one [Condition] to another.
type HealthChange struct {
	From Condition // the condition the tier left
	To   Condition // the condition it entered
}

// emitter delivers events to the configured listener and logger. The
// library is silent by default: with neither set, nothing is done. Every
// call into the user's code is recovered: a panic is reported as a
// HookPanicked event, and one raised while reporting is dropped.
type emitter struct {
	listen func(Event)
	log    *slog.Logger
}

func (e emitter) active() bool { return e.listen != nil || e.log != nil }

func (e emitter) emit(ev Event) {
	if e.listen != nil {
		if v, stack, ok := e.callListener(ev); !ok && ev.Kind != HookPanicked {
			e.hookPanicked(&PanicError{Tier: ev.Tier, Hook: "OnEvent", Value: v, Stack: stack})
		}
	}
	if e.log != nil {
		if v, stack, ok := e.callLogger(ev); !ok && ev.Kind != HookPanicked {
			e.hookPanicked(&PanicError{Tier: ev.Tier, Hook: "Logger", Value: v, Stack: stack})
		}
	}
}

// hookPanicked reports a recovered panic of the user's code.
func (e emitter) hookPanicked(pe *PanicError) {
	if e.active() {
		e.emit(Event{Kind: HookPanicked, Tier: pe.Tier, Err: pe})
	}
}

func (e emitter) callListener(ev Event) (v any, stack []byte, ok bool) {
	defer func() {
		if v = recover(); v != nil {
			stack, ok = debug.Stack(), false
		}
	}()
	e.listen(ev)
	return nil, nil, true
}

func (e emitter) callLogger(ev Event) (v any, stack []byte, ok bool) {
	defer func() {
		if v = recover(); v != nil {
			stack, ok = debug.Stack(), false
		}
	}()
	e.logEvent(ev)
	return nil, nil, true
}

func (e emitter) logEvent(ev Event) {
	level := slog.LevelDebug
	switch ev.Kind {
	case Switched, BreakerChanged, HealthChanged, ReloadRejected, RolledBack:
		level = slog.LevelWarn
	case Reloaded:
		level = slog.LevelInfo
	case Fell, CacheStale, HookPanicked, StoreFailed:
		level = slog.LevelInfo
	}
	ctx := context.Background()
	if !e.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("tier", ev.Tier), slog.Int("position", ev.Position)}
	if ev.From != "" || ev.To != "" {
		attrs = append(attrs, slog.String("from", ev.From), slog.String("to", ev.To))
	}
	if ev.Kind == BreakerChanged {
		attrs = append(attrs, slog.String("from", ev.Breaker.From.String()), slog.String("to", ev.Breaker.To.String()))
	}
	if ev.Kind == HealthChanged {
		attrs = append(attrs, slog.String("from", ev.Health.From.String()), slog.String("to", ev.Health.To.String()))
	}
	if ev.Version != "" {
		attrs = append(attrs, slog.String("version", ev.Version))
	}
	if ev.Source != "" {
		attrs = append(attrs, slog.String("source", ev.Source))
	}
	if ev.Err != nil {
		attrs = append(attrs, slog.String("err", ev.Err.Error()))
	}
	if ev.Age != 0 {
		attrs = append(attrs, slog.Duration("age", ev.Age))
	}
	if ev.Latency != 0 {
		attrs = append(attrs, slog.Duration("latency", ev.Latency))
	}
	e.log.LogAttrs(ctx, level, "ladder: "+ev.Kind.String(), attrs...)
}
