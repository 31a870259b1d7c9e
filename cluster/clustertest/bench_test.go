package clustertest

import (
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/bench"
)

var (
	crossRate     = flag.Float64("cross.rate", 1000, "BenchmarkCrossNodeLatency: messages per second")
	crossDuration = flag.Duration("cross.duration", 5*time.Second, "BenchmarkCrossNodeLatency: how long the load runs")
	crossConvs    = flag.Int("cross.convs", 200, "BenchmarkCrossNodeLatency: active conversations")
	crossMix      = flag.String("cross.mix", "user=1,agent=1,reconnect=0", "BenchmarkCrossNodeLatency: the harness's -mix")
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
	var progress io.Writer
	if testing.Verbose() {
		progress = os.Stderr
	}
	mix, err := bench.ParseMix(*crossMix)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		rep, err := bench.Run(context.Background(), bench.Config{
			Log: progress,
			URL: c.Edges[0].URL(""), AgentURL: c.Edges[1].URL(""),
			AdminPassword: AdminPassword,
			Convs:         *crossConvs, Agents: 50, Rate: *crossRate, Duration: *crossDuration,
			Mix: mix,
		})
		if testing.Verbose() {
			for _, n := range c.Nodes {
				b.Logf("%s store calls:\n%s", n.Name, metricLines(b, n, "kefu_store_ops_total"))
			}
		}
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

// metricLines returns the lines of n's /metrics that start with name.
func metricLines(t testing.TB, n *Node, name string) string {
	resp, err := http.Get(n.URL("/metrics"))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, name) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
