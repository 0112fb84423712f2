// Package cache holds the last good answer of each model tier, so that a
// router can still answer with a recent, real model prediction when every
// model tier has failed.
//
// # What it stores
//
// A [Store] maps a key, normally [Key] of the request's input tensors, to an
// [Entry]: the output tensors a model returned for those inputs, with the
// tier and model version that produced them and when they were stored.
// Values are deep-copied on the way in and on the way out, so a Store never
// shares memory with its callers.
//
// What goes in is the caller's contract, not something the Store can check:
// put only model answers that passed validation (finite, in range, the right
// shape). Never put a heuristic or default answer, and never put back an
// answer that was itself served from the cache; otherwise a bad or stale
// answer can keep refreshing itself and be served as "last good" forever.
// The router keeps this contract.
//
// # Bounds
//
// A Store holds at most [Config.MaxEntries] entries (10,000 by default).
// When a new key arrives and the Store is full, the entry whose key was
// first stored longest ago is evicted (first in, first out; overwriting a
// key does not move it). Memory therefore stays flat even when every request
// carries a new key.
//
// Every entry expires [Config.TTL] after it was last put (10 minutes by
// default). [Store.Get] never returns an expired entry. A background
// goroutine removes expired entries every [Config.SweepInterval] to give
// their memory back early; [Store.Close] stops it. Expiry and sweeps
// follow [Config.Clock], so a test advances a clock.Fake instead of
// sleeping, and calls [Store.Flush] to wait for the writes [Store.Offer]
// queued.
//
// # Other stores
//
// [Store.Get] and [Store.Put] take a context and return an error, which
// for this Store is always nil, so that the router reads any store of
// last-good answers through one interface (router.LastGood): a store
// behind a network says "I am down" with an error, apart from "not found",
// and stops when its context ends. Package cachetest checks that such a
// store behaves as the router expects.
//
// The Store is built on github.com/patrickmn/go-cache, which has no size
// limit, judges expiry by time.Now, and whose own janitor goroutine stops
// only when the cache is garbage collected; this package adds the limit,
// keeps each entry's expiry by its own clock, and owns the janitor.
package cache
