package router

import (
	"context"
	"fmt"
	"log/slog"
	"time"
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
	// BreakerChanged: a tier's circuit breaker changed state. From and To
	// are "closed", "open" or "half-open".
	BreakerChanged
	// CacheServed: the last-good cache answered. Age is set.
	CacheServed
	// CacheStale: a cached answer existed but was too old for the request.
	// Age is set.
	CacheStale
)

var eventNames = [...]string{"served", "fell", "switched", "breaker", "cache-served", "cache-stale"}

func (k EventKind) String() string {
	if k < 0 || int(k) >= len(eventNames) {
		return fmt.Sprintf("EventKind(%d)", int(k))
	}
	return eventNames[k]
}

// Event is one thing that happened in the ladder, for metrics and logs.
type Event struct {
	Kind     EventKind
	Tier     string
	Position int
	From, To string
	Err      error
	Age      time.Duration
	Latency  time.Duration
}

// emitter delivers events to the configured listener and logger. The
// library is silent by default: with neither set, nothing is done.
type emitter struct {
	listen func(Event)
	log    *slog.Logger
}

func (e emitter) active() bool { return e.listen != nil || e.log != nil }

func (e emitter) emit(ev Event) {
	if e.listen != nil {
		e.listen(ev)
	}
	if e.log == nil {
		return
	}
	level := slog.LevelDebug
	switch ev.Kind {
	case Switched, BreakerChanged:
		level = slog.LevelWarn
	case Fell, CacheStale:
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
