//go:build cgo

package models

import "sync/atomic"

// pool keeps a Model's idle scratches for reuse, in a fixed set of slots
// that each hold one scratch or none. Taking one swaps a slot's scratch
// out, and giving one back swaps it into an empty slot, so a run touches
// no lock and no channel, and a scratch belongs to exactly one owner at a
// time: a slot, a run, or the caller that destroys it. Unlike a
// sync.Pool it never drops a scratch silently, which would leak the
// native tensors the scratch holds.
//
// A pool is safe for concurrent use. The zero value holds no slots; make
// one with [newPool].
type pool struct {
	slots []atomic.Pointer[scratch]
}

func newPool(size int) pool {
	return pool{slots: make([]atomic.Pointer[scratch], size)}
}

// get returns an idle scratch, or nil when every slot is empty.
func (p *pool) get() *scratch {
	for i := range p.slots {
		if p.slots[i].Load() == nil {
			continue
		}
		if s := p.slots[i].Swap(nil); s != nil {
			return s
		}
	}
	return nil
}

// put keeps s for reuse, and reports false when every slot is full, in
// which case s still belongs to the caller.
func (p *pool) put(s *scratch) bool {
	for i := range p.slots {
		if p.slots[i].Load() == nil && p.slots[i].CompareAndSwap(nil, s) {
			return true
		}
	}
	return false
}
