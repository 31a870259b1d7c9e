package bench

import (
	"math"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// histogram records latencies in microseconds, from 1 µs to 5 minutes with
// three significant digits. It is safe for concurrent use.
type histogram struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newHistogram() *histogram {
	return &histogram{h: hdrhistogram.New(1, int64(5*time.Minute/time.Microsecond), 3)}
}

// record adds one latency; negative ones (a clock step) count as zero and
// longer ones than the range as its maximum.
func (h *histogram) record(d time.Duration) {
	us := max(d.Microseconds(), 1)
	h.mu.Lock()
	if err := h.h.RecordValue(us); err != nil {
		_ = h.h.RecordValue(h.h.HighestTrackableValue())
	}
	h.mu.Unlock()
}

// Latency summarises one histogram in milliseconds. XBaseline holds, for
// p50 and p99, how many times the raw echo baseline's same percentile the
// figure is (absent without a baseline).
type Latency struct {
	N         int64              `json:"n"`
	Mean      float64            `json:"mean"`
	P50       float64            `json:"p50"`
	P90       float64            `json:"p90"`
	P99       float64            `json:"p99"`
	P999      float64            `json:"p999"`
	Max       float64            `json:"max"`
	XBaseline map[string]float64 `json:"x_baseline,omitempty"`
}

func (h *histogram) summary() Latency {
	h.mu.Lock()
	defer h.mu.Unlock()
	ms := func(us int64) float64 { return round3(float64(us) / 1000) }
	if h.h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		N:    h.h.TotalCount(),
		Mean: round3(h.h.Mean() / 1000),
		P50:  ms(h.h.ValueAtQuantile(50)), P90: ms(h.h.ValueAtQuantile(90)),
		P99: ms(h.h.ValueAtQuantile(99)), P999: ms(h.h.ValueAtQuantile(99.9)),
		Max: ms(h.h.Max()),
	}
}

// relativeTo fills XBaseline from the baseline's summary.
func (l *Latency) relativeTo(base Latency) {
	if l.N == 0 || base.N == 0 || base.P50 <= 0 || base.P99 <= 0 {
		return
	}
	l.XBaseline = map[string]float64{"p50": round1(l.P50 / base.P50), "p99": round1(l.P99 / base.P99)}
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
func round1(f float64) float64 { return math.Round(f*10) / 10 }
