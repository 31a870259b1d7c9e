package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/kefu-dev/kefu/config"
	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/mongo/mongotest"
	"github.com/kefu-dev/kefu/store/sealed"
)

// TestMain stops the FerretDB the Mongo runs share.
func TestMain(m *testing.M) {
	code := m.Run()
	mongotest.StopShared()
	os.Exit(code)
}

const adminPassword = "admin-password-1"

// testServer is Kefu running in-process through the real wiring, on a
// random port with its data in a temp dir.
type testServer struct {
	addr   string
	dir    string
	cancel context.CancelFunc
	done   chan error
}

func testConfig(dir string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Bootstrap.AdminPassword = adminPassword
	cfg.Log.Level = "warn"
	// The engine's tests count messages exactly; bot tests switch it on.
	cfg.Bot.Enabled = false
	// Every test client comes from 127.0.0.1: the per-address limits are
	// for the attack tests (security_test.go) to set.
	cfg.Limits.AuthPerIPPerMinute, cfg.Limits.APIPerIPPerSecond = 100000, 100000
	cfg.Limits.LoginPerAccountPerMinute, cfg.Limits.APIPerAccountPerSecond = 100000, 100000
	return cfg
}

// testConfigMongo is testConfig with the store on MongoDB: the shared
// FerretDB (or KEFU_TEST_MONGO_URI) and a database of the test's own,
// dropped when it ends.
func testConfigMongo(t testing.TB) config.Config {
	t.Helper()
	srv := mongotest.Shared(t)
	// A data dir that cannot be created: had the server fallen back to
	// SQLite, it would not start.
	blocker := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(filepath.Join(blocker, "data"))
	cfg.Store.MongoURI = srv.URI
	cfg.Store.MongoDatabase = srv.Database(t)
	cfg.Encryption.MasterKey = sealed.NewMasterKey() // required with MongoDB
	return cfg
}

// forEachStore runs test once on SQLite and once on MongoDB, as subtests,
// each with a fresh configuration.
func forEachStore(t *testing.T, test func(t *testing.T, cfg config.Config)) {
	t.Run("sqlite", func(t *testing.T) { test(t, testConfig(t.TempDir())) })
	t.Run("mongo", func(t *testing.T) { test(t, testConfigMongo(t)) })
}

func startServer(t testing.TB, cfg config.Config) *testServer {
	t.Helper()
	return startServerClock(t, cfg, nil)
}

// startServerClock starts a server whose actors and timer scheduler tell
// the time by clock (nil: the wall clock).
func startServerClock(t testing.TB, cfg config.Config, clock engine.Clock) *testServer {
	t.Helper()
	return startServerHooks(t, cfg, serveHooks{clock: clock}, nil)
}

// startServerHooks starts a server with hooks (the harness sets onReady).
// Its warnings and errors go to the test log; watch, if set, sees every
// record it logs, at any level.
func startServerHooks(t testing.TB, cfg config.Config, hooks serveHooks, watch func(slog.Record)) *testServer {
	t.Helper()
	var logs slog.Handler = slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})
	if watch != nil {
		logs = watchHandler{Handler: logs, watch: watch}
	}
	return startServerLogger(t, cfg, hooks, slog.New(logs))
}

// startServerLogger starts a server with hooks whose logs go to logger.
func startServerLogger(t testing.TB, cfg config.Config, hooks serveHooks, logger *slog.Logger) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{dir: cfg.DataDir, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	hooks.onReady = func(addr string) { ready <- addr }
	go func() {
		s.done <- serve(ctx, cfg, logger, io.Discard, hooks)
	}()
	select {
	case s.addr = <-ready:
	case err := <-s.done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("server did not start within 60s")
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// watchHandler hands every record to watch, and those its Handler takes
// to it.
type watchHandler struct {
	slog.Handler
	watch func(slog.Record)
}

func (h watchHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h watchHandler) Handle(ctx context.Context, r slog.Record) error {
	h.watch(r)
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h watchHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return watchHandler{Handler: h.Handler.WithAttrs(attrs), watch: h.watch}
}

func (h watchHandler) WithGroup(name string) slog.Handler {
	return watchHandler{Handler: h.Handler.WithGroup(name), watch: h.watch}
}

// stop shuts the server down gracefully and waits; it may be called twice.
func (s *testServer) stop(t testing.TB) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("server stopped with error: %v", err)
		}
	case <-time.After(60 * time.Second):
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Fatalf("server did not stop within 60s; its goroutines:\n%s", stacks.String())
	}
}

// testWriter sends server logs to the test log, but only while the test runs.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a log line after the test ended
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (s *testServer) url(path string) string { return "http://" + s.addr + path }

// api calls the REST API and decodes the JSON answer into out.
func (s *testServer) api(t testing.TB, method, path, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url(path), rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

type tokenResp struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	UserID       string `json:"user_id"`
	Staff        struct {
		ID string `json:"id"`
	} `json:"staff"`
}

func (s *testServer) staffToken(t testing.TB) (token, id string) {
	t.Helper()
	var r tokenResp
	if code := s.api(t, "POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "username": "admin", "password": adminPassword}, &r); code != 200 {
		t.Fatalf("login: status %d", code)
	}
	return r.AccessToken, r.Staff.ID
}

func (s *testServer) visitor(t testing.TB) (token, userID string) {
	t.Helper()
	var r tokenResp
	if code := s.api(t, "POST", "/v1/auth/visitor", "", map[string]string{"tenant": "demo"}, &r); code != 200 {
		t.Fatalf("visitor: status %d", code)
	}
	return r.AccessToken, r.UserID
}

func (s *testServer) newConversation(t testing.TB, userToken string) string {
	t.Helper()
	var c engine.Conversation
	if code := s.api(t, "POST", "/v1/conversations", userToken, nil, &c); code != 201 {
		t.Fatalf("create conversation: status %d", code)
	}
	return c.ID
}

type historyResp struct {
	Messages []engine.Message `json:"messages"`
	More     bool             `json:"more"`
	LastSeq  int64            `json:"last_seq"`
}

// history pages through the whole REST history of a conversation.
func (s *testServer) history(t testing.TB, token, conv string) []engine.Message {
	t.Helper()
	var all []engine.Message
	after := int64(0)
	for {
		var page historyResp
		path := fmt.Sprintf("/v1/conversations/%s/messages?after_seq=%d&limit=200", conv, after)
		if code := s.api(t, "GET", path, token, nil, &page); code != 200 {
			t.Fatalf("history: status %d", code)
		}
		all = append(all, page.Messages...)
		if !page.More {
			return all
		}
		after = page.Messages[len(page.Messages)-1].Seq
	}
}

// frame is any server frame, decoded loosely.
type frame struct {
	Type        string           `json:"type"`
	ID          string           `json:"id"`
	Code        string           `json:"code"`
	Message     string           `json:"message"`
	Conv        string           `json:"conv"`
	ClientMsgID string           `json:"client_msg_id"`
	Seq         int64            `json:"seq"`
	Dup         bool             `json:"dup"`
	Msg         engine.Message   `json:"msg"`
	Messages    []engine.Message `json:"messages"`
	More        bool             `json:"more"`
	LastSeq     int64            `json:"last_seq"`
	On          bool             `json:"on"`
	By          engine.Party     `json:"by"`
	From        engine.Party     `json:"from"`
	You         engine.Party     `json:"you"`
	// Human takeover frames.
	State     engine.ConvState `json:"state"`
	AgentID   string           `json:"agent_id"`
	Reason    string           `json:"reason"`
	Group     string           `json:"group"`
	Invited   []string         `json:"invited"`
	Op        string           `json:"op"`
	Kind      string           `json:"kind"`
	Text      string           `json:"text"`
	Position  int              `json:"position"`
	EtaMs     int64            `json:"eta_ms"`
	Available bool             `json:"available"`
	Presence  string           `json:"presence"`
	Capacity  int              `json:"capacity"`
	Load      int              `json:"load"`
	Convs     []string         `json:"convs"`
	Note      *engine.Note     `json:"note"`
	Summary   string           `json:"summary"`
	Rating    *engine.Rating   `json:"rating"`
	Raw       string           `json:"-"`
}

// wsClient is a real WebSocket client with a reader goroutine that queues
// every frame it receives.
type wsClient struct {
	t      testing.TB
	conn   *websocket.Conn
	frames chan frame
	mu     sync.Mutex
	closed *websocket.CloseError // the close frame, once the connection ended
	ended  chan struct{}
}

func dial(t testing.TB, s *testServer, path string, header http.Header) *wsClient {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+s.addr+path, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", path, err, status)
	}
	c := &wsClient{t: t, conn: conn, frames: make(chan frame, 10000), ended: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(func() { conn.Close() })
	return c
}

func (c *wsClient) readLoop() {
	defer close(c.ended)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			c.mu.Lock()
			if ce, ok := err.(*websocket.CloseError); ok {
				c.closed = ce
			}
			c.mu.Unlock()
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			f.Type = "undecodable"
		}
		f.Raw = string(data)
		c.frames <- f
	}
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *wsClient) sendRaw(data []byte) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next returns the next frame matching pred, discarding others, or fails
// after the deadline.
func (c *wsClient) next(pred func(frame) bool, what string) frame {
	c.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case f := <-c.frames:
			if pred(f) {
				return f
			}
		case <-deadline:
			c.t.Fatalf("no %s within 15s", what)
		}
	}
}

func (c *wsClient) nextType(typ string) frame {
	c.t.Helper()
	return c.next(func(f frame) bool { return f.Type == typ }, typ+" frame")
}

// closeCode waits for the server to end the connection and returns the
// close code it sent (0 if it dropped the connection without one).
func (c *wsClient) closeCode() int {
	c.t.Helper()
	go func() { // keep draining so the reader reaches the close frame
		for {
			select {
			case <-c.frames:
			case <-c.ended:
				return
			}
		}
	}()
	select {
	case <-c.ended:
	case <-time.After(20 * time.Second):
		c.t.Fatal("the server did not close the connection within 20s")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed == nil {
		return 0
	}
	return c.closed.Code
}

// hello authenticates and returns the welcome frame.
func (c *wsClient) hello(token string) frame {
	c.t.Helper()
	c.send(map[string]any{"type": "hello", "v": 1, "token": token})
	f := c.next(func(f frame) bool { return f.Type == "welcome" || f.Type == "error" }, "welcome")
	if f.Type != "welcome" {
		c.t.Fatalf("hello refused: %s", f.Raw)
	}
	return f
}

func (c *wsClient) sendText(conv, clientMsgID, text string) {
	c.t.Helper()
	c.send(map[string]any{"type": "send", "conv": conv, "client_msg_id": clientMsgID, "body": map[string]string{"type": "text", "text": text}})
}

// ack waits for the ack (or error) of clientMsgID.
func (c *wsClient) ack(clientMsgID string) frame {
	c.t.Helper()
	f := c.next(func(f frame) bool {
		return (f.Type == "ack" || f.Type == "error") && f.ClientMsgID == clientMsgID
	}, "ack of "+clientMsgID)
	if f.Type != "ack" {
		c.t.Fatalf("send %s refused: %s", clientMsgID, f.Raw)
	}
	return f
}

// resumeAll pages from lastSeq to the end and returns every message.
func (c *wsClient) resumeAll(conv string, lastSeq int64, limit int) (msgs []engine.Message, pages int) {
	c.t.Helper()
	for {
		id := fmt.Sprintf("r%d", pages)
		c.send(map[string]any{"type": "resume", "id": id, "conv": conv, "last_seq": lastSeq, "limit": limit})
		f := c.next(func(f frame) bool { return (f.Type == "history" || f.Type == "error") && f.ID == id }, "history page")
		if f.Type != "history" {
			c.t.Fatalf("resume refused: %s", f.Raw)
		}
		pages++
		msgs = append(msgs, f.Messages...)
		if !f.More {
			return msgs, pages
		}
		lastSeq = f.Messages[len(f.Messages)-1].Seq
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
