package tensor

import "math"

// F16 is an IEEE 754 half-precision float (binary16), stored as its bits.
// Convert with [NewF16] and [F16.Float32].
type F16 uint16

// BF16 is a bfloat16 float: the top 16 bits of a float32. Convert with
// [NewBF16] and [BF16.Float32].
type BF16 uint16

// NewF16 returns f rounded to the nearest half-precision value, ties to
// even. Values beyond the half range become ±Inf, and NaN stays NaN.
func NewF16(f float32) F16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN
		if mant != 0 {
			return F16(sign | 0x7e00)
		}
		return F16(sign | 0x7c00)
	case exp-127 > 15: // overflow
		return F16(sign | 0x7c00)
	case exp-127 >= -14: // normal
		e := uint32(exp-127+15) << 10
		m := mant >> 13
		h := e | m
		// round to nearest, ties to even; a carry into the exponent is right
		rest := mant & 0x1fff
		if rest > 0x1000 || (rest == 0x1000 && h&1 == 1) {
			h++
		}
		return F16(uint32(sign) | h)
	case exp-127 >= -25: // subnormal
		m := mant | 0x800000
		shift := uint32(-(exp - 127) - 14 + 13)
		h := m >> shift
		rest := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rest > half || (rest == half && h&1 == 1) {
			h++
		}
		return F16(uint32(sign) | h)
	}
	return F16(sign) // underflow to ±0
}

// Float32 returns h as a float32, exactly.
func (h F16) Float32() float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// subnormal: normalise
	e := uint32(127 - 15 + 1)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// nonFinite reports whether h is ±Inf or NaN: all exponent bits set.
func (h F16) nonFinite() bool { return h&0x7c00 == 0x7c00 }

// NewBF16 returns f rounded to the nearest bfloat16 value, ties to even.
// NaN stays NaN.
func NewBF16(f float32) BF16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it quiet and non-zero
		return BF16(b>>16 | 0x40)
	}
	b += 0x7fff + (b>>16)&1
	return BF16(b >> 16)
}

// Float32 returns b as a float32, exactly.
func (b BF16) Float32() float32 { return math.Float32frombits(uint32(b) << 16) }

// nonFinite reports whether b is ±Inf or NaN: all exponent bits set.
func (b BF16) nonFinite() bool { return b&0x7f80 == 0x7f80 }
