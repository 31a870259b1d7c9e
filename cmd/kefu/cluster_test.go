package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/cluster/clustertest"
	"github.com/kefu-dev/kefu/config"
	"github.com/kefu-dev/kefu/engine"
)

const testTokenSecret = "cluster-test-token-secret-0123456789"

// get answers the status of a GET and its body.
func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// noDataDir points the data directory at a path that does not exist,
// which a role that opens no store must leave so.
func noDataDir(t testing.TB, cfg *config.Config) {
	t.Helper()
	cfg.DataDir = filepath.Join(t.TempDir(), "never")
}

// TestRolesThroughEtcd: an actor node (role node, MongoDB) and an edge
// (role edge, no store) join through a real etcd; the node's HTTP serves
// its probes only; a customer's message travels through the edge to the
// conversation on the node and is stored there.
func TestRolesThroughEtcd(t *testing.T) {
	if raceEnabled {
		// Two protoactor members in one process: see
		// cluster.skipProtoactorRaces. The multi-process tests cover roles
		// under real processes.
		t.Skip("two members in one process: protoactor-go's own data races")
	}
	etcd := clustertest.StartEtcd(t)

	nodeCfg := testConfigMongo(t)
	nodeCfg.Role, nodeCfg.Cluster.Etcd, nodeCfg.Auth.TokenSecret = config.RoleNode, etcd, testTokenSecret
	var nodeLogs clustertest.SyncBuffer
	node := startServerLogger(t, nodeCfg, serveHooks{}, slog.New(slog.NewTextHandler(&nodeLogs, nil)))

	edgeCfg := testConfig("")
	noDataDir(t, &edgeCfg)
	edgeCfg.Role, edgeCfg.Cluster.Etcd, edgeCfg.Auth.TokenSecret = config.RoleEdge, etcd, testTokenSecret
	var edgeLogs clustertest.SyncBuffer
	edge := startServerLogger(t, edgeCfg, serveHooks{}, slog.New(slog.NewTextHandler(&edgeLogs, nil)))

	for _, tc := range []struct {
		logs *clustertest.SyncBuffer
		addr string
		want string
	}{{&nodeLogs, node.addr, "role=node"}, {&edgeLogs, edge.addr, "role=edge"}} {
		line := ""
		for _, l := range strings.Split(tc.logs.String(), "\n") {
			if strings.Contains(l, `msg="kefu is ready"`) {
				line = l
			}
		}
		if !strings.Contains(line, "http="+tc.addr) || !strings.Contains(line, tc.want) {
			t.Errorf("ready line %q: want http=%s and %s", line, tc.addr, tc.want)
		}
	}

	// The node's HTTP is its probes.
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/v1/auth/visitor": 404, "/workspace/": 404} {
		if code, _ := get(t, node.url(path)); code != want {
			t.Errorf("node GET %s: %d, want %d", path, code, want)
		}
	}
	if _, metrics := get(t, node.url("/metrics")); !strings.Contains(metrics, "kefu_") {
		t.Errorf("the node's /metrics has no kefu_ series")
	}
	if code, _ := get(t, edge.url("/readyz")); code != 200 {
		t.Errorf("edge /readyz: %d", code)
	}

	// A customer's message, through the edge, to the node.
	userToken, userID := edge.visitor(t)
	conv := edge.newConversation(t, userToken)
	user := dial(t, edge, "/v1/ws/user", nil)
	if w := user.hello(userToken); w.You.ID != userID {
		t.Fatalf("welcome: %s", w.Raw)
	}
	user.sendText(conv, "c1", "你好，我的包裹到哪了？")
	if ack := user.ack("c1"); ack.Seq != 1 {
		t.Fatalf("acked with seq %d", ack.Seq)
	}
	staffToken, _ := edge.staffToken(t)
	if msgs := edge.history(t, staffToken, conv); len(msgs) != 1 || msgs[0].ClientMsgID != "c1" || msgs[0].From.Role != engine.RoleUser {
		t.Fatalf("history through the edge: %+v", msgs)
	}
	// Pushes travel back from the node to the sessions on the edge.
	agent := dial(t, edge, "/v1/ws/agent", nil)
	agent.hello(staffToken)
	agent.resumeAll(conv, 0, 50)
	user.sendText(conv, "c2", "还在吗？")
	user.ack("c2")
	if f := agent.nextType("message"); f.Msg.ClientMsgID != "c2" || f.Msg.Seq != 2 {
		t.Fatalf("the agent's socket on the edge received %s", f.Raw)
	}
	if _, err := os.Stat(edgeCfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("the edge touched its data dir: %v", err)
	}
}

// TestEdgeNeedsTokenKeys: an edge opens no store, so without configured
// token keys it stops at once with a message naming the settings.
func TestEdgeNeedsTokenKeys(t *testing.T) {
	cfg := testConfig("")
	noDataDir(t, &cfg)
	cfg.Role, cfg.Cluster.Etcd = config.RoleEdge, []string{clustertest.ClosedEndpoint(t)}
	err := serve(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard, serveHooks{})
	if err == nil || !strings.Contains(err.Error(), "auth.token_secret or auth.token_keys") {
		t.Fatalf("serve = %v, want an error naming auth.token_secret or auth.token_keys", err)
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("the edge touched its data dir: %v", err)
	}
}

// TestJoiningIsNotReady: while the member cannot join (etcd down), the
// probes answer (/healthz 200, /readyz 503) and the API is refused (503);
// the start gives up at cluster.join_timeout with an error naming etcd,
// and a stop asked for meanwhile ends it cleanly.
func TestJoiningIsNotReady(t *testing.T) {
	down := clustertest.ClosedEndpoint(t)
	for _, stop := range []bool{false, true} {
		cfg := testConfig(t.TempDir())
		cfg.Cluster.Etcd, cfg.Cluster.JoinTimeout = []string{down}, config.Duration(3*time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		listening := make(chan string, 1)
		done := make(chan error, 1)
		var logs clustertest.SyncBuffer
		go func() {
			done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), io.Discard,
				serveHooks{onListen: func(addr string) { listening <- addr }})
		}()
		var addr string
		select {
		case addr = <-listening:
		case err := <-done:
			cancel()
			t.Fatalf("serve ended before listening: %v", err)
		}
		for path, want := range map[string]int{"/healthz": 200, "/readyz": 503, "/v1/auth/visitor": 503} {
			if code, body := get(t, "http://"+addr+path); code != want {
				t.Errorf("joining: GET %s: %d %s, want %d", path, code, body, want)
			}
		}
		if stop {
			cancel()
		}
		select {
		case err := <-done:
			switch {
			case stop && err != nil:
				t.Errorf("stopped while joining: %v, want a clean stop", err)
			case !stop && (err == nil || !strings.Contains(err.Error(), down)):
				t.Errorf("join timeout: %v, want an error naming %s", err, down)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("serve did not end within 10s")
		}
		cancel()
		if !stop && !strings.Contains(logs.String(), "etcd does not answer; retrying") {
			t.Errorf("the retries were not logged:\n%s", logs.String())
		}
	}
}
