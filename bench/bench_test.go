package bench

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    Mix
		wantErr bool
	}{
		{"", DefaultMix, false},
		{"user=3,agent=1", Mix{User: 3, Agent: 1}, false},
		{"3:1", Mix{User: 3, Agent: 1, Reconnect: DefaultMix.Reconnect}, false},
		{"user=1,agent=1,faq=0.5,reconnect=0.01", Mix{User: 1, Agent: 1, FAQ: 0.5, Reconnect: 0.01}, false},
		{"user=1,resume=0.1", Mix{User: 1, Reconnect: 0.1}, false},
		{"user=1,escalate=1", Mix{User: 1, Escalate: 1}, false},
		{"escalate=1", Mix{Escalate: 1}, false},
		{"user=0,agent=0", Mix{}, true},
		{"user=-1", Mix{}, true},
		{"bogus=1", Mix{}, true},
		{"user=1,reconnect=2", Mix{}, true},
		{"a:b", Mix{}, true},
	}
	for _, tt := range tests {
		got, err := ParseMix(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseMix(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("ParseMix(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	if m, err := ParseMix(DefaultMix.String()); err != nil || m != DefaultMix {
		t.Errorf("String does not round-trip: %+v %v", m, err)
	}
}

func TestMsgIDRoundTrip(t *testing.T) {
	r := &runner{tag: "babcdef01"}
	id := r.msgID(123456789, 59*time.Second+123*time.Microsecond)
	if len(id) > 64 {
		t.Fatalf("client_msg_id %q is longer than 64", id)
	}
	n, due, ok := parseMsgID(r.tag, id)
	if !ok || n != 123456789 || due != 59*time.Second+123*time.Microsecond {
		t.Errorf("parseMsgID(%q) = %d %v %v", id, n, due, ok)
	}
	if _, _, ok := parseMsgID("bother", id); ok {
		t.Error("an id of another run was accepted")
	}
}

func msg(seq int64, id, role string) message {
	m := message{Seq: seq, ClientMsgID: id}
	m.From.Role = role
	return m
}

// TestCheckFindsLossAndDuplicates feeds the end-of-run check histories
// that break each promise once and expects each to be counted.
func TestCheckFindsLossAndDuplicates(t *testing.T) {
	l := newLedger()
	l.ack("c", "u1", 1)
	l.ack("c", "a1", 2)
	l.ack("c", "u2", 3) // acked but missing from the history below: lost
	l.ack("c", "u9", 2) // a second id for seq 2: duplicated
	user, agent := &view{}, &view{}
	agent.grow(5)
	user.grow(5)
	agent.recv[1] = 1 // u1 reached the agent once
	user.recv[2] = 2  // a1 was pushed to the user twice
	agent.recv[5] = 0 // u5 never reached the agent
	hist := []message{msg(1, "u1", "user"), msg(2, "a1", "agent"), msg(4, "u4", "user"), msg(5, "u4", "user")}
	agent.recv[4] = 1
	var ck Check
	l.checkConversation(&ck, "c", hist, map[string]*view{"user": user, "agent": agent})
	ck.DupAcked = l.conflicts
	want := Check{Conversations: 1, Stored: 4, Acked: 4, LostAcked: 2, Undelivered: 1, DupStored: 1, DupAcked: 1, DupDelivered: 1, SeqGaps: 1}
	if ck != want {
		t.Errorf("check = %+v\nwant    %+v", ck, want)
	}
	if ck.lost() != 3 || ck.duplicated() != 3 {
		t.Errorf("lost %d, duplicated %d", ck.lost(), ck.duplicated())
	}
}

func TestViewDelivered(t *testing.T) {
	var v view
	v.markKnown(2)
	if v.delivered != 0 {
		t.Fatalf("delivered %d with seq 1 missing", v.delivered)
	}
	v.markKnown(1)
	v.markKnown(3)
	if v.delivered != 3 {
		t.Fatalf("delivered = %d, want 3", v.delivered)
	}
}

func TestHistogramSummary(t *testing.T) {
	h := newHistogram()
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond / 10)
	}
	s := h.summary()
	if s.N != 1000 || s.P50 < 49 || s.P50 > 51 || s.Max < 99.9 || s.Max > 100.1 {
		t.Errorf("summary = %+v", s)
	}
	base := Latency{N: 1, P50: 10, P99: 20}
	s.relativeTo(base)
	if s.XBaseline["p50"] != 5 {
		t.Errorf("x_baseline = %v", s.XBaseline)
	}
}

func TestConfigDefaultsAndLimits(t *testing.T) {
	c := Config{Idle: 100000}
	if err := c.setDefaults(); err != nil || c.Sources != 4 {
		t.Errorf("idle 100000: sources %d, err %v", c.Sources, err)
	}
	bad := []Config{{Users: 10, Convs: 5}, {Agents: 20, Convs: 10}, {Baseline: "sometimes"}, {URL: "ftp://x"}, {Idle: 10, Sources: 300}}
	for _, c := range bad {
		if err := c.setDefaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c = Config{Convs: 100, Users: 50, Agents: 10, Rate: 100, Mix: Mix{User: 1, Agent: 1}}
	_ = c.setDefaults()
	if u, a := c.perConnRates(); u != 1 || a != 5 {
		t.Errorf("per-connection rates %v %v", u, a)
	}
}

// TestEscalationSchedule: escalations are spread evenly over the schedule
// and counted before the load, one pool conversation each.
func TestEscalationSchedule(t *testing.T) {
	c := Config{Rate: 100, Duration: time.Second, Mix: Mix{User: 2, Agent: 1, Escalate: 1}}
	if err := c.setDefaults(); err != nil {
		t.Fatal(err)
	}
	var at []int64
	for k := int64(0); c.offset(k) < c.Duration; k++ {
		if c.isEscalation(k) {
			at = append(at, k)
		}
	}
	if len(at) != 25 || c.escalations() != 25 {
		t.Fatalf("%d escalations at %v (escalations() = %d), want 25", len(at), at, c.escalations())
	}
	for i, k := range at {
		if k != int64(4*i+3) {
			t.Fatalf("escalations at %v, want every fourth event", at)
		}
	}
	c.Mix = Mix{User: 1}
	if n := c.escalations(); n != 0 {
		t.Errorf("%d escalations without escalate in the mix", n)
	}
}

// TestEscalationAnswered: the routed agent's answer counts once, whether it
// comes live or in a history page, and only a live one is timed.
func TestEscalationAnswered(t *testing.T) {
	r := &runner{tag: "b01234567", errs: &counter{}, escH: newHistogram(), a2uH: newHistogram()}
	r.esc = newEscalations(nil)
	user := newClient(r, 0, roleUser, "")
	live, paged := user.follow("c1"), user.follow("c2")
	live.escalation, paged.escalation = true, true
	answer := msg(1, r.msgID(7, time.Second), roleAgent)
	user.onStored(live, answer, 3*time.Second, true)
	user.onStored(live, answer, 4*time.Second, false) // the same answer in a later page
	user.onStored(paged, answer, 3*time.Second, false)
	if n := r.esc.answered.Load(); n != 2 {
		t.Errorf("answered = %d, want 2", n)
	}
	if s := r.escH.summary(); s.N != 1 || s.Max < 1999 || s.Max > 2001 {
		t.Errorf("escalation_ms = %+v, want one of 2000 ms", s)
	}
	if n := r.a2uH.summary().N; n != 0 {
		t.Errorf("the answer was timed as agent→user too")
	}
}

// TestSendFrameIsValid checks the hand-built send frames against the
// server's own decoder.
func TestSendFrameIsValid(t *testing.T) {
	r := &runner{tag: "b01234567", errs: &counter{}}
	for _, role := range []string{roleUser, roleAgent} {
		for _, kind := range []eventKind{evSend, evFAQ} {
			c := newClient(r, 0, role, "")
			v := c.follow("01JD3Q8ZK7M2B5X9V4C6N1P0RT")
			var err error = errSocketGone // not connected: the frame is only built and kept
			for n := int64(0); n < 7; n++ {
				c.send(event{kind: kind, view: v, n: n, due: time.Duration(n) * time.Millisecond}, &err)
			}
			for id, p := range c.pending {
				f, derr := engine.DecodeClientFrame(p.frame)
				if derr != nil || f.Type != engine.FrameSend || f.ClientMsgID != id || f.Conv != v.conv || f.Body == nil || f.Body.Text == "" {
					t.Errorf("frame %s: %+v %v", p.frame, f, derr)
				}
			}
		}
	}
	conv := "01JD3Q8ZK7M2B5X9V4C6N1P0RT"
	if f, err := engine.DecodeClientFrame(escalateFrame(conv)); err != nil || f.Type != engine.FrameEscalate || f.Conv != conv {
		t.Errorf("escalate frame: %+v %v", f, err)
	}
	if f, err := engine.DecodeClientFrame(closeFrame(conv)); err != nil || f.Type != engine.FrameClose || f.Conv != conv || f.ID != "" {
		t.Errorf("close frame: %+v %v", f, err)
	}
}

// TestCPUFigures derives the cpu figures from raw CPU seconds and checks
// the table's line, with a figure unknown too.
func TestCPUFigures(t *testing.T) {
	c := newCPU(2.64, 0.84, 10, 2, 10000)
	want := CPU{ServerSec: 2.64, HarnessSec: 0.84, WallSec: 10, Cores: 2, ServerUsPerMsg: 264, HarnessUsPerMsg: 84, MachineShare: 0.174}
	if *c != want {
		t.Errorf("newCPU = %+v\nwant     %+v", *c, want)
	}
	if got, want := c.line(), "server 264 µs/msg, harness 84 µs/msg (0.26 + 0.08 of 2 cores, 17% of the machine, over 10.0 s)"; got != want {
		t.Errorf("line = %q\nwant   %q", got, want)
	}
	if c := newCPU(1, 1, 1, 2, 0); c.ServerUsPerMsg != 0 || c.HarnessUsPerMsg != 0 || c.MachineShare != 1 {
		t.Errorf("nothing acked: %+v", *c)
	}

	t0 := time.Unix(1000, 0)
	before := cpuSample{at: t0, server: 5, harness: time.Second, harnessOK: true}
	after := cpuSample{at: t0.Add(4 * time.Second), server: 9, harness: 3 * time.Second, harnessOK: true}
	c, notes := cpuFigures(before, after, 1000)
	if c.ServerSec != 4 || c.HarnessSec != 2 || c.WallSec != 4 || c.ServerUsPerMsg != 4000 || len(notes) != 0 {
		t.Errorf("cpuFigures = %+v %q", *c, notes)
	}
	after.serverErr = errors.New("no process_cpu_seconds_total")
	c, notes = cpuFigures(before, after, 1000)
	if c.ServerSec != 0 || c.ServerUsPerMsg != 0 || c.MachineShare != 0 || c.HarnessSec != 2 || len(notes) != 1 {
		t.Errorf("server unknown: %+v %q", *c, notes)
	}
	if line := c.line(); !strings.HasPrefix(line, "server - µs/msg, harness 2000 µs/msg (- + ") || !strings.Contains(line, "- of the machine") {
		t.Errorf("server unknown: line %q", line)
	}
}
