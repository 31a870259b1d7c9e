package clustertest

import (
	"context"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/bench"
)

var (
	crossRate     = flag.Float64("cross.rate", 1000, "BenchmarkCrossNodeLatency: messages per second")
	crossDuration = flag.Duration("cross.duration", 5*time.Second, "BenchmarkCrossNodeLatency: how long the load runs")
	crossConvs    = flag.Int("cross.convs", 1000, "BenchmarkCrossNodeLatency: active conversations")
)

// BenchmarkCrossNodeLatency runs kefu bench against a cluster of three
// actor nodes and two edges, customers on one edge and agents on the
// other: every message goes from an edge to the node hosting its
// conversation, is stored in the shared MongoDB-wire store, and is pushed
// to the other edge. It reports the latencies as metrics and fails on any
// lost, duplicated or refused message. Longer runs:
//
//	go test ./cluster/clustertest -run '^$' -bench CrossNode -benchtime 1x -args -cross.duration 60s
func BenchmarkCrossNodeLatency(b *testing.B) {
	c := Start(b, 3, 2)
	for range b.N {
		rep, err := bench.Run(context.Background(), bench.Config{
			URL: c.Edges[0].URL(""), AgentURL: c.Edges[1].URL(""),
			AdminPassword: AdminPassword,
			Convs:         *crossConvs, Agents: 50, Rate: *crossRate, Duration: *crossDuration,
			Mix: bench.Mix{User: 1, Agent: 1, Reconnect: 0.005},
		})
		if err != nil {
			b.Fatal(err)
		}
		if testing.Verbose() {
			_ = rep.WriteTable(os.Stderr)
		}
		if rep.Lost != 0 || rep.Duplicated != 0 || rep.Errors != 0 {
			b.Fatalf("lost %d, duplicated %d, errors %d (%v): want none", rep.Lost, rep.Duplicated, rep.Errors, rep.ErrorKinds)
		}
		b.ReportMetric(rep.UserToAgentMs.P50, "u2a-p50-ms")
		b.ReportMetric(rep.UserToAgentMs.P99, "u2a-p99-ms")
		b.ReportMetric(rep.AgentToUserMs.P99, "a2u-p99-ms")
		b.ReportMetric(rep.AckMs.P99, "ack-p99-ms")
		b.ReportMetric(rep.MsgsPerSec, "msgs/s")
	}
}
