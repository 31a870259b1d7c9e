package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestBenchSmoke runs `kefu bench` for two seconds against the in-process
// server, with a reconnection share high enough that users drop and
// resume during the run, and escalations routed to agents. It checks the
// report's shape, that nothing was lost, duplicated or refused, that every
// escalation was answered and closed, and that the run's routing rule is
// gone; it asserts no timing.
func TestBenchSmoke(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.WS.RatePerSec, cfg.WS.Burst = 1000, 1000
	s := startServer(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code := runBench(ctx, []string{
		"-url", "http://" + s.addr, "-admin-password", adminPassword,
		"-convs", "20", "-users", "10", "-agents", "4", "-rate", "100", "-duration", "2s",
		"-mix", "user=2,agent=1,faq=1,escalate=0.5,reconnect=0.05", "-json",
	}, &out, &errOut)
	t.Log(errOut.String())
	if code != 0 {
		t.Fatalf("kefu bench exited %d:\n%s", code, out.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
	}
	for _, key := range []string{"user_to_agent_ms", "agent_to_user_ms", "ack_ms", "bot_reply_ms", "escalation_ms", "queue_wait_ms", "baseline_echo_ms"} {
		l, ok := rep[key].(map[string]any)
		if !ok {
			t.Errorf("%s missing", key)
			continue
		}
		for _, q := range []string{"n", "p50", "p90", "p99", "p999", "max"} {
			if _, ok := l[q]; !ok {
				t.Errorf("%s.%s missing", key, q)
			}
		}
	}
	for _, key := range []string{"msgs_per_sec", "errors", "lost", "duplicated", "rss_bytes_per_conn", "harness_rss_bytes"} {
		if _, ok := rep[key].(float64); !ok {
			t.Errorf("%s missing or not a number", key)
		}
	}
	for _, key := range []string{"errors", "lost", "duplicated"} {
		if v, _ := rep[key].(float64); v != 0 {
			t.Errorf("%s = %v, want 0\n%s", key, v, out.String())
		}
	}
	if n, _ := rep["acked"].(float64); n == 0 {
		t.Errorf("no message was acked:\n%s", out.String())
	}
	for _, key := range []string{"user_to_agent_ms", "agent_to_user_ms", "ack_ms", "queue_wait_ms", "baseline_echo_ms"} {
		if n, _ := rep[key].(map[string]any)["n"].(float64); n == 0 {
			t.Errorf("%s recorded nothing", key)
		}
	}
	// The server here is this test process, so server_s and harness_s both
	// measure the same process (and machine_share counts it twice): only
	// their presence is checked.
	cpu, _ := rep["cpu"].(map[string]any)
	for _, key := range []string{"server_s", "harness_s", "wall_s", "cores", "server_us_per_msg", "harness_us_per_msg", "machine_share"} {
		if v, _ := cpu[key].(float64); v <= 0 {
			t.Errorf("cpu.%s = %v, want > 0", key, cpu[key])
		}
	}
	// 200 events, one escalation in nine.
	esc, _ := rep["escalations"].(map[string]any)
	if esc["requested"] != 22.0 || esc["assigned"] != 22.0 || esc["answered"] != 22.0 || esc["closed"] != 22.0 {
		t.Errorf("escalations = %v, want 22 requested, assigned, answered and closed", esc)
	}
	token, _ := s.staffToken(t)
	var settings struct {
		Rules []struct{ Group string } `json:"rules"`
	}
	if code := s.api(t, "GET", "/v1/settings", token, nil, &settings); code != 200 || len(settings.Rules) != 0 {
		t.Errorf("settings after the run: status %d, rules %+v; want the run's rule removed", code, settings.Rules)
	}
}

// TestBenchIdleSmoke opens a few idle sockets from two source addresses.
func TestBenchIdleSmoke(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s := startServer(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code := runBench(ctx, []string{
		"-url", "http://" + s.addr, "-idle", "200", "-sources", "2", "-duration", "1s", "-json",
	}, &out, &errOut)
	t.Log(errOut.String())
	if code != 0 {
		t.Fatalf("kefu bench -idle exited %d:\n%s", code, out.String())
	}
	var rep struct {
		Mode            string  `json:"mode"`
		Connections     int     `json:"connections"`
		ConnectsPerSec  float64 `json:"connects_per_sec"`
		RSSBytesPerConn *int64  `json:"rss_bytes_per_conn"`
		Errors          int64   `json:"errors"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
	}
	if rep.Mode != "idle" || rep.Connections != 200 || rep.ConnectsPerSec <= 0 || rep.RSSBytesPerConn == nil || rep.Errors != 0 {
		t.Errorf("unexpected idle report:\n%s", out.String())
	}
}
