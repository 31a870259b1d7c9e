package storetest

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

// BenchAppendGroupCommit measures an adapter's throughput with many
// concurrent appenders (128 goroutines per GOMAXPROCS), one message per
// Append, each goroutine writing its own conversation, as conversation
// actors do. It reports appends/s and, from m, the mean writes per group
// commit and the mean commit time.
func BenchAppendGroupCommit(b *testing.B, s engine.Store, m *storemetrics.Metrics) {
	ctx := context.Background()
	const parallelism = 128 // × GOMAXPROCS goroutines
	nconv := parallelism * runtime.GOMAXPROCS(0)
	convs := make([]string, nconv)
	for i := range convs {
		convs[i] = fmt.Sprintf("c%04d", i)
	}
	Seed(b, s, "t1", convs...)

	var next atomic.Int64
	body := engine.Body{Type: engine.BodyText, Text: "hello, I would like to ask about my order"}
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		conv := convs[int(next.Add(1)-1)%nconv]
		var seq int64
		msg := []engine.Message{{Tenant: "t1", Conv: conv, From: engine.Party{Role: engine.RoleUser, ID: "u"}, Body: body}}
		for pb.Next() {
			seq++
			msg[0].Seq = seq
			msg[0].ClientMsgID = fmt.Sprintf("%s-%d", conv, seq)
			if n, err := s.Append(ctx, msg); n != 1 || err != nil {
				b.Errorf("append %s seq %d: n=%d err=%v", conv, seq, n, err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")

	var batch, commit dto.Metric
	if err := m.BatchOps.Write(&batch); err != nil {
		b.Fatal(err)
	}
	if err := m.CommitSeconds.Write(&commit); err != nil {
		b.Fatal(err)
	}
	if n := batch.GetHistogram().GetSampleCount(); n > 0 {
		b.ReportMetric(batch.GetHistogram().GetSampleSum()/float64(n), "ops/commit")
	}
	if n := commit.GetHistogram().GetSampleCount(); n > 0 {
		b.ReportMetric(commit.GetHistogram().GetSampleSum()/float64(n)*1e3, "ms/commit")
	}
}

// BenchAppendSingle measures the latency of one Append when nothing else is
// writing, and reports its p50 and p99 in microseconds.
func BenchAppendSingle(b *testing.B, s engine.Store) {
	ctx := context.Background()
	Seed(b, s, "t1", "c1")
	lat := make([]time.Duration, 0, b.N)
	msg := []engine.Message{{Tenant: "t1", Conv: "c1", From: engine.Party{Role: engine.RoleUser, ID: "u"},
		Body: engine.Body{Type: engine.BodyText, Text: "hello"}}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		msg[0].Seq = int64(i + 1)
		msg[0].ClientMsgID = fmt.Sprintf("m-%d", i+1)
		t0 := time.Now()
		if n, err := s.Append(ctx, msg); n != 1 || err != nil {
			b.Fatalf("append seq %d: n=%d err=%v", i+1, n, err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
