package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladder-ml/ladder/clock"
	"github.com/ladder-ml/ladder/internal/block"
	"github.com/ladder-ml/ladder/internal/mono"
	"github.com/ladder-ml/ladder/tensor"
	gocache "github.com/patrickmn/go-cache"
)

// Defaults used for zero [Config] fields.
const (
	DefaultMaxEntries = 10_000
	DefaultTTL        = 10 * time.Minute

	// minDefaultSweep is the floor of the default sweep interval. Sweeping
	// scans every entry, and it only frees memory early: expired entries
	// are never returned, and memory is bounded by MaxEntries whether or
	// not the sweeper runs.
	minDefaultSweep = time.Second
)

// ErrInvalidConfig is returned, wrapped, by [New] when a [Config] field is
// out of range. The wrapping error names the field and what is expected.
var ErrInvalidConfig = errors.New("cache: invalid config")

// Config configures a [Store]. The zero value is valid and means every
// default.
type Config struct {
	// MaxEntries is the most entries the Store keeps. When it is full, a Put
	// of a new key evicts the key that was first stored longest ago.
	// 0 means [DefaultMaxEntries] (10,000); negative is an error.
	MaxEntries int

	// TTL is how long an entry lives after it was last put.
	// 0 means [DefaultTTL] (10 minutes); negative is an error.
	TTL time.Duration

	// SweepInterval is how often expired entries are removed to free their
	// memory. 0 means TTL/2, but not less than one second; any positive
	// value is used as given. Negative is an error.
	SweepInterval time.Duration

	// Clock is the clock the Store reads: entries expire by it, the
	// sweeper runs every SweepInterval of it, and it stamps Stored on an
	// entry put without one. nil means [clock.Real]. A test gives a
	// [clock.Fake] and advances it instead of sleeping. How long
	// [Store.Offer]'s writes gather before they are stored is real time
	// whatever the Clock: it paces the store's goroutine, not the entries'
	// lives, and [Store.Flush] waits for it.
	Clock clock.Clock
}

// Entry is one last-good answer of a model tier.
type Entry struct {
	Outputs []tensor.Tensor // the validated model outputs
	Tier    string          // name of the tier that produced it
	Version string          // model version that produced it
	Stored  time.Time       // when it was stored
}

// Store is a bounded, expiring map from keys to [Entry] values: a cache of
// last-good model answers, in process. Create one with [New] and release
// it with [Store.Close]. Its Get and Put take a context and return an
// error, as a store behind a network must, so that a router uses either
// kind through one interface; the Store itself never blocks on I/O and
// never fails.
//
// A Store is safe for concurrent use by multiple goroutines. Get takes no
// lock of its own, and go-cache's read lock only for a key whose place in
// the index of recent writes another key has taken; Put serializes on a
// mutex held for a few map operations, not for the copy of the outputs.
// Put waits while a sweep scans the entries, which it does under the
// Store's mutex about a thousand at a time; a sweep of 10,000 entries of
// which none has expired takes about 11µs.
type Store struct {
	c      *gocache.Cache
	closed atomic.Bool
	clk    clock.Clock
	now    mono.Reader // reads clk; the entries' expiry is on its scale

	mu   sync.Mutex // guards ring, next, seq and the go-cache writes in Put and the sweep
	ring []slot     // keys in insertion order; grows to max, then wraps
	next int        // index of the oldest slot once ring is full
	seq  uint64     // last sequence number handed out
	max  int

	ttl time.Duration
	// recent indexes the latest item stored per key hash, so that Offer
	// finds an entry to refresh without go-cache's lock.
	// A slot may hold another key's item (then Offer takes the queue), or
	// an item go-cache has since dropped as expired (then its expiry says
	// so); an evicted key's slot is cleared.
	recent  [recentSize]atomic.Pointer[item]
	seed    maphash.Seed
	queue   chan pending // writes accepted by Offer, and Flush's marks, for the background goroutine
	dropped atomic.Int64 // writes Offer dropped because the queue was full

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// pending is one write queued by Offer, or a mark queued by Flush.
type pending struct {
	key     string
	it      *item
	flushed chan struct{} // a mark's, closed once every write before it is stored
}

// queueSize is how many writes Offer may queue before it drops them.
const queueSize = 1024

// slot is one position of the eviction ring: a key, the sequence number
// it was inserted with and when the key's entry expires. A key that
// expired and was put again gets a new slot; seq tells the stale slot from
// the live one, so evicting the stale slot does not delete the fresh
// entry. The sweeper empties the slot of an entry that expired: its key is
// "", a key no entry has.
type slot struct {
	key     string
	seq     uint64
	expires int64 // the expires of the item stored under seq
}

// item is what the Store keeps in go-cache. It is immutable once stored,
// which lets Get copy it without holding a lock.
type item struct {
	e       Entry
	seq     uint64
	pos     int // index of its slot in the ring
	key     string
	expires int64 // when it expires, by Store.now; go-cache keeps it without expiration
	// later is how much later than e.Stored the same answer was last
	// offered, in nanoseconds: Offer moves an entry's Stored time forward
	// in place rather than storing an identical copy ([Store.Offer]).
	later atomic.Int64

	outs [2]tensor.Tensor // backing for e.Outputs when there are at most two
	dims [8]int64         // backing for their shapes when they fit
}

// New returns a Store configured by cfg, with its background goroutine
// running: it stores [Store.Offer]'s writes and sweeps expired entries.
// Call [Store.Close] to stop it.
//
// New returns an error wrapping [ErrInvalidConfig] if a field of cfg is
// negative.
func New(cfg Config) (*Store, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	clk := clock.Or(cfg.Clock)
	s := &Store{
		// Cleanup interval 0: no go-cache janitor; ours is stopped by
		// Close. No expiration either: go-cache would judge it by
		// time.Now, and the Store's entries expire by its clock.
		c:     gocache.New(gocache.NoExpiration, 0),
		clk:   clk,
		now:   mono.For(clk),
		max:   cfg.MaxEntries,
		ttl:   cfg.TTL,
		seed:  maphash.MakeSeed(),
		queue: make(chan pending, queueSize),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	// The sweeper's timer is armed before New returns, so that a test
	// that advances a fake clock past SweepInterval sees a sweep.
	go s.run(clk.NewTimer(cfg.SweepInterval), cfg.SweepInterval)
	return s, nil
}

// resolve validates c and fills in defaults.
func (c Config) resolve() (Config, error) {
	switch {
	case c.MaxEntries < 0:
		return c, fmt.Errorf("%w: MaxEntries is %d, want 0 (for the default, %d) or more",
			ErrInvalidConfig, c.MaxEntries, DefaultMaxEntries)
	case c.TTL < 0:
		return c, fmt.Errorf("%w: TTL is %v, want 0 (for the default, %v) or more",
			ErrInvalidConfig, c.TTL, DefaultTTL)
	case c.SweepInterval < 0:
		return c, fmt.Errorf("%w: SweepInterval is %v, want 0 (for TTL/2, at least %v) or more",
			ErrInvalidConfig, c.SweepInterval, minDefaultSweep)
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = max(c.TTL/2, minDefaultSweep)
	}
	return c, nil
}

// run is the store's background goroutine: it stores the writes queued by
// Offer and removes expired entries each time sweep fires, every sweep
// interval of the store's clock, until Close.
func (s *Store) run(sweep clock.Timer, every time.Duration) {
	defer close(s.done)
	defer sweep.Stop()
	// The pause is on real time whatever the store's clock: it paces
	// this goroutine's wake-ups, and a fake clock that nobody advances
	// must not hold Offer's writes back.
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	for {
		select {
		case <-s.stop:
			return
		case w := <-s.queue:
			if w.flushed != nil { // nothing to gather
				close(w.flushed)
				continue
			}
			s.put(w.key, w.it)
			// Let writes gather for a moment before storing them, so a
			// busy stream costs one wake-up per batch instead of one per
			// write, and Offer's sends rarely wake this goroutine.
			pause.Reset(batchPause)
			select {
			case <-s.stop:
				pause.Stop()
				return
			case <-pause.C:
			}
			s.drain()
		case <-sweep.C():
			s.sweep()
			// A timer reset after each sweep rather than a ticker: on a
			// fake clock, one advance past several intervals sweeps once.
			sweep.Reset(every)
		}
	}
}

// batchPause is how long the background goroutine lets Offer's writes
// gather; it bounds how soon an offered entry becomes visible.
const batchPause = time.Millisecond

// drain stores every queued write, yielding the processor every few
// writes so that requests running beside it wait microseconds, not the
// length of a whole batch.
func (s *Store) drain() {
	for n := 1; ; n++ {
		select {
		case w := <-s.queue:
			if w.flushed != nil {
				close(w.flushed)
				continue
			}
			s.put(w.key, w.it)
		default:
			return
		}
		if n%16 == 0 {
			runtime.Gosched()
		}
	}
}

// Offer is [Store.Put] without the wait: it copies e at once and queues it
// for the store's background goroutine, so the caller never contends for
// the store's locks. The entry becomes visible to Get within about a
// millisecond, as the goroutine stores queued writes in batches;
// [Store.Flush] waits until it is. When
// the queue is full (1024 writes) the write is dropped and counted by
// [Store.Dropped]: a last-good cache loses nothing that matters by missing
// one refresh. Offer reports whether the write was queued.
//
// An Offer of the answer that key already holds (same Tier, Version and
// outputs), while the entry has more than half its TTL to live, neither
// copies nor queues: it moves the entry's Stored time forward in place, at
// once (to within a millisecond), and reports true. A stream of requests
// for the same input then costs the store one map read each, not a copy
// and a background write.
func (s *Store) Offer(key string, e Entry) bool {
	if key == "" || s.closed.Load() {
		return false
	}
	if s.refresh(key, e) {
		return true
	}
	select {
	case s.queue <- pending{key: key, it: s.copyIn(e)}:
		return true
	default:
		s.dropped.Add(1)
		return false
	}
}

// refresh moves the Stored time of key's entry forward to e.Stored when
// the entry holds the same answer as e and has more than half its TTL to
// live, and reports whether it did. It takes no lock. How long the entry
// has to live is judged by the clock, never by e.Stored: a caller's time
// may lag (a test's clock, an entry read back from a Get), and an expired
// entry is never refreshed in place of a write.
func (s *Store) refresh(key string, e Entry) bool {
	if e.Stored.IsZero() {
		return false
	}
	it := s.recent[s.slot(key)].Load()
	if it == nil || it.key != key || it.e.Tier != e.Tier || it.e.Version != e.Version || !sameOutputs(it.e.Outputs, e.Outputs) {
		return false
	}
	if it.expires-s.now.Now() < int64(s.ttl/2) {
		return false // due for a real write, which restarts the TTL
	}
	d := int64(e.Stored.Sub(it.e.Stored))
	for {
		// Moves closer together than refreshGrain are skipped, so that
		// requests on several cores do not all write one cache line.
		cur := it.later.Load()
		if d <= cur+int64(refreshGrain) || it.later.CompareAndSwap(cur, d) {
			return true
		}
	}
}

// recentSize is the number of slots of Store.recent.
const recentSize = 1024

func (s *Store) slot(key string) uint64 { return maphash.String(s.seed, key) % recentSize }

// refreshGrain is how far an Offer of the same answer must move an entry's
// Stored time forward to be written: the Stored time lags the latest such
// Offer by less than that, as a queued write becomes visible within about
// a millisecond.
const refreshGrain = time.Millisecond

// sameOutputs reports whether a and b hold the same tensors: names,
// shapes and data, element for element (bitwise for floats, so that NaN
// payloads and -0 count as different, as in [Key]).
func sameOutputs(a, b []tensor.Tensor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !slices.Equal(a[i].Shape, b[i].Shape) || !sameData(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

// sameData reports whether a and b hold elements of the same type, equal
// bit for bit (strings byte for byte). Data of no supported type counts
// as different, which only costs a write.
func sameData(a, b any) bool {
	return tensor.SameData(tensor.Tensor{Data: a}, tensor.Tensor{Data: b})
}

// Dropped returns the number of writes Offer dropped because its queue was
// full.
func (s *Store) Dropped() int64 { return s.dropped.Load() }

// Flush waits until every write that [Store.Offer] accepted before Flush
// was called has been stored, so that a Get made after Flush returns sees
// it; writes offered while Flush runs may or may not be waited for. It
// returns ctx.Err() if ctx ends first. After [Store.Close], and when Close
// is called while it waits, Flush returns nil at once: Close drops every
// entry, so no write is left to wait for.
//
// A test calls Flush where it would otherwise sleep for the store's
// goroutine. Flush takes as long as storing the writes queued before it
// (at most a full queue's) and a pause of about a millisecond of real
// time, whatever [Config.Clock] is; with a full queue it first waits for
// room.
func (s *Store) Flush(ctx context.Context) error {
	if s.closed.Load() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	flushed := make(chan struct{})
	select {
	case s.queue <- pending{flushed: flushed}:
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-flushed:
		return nil
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// copyIn returns the item to store for e: a deep copy, stamped with the
// store's clock when e has no time. The tensor list and shapes of a typical answer live
// inside the item itself, so a copy costs one allocation per output's data
// instead of three.
func (s *Store) copyIn(e Entry) *item {
	it := &item{e: e}
	it.e.Outputs = copyInto(e.Outputs, it.outs[:0:len(it.outs)], it.dims[:0:len(it.dims)])
	if it.e.Stored.IsZero() {
		it.e.Stored = s.stamp()
	}
	return it
}

// stamp returns the time of the store's clock: for the real clock, read
// through internal/mono, which costs half of time.Now.
func (s *Store) stamp() time.Time {
	if s.now.Real() {
		return mono.Time(mono.Now())
	}
	return s.clk.Now()
}

// copyOut returns a deep copy of outs for a caller of Get: one
// allocation for a typical answer of one or two small outputs.
func copyOut(outs []tensor.Tensor) []tensor.Tensor {
	if outs == nil {
		return nil
	}
	ts, room := block.New(len(outs))
	for i, t := range outs {
		ts[i] = tensor.Tensor{Name: t.Name, Shape: block.Shape(&room, t.Shape), Data: block.CloneData(&room, t.Data)}
	}
	return ts
}

// copyInto deep-copies src into ts, with the shapes in dims, each growing
// past its capacity only when src does not fit. Only the data is
// allocated per tensor.
func copyInto(src, ts []tensor.Tensor, dims []int64) []tensor.Tensor {
	if src == nil {
		return nil
	}
	if len(src) > cap(ts) {
		ts = make([]tensor.Tensor, 0, len(src))
	}
	for _, t := range src {
		c := tensor.Tensor{Data: t.Data}.Clone() // the data only
		c.Name = t.Name
		if len(dims)+len(t.Shape) <= cap(dims) {
			start := len(dims)
			dims = append(dims, t.Shape...)
			c.Shape = dims[start:len(dims):len(dims)]
		} else {
			c.Shape = slices.Clone(t.Shape)
		}
		ts = append(ts, c)
	}
	return ts
}

// Put stores a deep copy of e under key, replacing any entry already there
// and restarting its TTL. If e.Stored is zero, the copy's Stored is the
// current time. Expiry always counts from the Put, whatever e.Stored says.
//
// A new key takes the place of the oldest key when the Store is full.
// Overwriting a key that is still present keeps its place in the eviction
// order.
//
// Put does nothing when key is empty ([Key] returns "" for inputs it cannot
// hash) or after [Store.Close]. It does not block on I/O; it can wait for
// other Puts and for a running sweep. It never fails: the error, there
// for stores behind a network, is always nil, and ctx is not consulted.
func (s *Store) Put(_ context.Context, key string, e Entry) error {
	if key == "" || s.closed.Load() {
		return nil
	}
	s.put(key, s.copyIn(e))
	return nil
}

// put stores it under key, evicting the oldest key when the store is full.
func (s *Store) put(key string, it *item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return
	}
	now := s.now.Now()
	it.key, it.expires = key, now+int64(s.ttl)
	if v, ok := s.c.Get(key); ok {
		if old := v.(*item); old.expires > now && s.ring[old.pos].seq == old.seq {
			// Live key: replace the value, keep its slot.
			it.seq, it.pos = old.seq, old.pos
			s.ring[it.pos].expires = it.expires
			s.store(key, it)
			return
		}
	}
	// New key, or an expired one not yet swept: it takes a new slot.
	s.seq++
	it.seq = s.seq
	sl := slot{key: key, seq: it.seq, expires: it.expires}
	if len(s.ring) < s.max {
		it.pos = len(s.ring)
		s.ring = append(s.ring, sl)
	} else {
		s.evict(s.ring[s.next])
		it.pos = s.next
		s.ring[s.next] = sl
		s.next = (s.next + 1) % s.max
	}
	s.store(key, it)
}

// store writes it under key to go-cache and the recent index. s.mu must
// be held.
func (s *Store) store(key string, it *item) {
	s.c.Set(key, it, gocache.NoExpiration)
	s.recent[s.slot(key)].Store(it)
}

// evict deletes the entry of an old slot, unless the sweeper emptied the
// slot or the key was stored again later under a newer slot. s.mu must be
// held.
func (s *Store) evict(old slot) {
	if old.key == "" {
		return
	}
	if v, ok := s.c.Get(old.key); ok && v.(*item).seq != old.seq {
		return
	}
	// Either our entry, or an already deleted one: delete it.
	s.remove(old.key)
}

// remove deletes key's entry from go-cache and the recent index. s.mu
// must be held.
func (s *Store) remove(key string) {
	if r := &s.recent[s.slot(key)]; r.Load() != nil && r.Load().key == key {
		r.Store(nil)
	}
	s.c.Delete(key)
}

// sweepChunk is how many slots the sweeper scans per hold of s.mu.
const sweepChunk = 1024

// sweep removes the entries that have expired by the store's clock and
// empties their slots. It holds s.mu for sweepChunk slots at a time, so
// that a Put waits for one chunk of the scan, not the whole of it.
func (s *Store) sweep() {
	for from := 0; ; from += sweepChunk {
		s.mu.Lock()
		if s.closed.Load() || from >= len(s.ring) {
			s.mu.Unlock()
			return
		}
		now := s.now.Now()
		for i := from; i < min(from+sweepChunk, len(s.ring)); i++ {
			sl := &s.ring[i]
			if sl.key == "" || sl.expires > now {
				continue
			}
			if v, ok := s.c.Get(sl.key); ok && v.(*item).seq == sl.seq {
				s.remove(sl.key)
			}
			// Expired, or a stale slot of a key stored again under a
			// newer one: either way no entry of this slot is left.
			sl.key = ""
		}
		s.mu.Unlock()
	}
}

// Get returns a deep copy of the entry stored under key, and false if there
// is none, it has expired, or the Store is closed. It never blocks on I/O
// and never fails: the error, there for stores behind a network, is
// always nil, and ctx is not consulted.
func (s *Store) Get(_ context.Context, key string) (Entry, bool, error) {
	if s.closed.Load() {
		return Entry{}, false, nil
	}
	// The latest item stored under key is usually in recent: reading it
	// there takes no lock.
	it := s.recent[s.slot(key)].Load()
	if it == nil || it.key != key {
		v, ok := s.c.Get(key)
		if !ok {
			return Entry{}, false, nil
		}
		it = v.(*item)
	}
	if it.expires <= s.now.Now() {
		return Entry{}, false, nil
	}
	e := it.e
	if d := it.later.Load(); d > 0 {
		e.Stored = e.Stored.Add(time.Duration(d))
	}
	e.Outputs = copyOut(e.Outputs)
	return e, true, nil
}

// Len returns the number of entries in the Store. It never exceeds
// [Config.MaxEntries]. It counts expired entries that the sweeper has not
// removed yet, so it may be larger than the number Get would return. It is
// 0 after [Store.Close].
func (s *Store) Len() int {
	return s.c.ItemCount()
}

// Close stops the background goroutine, waits for it to exit, and drops
// every entry, with the writes Offer queued and the goroutine had not
// stored yet. After Close, Put and Offer do nothing, Get misses and Flush
// returns at once. Close is idempotent and safe to call concurrently; it
// always returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed.Store(true)
		s.mu.Unlock()

		close(s.stop)
		<-s.done

		s.mu.Lock()
		s.c.Flush()
		s.ring = nil
		for i := range s.recent {
			s.recent[i].Store(nil)
		}
		s.mu.Unlock()
	})
	return nil
}
