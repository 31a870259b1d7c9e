package mongo

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
)

// The same two benchmarks as store/sqlite's. Against the in-process FerretDB
// they measure FerretDB (every query a scan of SQLite) more than this
// adapter; point KEFU_TEST_MONGO_URI at a replica set for figures that mean
// something.

// BenchmarkAppendGroupCommit measures throughput with many concurrent
// appenders (128 goroutines per GOMAXPROCS), one message per Append, each
// goroutine writing its own conversation, as conversation actors do.
func BenchmarkAppendGroupCommit(b *testing.B) {
	s := openTest(b, Config{}, testHooks{})
	ctx := context.Background()
	const parallelism = 128 // × GOMAXPROCS goroutines
	nconv := parallelism * runtime.GOMAXPROCS(0)
	convs := make([]string, nconv)
	for i := range convs {
		convs[i] = fmt.Sprintf("c%04d", i)
	}
	seed(b, s, "t1", convs...)

	var next atomic.Int64
	body := engine.Body{Type: engine.BodyText, Text: "hello, I would like to ask about my order"}
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		conv := convs[int(next.Add(1)-1)%nconv]
		var seq int64
		m := []engine.Message{{Tenant: "t1", Conv: conv, From: engine.Party{Role: engine.RoleUser, ID: "u"}, Body: body}}
		for pb.Next() {
			seq++
			m[0].Seq = seq
			m[0].ClientMsgID = fmt.Sprintf("%s-%d", conv, seq)
			if n, err := s.Append(ctx, m); n != 1 || err != nil {
				b.Errorf("append %s seq %d: n=%d err=%v", conv, seq, n, err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	reportBatchMetrics(b, s)
}

// reportBatchMetrics reports the mean ops per group commit and the mean
// commit time, from the store's own histograms.
func reportBatchMetrics(b *testing.B, s *Store) {
	var batch, commit dto.Metric
	if err := s.metrics.BatchOps.Write(&batch); err != nil {
		b.Fatal(err)
	}
	if err := s.metrics.CommitSeconds.Write(&commit); err != nil {
		b.Fatal(err)
	}
	if n := batch.GetHistogram().GetSampleCount(); n > 0 {
		b.ReportMetric(batch.GetHistogram().GetSampleSum()/float64(n), "ops/commit")
	}
	if n := commit.GetHistogram().GetSampleCount(); n > 0 {
		b.ReportMetric(commit.GetHistogram().GetSampleSum()/float64(n)*1e3, "ms/commit")
	}
}

// BenchmarkAppendSingle measures the latency of one Append when nothing else
// is writing: one InsertMany round trip per call.
func BenchmarkAppendSingle(b *testing.B) {
	s := openTest(b, Config{}, testHooks{})
	ctx := context.Background()
	seed(b, s, "t1", "c1")
	lat := make([]time.Duration, 0, b.N)
	m := []engine.Message{{Tenant: "t1", Conv: "c1", From: engine.Party{Role: engine.RoleUser, ID: "u"},
		Body: engine.Body{Type: engine.BodyText, Text: "hello"}}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m[0].Seq = int64(i + 1)
		m[0].ClientMsgID = fmt.Sprintf("m-%d", i+1)
		t0 := time.Now()
		if n, err := s.Append(ctx, m); n != 1 || err != nil {
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
