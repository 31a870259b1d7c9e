package edge

import (
	"sync"
	"time"
)

// tokenBucket is a per-connection frame rate limiter. It is owned by the
// connection's reader goroutine and needs no lock.
type tokenBucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int, now time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// allow takes a token if one is left at now.
func (b *tokenBucket) allow(now time.Time) bool {
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = min(b.burst, b.tokens+elapsed*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// keyedLimiter is a token bucket per key (a client IP, an account), safe
// for concurrent use. Buckets that have refilled are forgotten, so memory
// stays bounded by the keys active within one refill time.
type keyedLimiter struct {
	rate  float64
	burst int

	mu      sync.Mutex
	buckets map[string]*tokenBucket
	swept   time.Time
}

func newKeyedLimiter(perSecond float64, burst int) *keyedLimiter {
	return &keyedLimiter{rate: perSecond, burst: burst, buckets: make(map[string]*tokenBucket)}
}

// allow takes a token from key's bucket if one is left at now.
func (l *keyedLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = newTokenBucket(l.rate, l.burst, now)
		l.buckets[key] = b
	}
	ok := b.allow(now)
	if refill := time.Duration(float64(l.burst) / l.rate * float64(time.Second)); now.Sub(l.swept) > refill {
		for k, b := range l.buckets {
			if now.Sub(b.last) > refill { // full again: the same as a new bucket
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	return ok
}
