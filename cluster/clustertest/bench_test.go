package clustertest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/bench"
)

var (
	crossRate     = flag.Float64("cross.rate", 200, "BenchmarkCrossNodeLatency: messages per second")
	crossDuration = flag.Duration("cross.duration", 5*time.Second, "BenchmarkCrossNodeLatency: how long the load runs")
	crossConvs    = flag.Int("cross.convs", 200, "BenchmarkCrossNodeLatency: active conversations")
	crossMix      = flag.String("cross.mix", "user=1,agent=1,reconnect=0", "BenchmarkCrossNodeLatency: the harness's -mix")
)

// BenchmarkCrossNodeLatency runs kefu bench against a cluster of three
// actor nodes and two edges, customers on one edge and agents on the
// other: every message goes from an edge to the node hosting its
// conversation, is stored in the shared MongoDB-wire store, and is pushed
// to the other edge. It reports the latencies as metrics, logs the CPU
// each process spent per message, and fails on any lost, duplicated or
// refused message. The suite runs it briefly at 200 msgs/s; the figures in
// docs/performance.md come from
//
//	go test ./cluster/clustertest -run '^$' -bench CrossNode -benchtime 1x -v -args -cross.rate 1000 -cross.duration 30s
func BenchmarkCrossNodeLatency(b *testing.B) {
	c := Start(b, 3, 2)
	var progress io.Writer
	if testing.Verbose() {
		progress = os.Stderr
	}
	mix, err := bench.ParseMix(*crossMix)
	if err != nil {
		b.Fatal(err)
	}
	procs := append([]*Proc{c.ferret}, c.procs()...)
	for range b.N {
		before := make([]time.Duration, len(procs))
		for i, p := range procs {
			before[i] = p.CPU()
		}
		rep, err := bench.Run(context.Background(), bench.Config{
			Log: progress,
			URL: c.Edges[0].URL(""), AgentURL: c.Edges[1].URL(""),
			AdminPassword: AdminPassword,
			Convs:         *crossConvs, Agents: 50, Rate: *crossRate, Duration: *crossDuration,
			Mix: mix,
		})
		if err != nil {
			b.Fatal(err)
		}
		// Where the CPU went: the store server is part of the path.
		var cpu []string
		for i, p := range procs {
			perMsg := float64(p.CPU()-before[i]) / float64(time.Millisecond) / float64(max(rep.Acked, 1))
			cpu = append(cpu, fmt.Sprintf("%s %.3f", p.Name, perMsg))
		}
		b.Logf("CPU ms per acked message: %s", strings.Join(cpu, ", "))
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
