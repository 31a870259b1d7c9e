package engine

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// crockford is the Crockford base32 alphabet: no I, L, O or U, so ids read
// aloud and typed by hand survive.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a 26-character, time-ordered, random identifier (48 bits of
// milliseconds then 80 random bits, Crockford base32). Ids sort by creation
// time, which keeps B-tree inserts local, and cannot be guessed.
func NewID(now time.Time) string {
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[0:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(raw[6:]) // crypto/rand.Read never fails on supported platforms
	return encodeBase32(raw)
}

func encodeBase32(raw [16]byte) string {
	var out [26]byte
	hi := binary.BigEndian.Uint64(raw[0:8])
	lo := binary.BigEndian.Uint64(raw[8:16])
	// 128 bits as 26 groups of 5 bits: the first group holds only 3 bits.
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// ValidID reports whether s has the shape of an id a client may send: 1 to 64
// characters of ASCII letters, digits, '-', '_' and '.'. Anything else, such
// as an operator object or a path, is rejected before it reaches a store.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}
