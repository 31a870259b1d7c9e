package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
)

// Report is the outcome of a run. Its JSON form is the harness's -json
// output; docs/performance.md describes every field.
type Report struct {
	Mode   string       `json:"mode"` // load or idle
	Config ReportConfig `json:"config"`

	DurationSec float64 `json:"duration_s"`
	Connections int     `json:"connections"`

	UserToAgentMs Latency `json:"user_to_agent_ms"`
	AgentToUserMs Latency `json:"agent_to_user_ms"`
	AckMs         Latency `json:"ack_ms"`
	BotReplyMs    Latency `json:"bot_reply_ms"`
	ResumeMs      Latency `json:"resume_ms"`
	// EscalationMs: a customer's escalate → the routed agent's answer at
	// the customer; QueueWaitMs: the escalate → the agent's assigned notice.
	EscalationMs Latency          `json:"escalation_ms"`
	QueueWaitMs  Latency          `json:"queue_wait_ms"`
	Escalations  EscalationCounts `json:"escalations"`
	// Baseline is the raw WebSocket echo round trip over loopback.
	Baseline Latency `json:"baseline_echo_ms"`

	Sent       int64   `json:"sent"`
	Acked      int64   `json:"acked"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	Reconnects int64   `json:"reconnects"`

	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"error_kinds"`
	Lost       int64            `json:"lost"`
	Duplicated int64            `json:"duplicated"`
	Check      Check            `json:"check"`

	RSSBytesPerConn int64   `json:"rss_bytes_per_conn"`
	ServerRSSBefore int64   `json:"server_rss_before"`
	ServerRSSAfter  int64   `json:"server_rss_after"`
	ServerRSSHeld   int64   `json:"server_rss_held,omitempty"`
	HarnessRSS      int64   `json:"harness_rss_bytes"`
	ConnectsPerSec  float64 `json:"connects_per_sec"`
	ConnectFailures int64   `json:"connect_failures"`
	Dropped         int64   `json:"dropped"`

	CPU   *CPU        `json:"cpu,omitempty"` // load mode only
	Idle  *IdleDetail `json:"idle,omitempty"`
	Host  Host        `json:"host"`
	Notes []string    `json:"notes"`
}

// EscalationCounts follow the escalations through their steps: the
// escalate sent, the conversation assigned to a routed agent, the agent's
// answer at the customer, the conversation closed.
type EscalationCounts struct {
	Requested int64 `json:"requested"`
	Assigned  int64 `json:"assigned"`
	Answered  int64 `json:"answered"`
	Closed    int64 `json:"closed"`
}

// IdleDetail breaks the idle mode's memory down with the server's Go
// runtime gauges, per connection.
type IdleDetail struct {
	HeapInusePerConn  int64   `json:"heap_inuse_per_conn"`
	StackInusePerConn int64   `json:"stack_inuse_per_conn"`
	GoroutinesPerConn float64 `json:"goroutines_per_conn"`
	RSSPerConnHeld    int64   `json:"rss_per_conn_after_hold"`
	HeldSec           float64 `json:"held_s"`
	Sources           int     `json:"sources"`
}

// CPU is where the CPU went from the start of the load to the end of the
// drain, to read the figures against the machine's limit when the server
// and the harness share it. The server is the -url process only. A figure
// that could not be read is 0, and a note says why.
type CPU struct {
	ServerSec       float64 `json:"server_s"`  // the server's process_cpu_seconds_total, after minus before
	HarnessSec      float64 `json:"harness_s"` // this process's user + system time
	WallSec         float64 `json:"wall_s"`
	Cores           int     `json:"cores"`
	ServerUsPerMsg  float64 `json:"server_us_per_msg"`
	HarnessUsPerMsg float64 `json:"harness_us_per_msg"`
	MachineShare    float64 `json:"machine_share"` // (server_s + harness_s) / (wall_s × cores)
}

// newCPU derives the figures from the CPU seconds each process used over
// wall seconds, and the messages acked in that run. An unknown figure is
// passed as 0; the share then stays 0 too, rather than understate.
func newCPU(server, harness, wall float64, cores int, acked int64) *CPU {
	c := &CPU{ServerSec: round3(server), HarnessSec: round3(harness), WallSec: round3(wall), Cores: cores}
	if acked > 0 {
		c.ServerUsPerMsg = round1(server * 1e6 / float64(acked))
		c.HarnessUsPerMsg = round1(harness * 1e6 / float64(acked))
	}
	if server > 0 && harness > 0 && wall > 0 && cores > 0 {
		c.MachineShare = round3((server + harness) / (wall * float64(cores)))
	}
	return c
}

// line sums the figures up for the table, an unknown one as "-".
func (c *CPU) line() string {
	fig := func(format string, v float64) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf(format, v)
	}
	var serverCores, harnessCores float64
	if c.WallSec > 0 {
		serverCores, harnessCores = c.ServerSec/c.WallSec, c.HarnessSec/c.WallSec
	}
	return fmt.Sprintf("server %s µs/msg, harness %s µs/msg (%s + %s of %d cores, %s of the machine, over %.1f s)",
		fig("%.0f", c.ServerUsPerMsg), fig("%.0f", c.HarnessUsPerMsg), fig("%.2f", serverCores), fig("%.2f", harnessCores),
		c.Cores, fig("%.0f%%", 100*c.MachineShare), c.WallSec)
}

// ReportConfig echoes the parameters of the run.
type ReportConfig struct {
	URL      string  `json:"url"`
	AgentURL string  `json:"agent_url,omitempty"` // only when agents use another edge
	Users    int     `json:"users,omitempty"`
	Agents   int     `json:"agents,omitempty"`
	Convs    int     `json:"convs,omitempty"`
	Rate     float64 `json:"rate,omitempty"`
	Duration string  `json:"duration"`
	Mix      string  `json:"mix,omitempty"`
	Baseline string  `json:"baseline,omitempty"`
	Idle     int     `json:"idle,omitempty"`
	Sources  int     `json:"sources"`
}

// Host says where the harness ran.
type Host struct {
	CPUs int    `json:"cpus"`
	OS   string `json:"os"`
	Go   string `json:"go"`
}

func reportConfig(c Config) ReportConfig {
	rc := ReportConfig{URL: c.URL, Duration: c.Duration.String(), Sources: c.Sources, Idle: c.Idle}
	if c.AgentURL != c.URL {
		rc.AgentURL = c.AgentURL
	}
	if c.Idle == 0 {
		rc.Users, rc.Agents, rc.Convs, rc.Rate, rc.Mix, rc.Baseline = c.Users, c.Agents, c.Convs, c.Rate, c.Mix.String(), c.Baseline
	}
	return rc
}

func (r *Report) fillHost() {
	r.Host = Host{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	if r.Notes == nil {
		r.Notes = []string{}
	}
	if r.ErrorKinds == nil {
		r.ErrorKinds = map[string]int64{}
	}
}

// WriteTable prints the report for people.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	if r.Mode == "load" {
		p("latency (ms)\tn\tp50\tp90\tp99\tp99.9\tmax\tp50 ×echo\tp99 ×echo\t\n")
		row := func(name string, l Latency) {
			x50, x99 := "-", "-"
			if l.XBaseline != nil {
				x50, x99 = fmt.Sprintf("%.1f", l.XBaseline["p50"]), fmt.Sprintf("%.1f", l.XBaseline["p99"])
			}
			p("%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%s\t%s\t\n", name, l.N, l.P50, l.P90, l.P99, l.P999, l.Max, x50, x99)
		}
		row("user→agent", r.UserToAgentMs)
		row("agent→user", r.AgentToUserMs)
		row("ack", r.AckMs)
		row("bot reply", r.BotReplyMs)
		row("resume", r.ResumeMs)
		row("escalation", r.EscalationMs)
		row("queue wait", r.QueueWaitMs)
		row("echo baseline", r.Baseline)
		p("\t\t\t\t\t\t\t\t\t\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p = func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	if r.Mode == "load" {
		p("messages\t%d sent, %d acked, %.1f msgs/s over %.1f s (offered %g/s)\n", r.Sent, r.Acked, r.MsgsPerSec, r.DurationSec, r.Config.Rate)
		p("reconnects\t%d\n", r.Reconnects)
		e := r.Escalations
		p("escalations\t%d requested, %d assigned, %d answered, %d closed\n", e.Requested, e.Assigned, e.Answered, e.Closed)
		p("lost\t%d (acked but not stored %d, never delivered %d)\n", r.Lost, r.Check.LostAcked, r.Check.Undelivered)
		p("duplicated\t%d (stored twice %d, acked twice %d, delivered twice %d)\n", r.Duplicated, r.Check.DupStored, r.Check.DupAcked, r.Check.DupDelivered)
		p("checked\t%d conversations, %d messages stored, %d acked, %d seq gaps, %d unacked\n", r.Check.Conversations, r.Check.Stored, r.Check.Acked, r.Check.SeqGaps, r.Check.Unacked)
	} else {
		p("connections\t%d open, %d failed, %d dropped while held %.0f s\n", r.Connections, r.ConnectFailures, r.Dropped, r.Idle.HeldSec)
	}
	p("errors\t%d %s\n", r.Errors, kinds(r.ErrorKinds))
	p("connects/s\t%.1f\n", r.ConnectsPerSec)
	if r.CPU != nil {
		p("cpu\t%s\n", r.CPU.line())
	}
	p("server memory\t%d bytes RSS per connection (%s → %s for %d sockets)\n", r.RSSBytesPerConn, mib(r.ServerRSSBefore), mib(r.ServerRSSAfter), r.Connections)
	if r.Idle != nil {
		p("\theap %d, stacks %d bytes and %.1f goroutines per connection; RSS per connection after the hold %d\n",
			r.Idle.HeapInusePerConn, r.Idle.StackInusePerConn, r.Idle.GoroutinesPerConn, r.Idle.RSSPerConnHeld)
	}
	p("harness memory\t%s RSS\n", mib(r.HarnessRSS))
	for _, n := range r.Notes {
		p("note\t%s\n", n)
	}
	return tw.Flush()
}

func kinds(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
