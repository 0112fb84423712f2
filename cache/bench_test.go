package cache_test

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"testing"
	"time"

	gocache "github.com/patrickmn/go-cache"

	"github.com/ladder-ml/ladder/cache"
	"github.com/ladder-ml/ladder/tensor"
)

// BenchmarkPut measures the router's hot-path store of a primary-model
// answer. The baseline is a bare go-cache Set of a pointer, with no copy
// and no bound.
func BenchmarkPut(b *testing.B) {
	e := probability(0.93)
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = cache.Key([]tensor.Tensor{tensor.New("features", []int64{1, 1}, []float32{float32(i)})})
	}

	b.Run("baseline/gocache-Set", func(b *testing.B) {
		c := gocache.New(cache.DefaultTTL, 0)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c.SetDefault(keys[i&(len(keys)-1)], &e)
			i++
		}
	})
	b.Run("same-key", func(b *testing.B) {
		s := newStore(b, cache.Config{})
		b.ReportAllocs()
		for b.Loop() {
			s.Put(bg, keys[0], e)
		}
	})
	b.Run("new-keys-evicting", func(b *testing.B) {
		s := newStore(b, cache.Config{MaxEntries: 1000})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.Put(bg, keys[i&(len(keys)-1)], e)
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s := newStore(b, cache.Config{MaxEntries: 1000})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				s.Put(bg, keys[i&(len(keys)-1)], e)
				i++
			}
		})
	})
}

func BenchmarkGet(b *testing.B) {
	s := newStore(b, cache.Config{})
	s.Put(bg, "k", probability(0.93))
	b.ReportAllocs()
	for b.Loop() {
		get(s, "k")
	}
}

// BenchmarkKey hashes a primary-model input, one row of 30 float32. The
// baselines are hash/fnv over the raw float bits only, and the naive
// fmt-formatted key.
func BenchmarkKey(b *testing.B) {
	in := row()
	b.Run("baseline/fmt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = fmt.Sprintf("%v", in)
		}
	})
	b.Run("baseline/hash-fnv-data-only", func(b *testing.B) {
		f := in[0].Data.([]float32)
		b.ReportAllocs()
		for b.Loop() {
			h := fnv.New64a()
			var buf [4]byte
			for _, v := range f {
				binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
				h.Write(buf[:])
			}
			_ = strconv.FormatUint(h.Sum64(), 16)
		}
	})
	b.Run("Key", func(b *testing.B) {
		// The same input every call, as a stream of repeats: the key is
		// remembered.
		b.ReportAllocs()
		for b.Loop() {
			_ = cache.Key(in)
		}
	})
	b.Run("Key/new-input", func(b *testing.B) {
		// A new input every call: each is hashed with SHA-256.
		f := in[0].Data.([]float32)
		b.ReportAllocs()
		for b.Loop() {
			f[0]++
			_ = cache.Key(in)
		}
	})
}

// BenchmarkOffer measures the router's store of a last-good answer that
// does not make the request wait. The baseline is a Put of the same entry.
func BenchmarkOffer(b *testing.B) {
	e := probability(0.93)
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = cache.Key([]tensor.Tensor{tensor.New("features", []int64{1, 1}, []float32{float32(i)})})
	}

	b.Run("baseline/Put", func(b *testing.B) {
		s := newStore(b, cache.Config{MaxEntries: 1000})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.Put(bg, keys[i&(len(keys)-1)], e)
			i++
		}
	})
	b.Run("same-answer", func(b *testing.B) {
		// A stream of repeats: each Offer refreshes the entry in place.
		s := newStore(b, cache.Config{})
		e := e
		e.Stored = time.Now()
		s.Put(bg, keys[0], e)
		b.ReportAllocs()
		for b.Loop() {
			s.Offer(keys[0], e)
		}
	})
	b.Run("new-keys", func(b *testing.B) {
		// A new key every call: each Offer copies and queues; a write the
		// full queue cannot take is dropped.
		s := newStore(b, cache.Config{MaxEntries: 1000})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.Offer(keys[i&(len(keys)-1)], e)
			i++
		}
	})
}
