package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/kefu-dev/kefu/config"
	"github.com/kefu-dev/kefu/engine"
)

// allowedOrigin is the one cross-site origin the bad-input server trusts.
const allowedOrigin = "https://shop.example"

// badInputConfig: a small frame limit, so an oversized frame is cheap to
// send, a short hello timeout, and one allowed browser origin. Rates and
// the flood limit keep their defaults (20/s, bursts of 40, 100 in a row).
func badInputConfig(t *testing.T) config.Config {
	cfg := testConfig(t.TempDir())
	cfg.WS.MaxFrameBytes = 4096
	cfg.WS.HelloTimeout = config.Duration(time.Second)
	cfg.HTTP.AllowedOrigins = []string{allowedOrigin}
	return cfg
}

// metric returns the value of one series (name{labels} exactly as exposed)
// on GET /metrics, or 0 if it is absent.
func (s *testServer) metric(t testing.TB, series string) float64 {
	t.Helper()
	resp, err := http.Get(s.url("/metrics"))
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

func closes(code int) string { return fmt.Sprintf("kefu_ws_closes_total{code=%q}", strconv.Itoa(code)) }

// probe is a well-behaved customer connection that checks, after every bad
// input, that the server still serves others.
type probe struct {
	s    *testServer
	c    *wsClient
	conv string
	n    int
}

func newProbe(t *testing.T, s *testServer) *probe {
	token, _ := s.visitor(t)
	p := &probe{s: s, conv: s.newConversation(t, token), c: dial(t, s, "/v1/ws/user", nil)}
	p.c.hello(token)
	return p
}

// check sends one message and wants its ack within a few seconds, and the
// server's health endpoint up.
func (p *probe) check(t *testing.T) {
	t.Helper()
	p.n++
	start := time.Now()
	if err := sendEach(p.c, p.conv, fmt.Sprintf("probe%d", p.n), 1); err != nil {
		t.Fatalf("a well-behaved client was not served: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a well-behaved client waited %v for its ack", d)
	}
	resp, err := http.Get(p.s.url("/healthz"))
	if err != nil {
		t.Fatalf("the server is down: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
}

// wsFrame is one frame a test client sends as it is, valid or not.
type wsFrame struct {
	binary bool
	data   []byte
}

func txt(s string) wsFrame   { return wsFrame{data: []byte(s)} }
func bin(s string) wsFrame   { return wsFrame{binary: true, data: []byte(s)} }
func obj(v any) wsFrame      { b, _ := json.Marshal(v); return wsFrame{data: b} }
func ping(id string) wsFrame { return obj(map[string]any{"type": "ping", "id": id}) }

func (c *wsClient) write(f wsFrame) {
	c.t.Helper()
	kind := websocket.TextMessage
	if f.binary {
		kind = websocket.BinaryMessage
	}
	if err := c.conn.WriteMessage(kind, f.data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// errorOrPong waits for the next error frame, or the pong echoing id.
func (c *wsClient) errorOrPong(id string) frame {
	c.t.Helper()
	return c.next(func(f frame) bool { return f.Type == "error" || (f.Type == "pong" && f.ID == id) }, "error or pong "+id)
}

// TestBadInput: every bad frame or handshake gets its documented error
// code or close code, and a well-behaved client keeps being served.
func TestBadInput(t *testing.T) {
	s := startServer(t, badInputConfig(t))
	p := newProbe(t, s)
	alice, _ := s.visitor(t)
	aliceConv := s.newConversation(t, alice)
	bob, _ := s.visitor(t)
	staff, _ := s.staffToken(t)
	send := func(conv any, clientMsgID any, body any) map[string]any {
		f := map[string]any{"type": "send", "id": "s1"}
		for k, v := range map[string]any{"conv": conv, "client_msg_id": clientMsgID, "body": body} {
			if v != nil {
				f[k] = v
			}
		}
		return f
	}
	text := map[string]string{"type": "text", "text": "你好"}
	operator := map[string]any{"$ne": nil}

	cases := []struct {
		name   string
		path   string // "": /v1/ws/user
		hello  string // a token to say hello with first, if any
		frames []wsFrame
		code   engine.Code // the error frame expected, if any
		id     string      // the id it echoes, if any
		cmid   string      // the client_msg_id it echoes, if any
		close  int         // the close code expected; 0: the connection stays open
	}{
		// Before hello.
		{name: "first frame not hello", frames: []wsFrame{ping("p1")}, code: engine.CodeUnauthenticated, id: "p1", close: 4001},
		{name: "first frame a send", frames: []wsFrame{obj(send(aliceConv, "m1", text))}, code: engine.CodeUnauthenticated, id: "s1", cmid: "m1", close: 4001},
		{name: "first frame not JSON", frames: []wsFrame{txt("hello?")}, code: engine.CodeBadFrame, close: 4001},
		{name: "first frame binary", frames: []wsFrame{bin(`{"type":"hello","v":1}`)}, code: engine.CodeBadFrame, close: 4001},
		{name: "hello without a token", frames: []wsFrame{obj(map[string]any{"type": "hello", "v": 1, "id": "h"})}, code: engine.CodeMissingField, id: "h", close: 4001},
		{name: "hello with a garbage token", frames: []wsFrame{obj(map[string]any{"type": "hello", "v": 1, "token": "garbage", "id": "h"})}, code: engine.CodeUnauthenticated, id: "h", close: 4001},
		{name: "hello with a tampered signature", frames: []wsFrame{obj(map[string]any{"type": "hello", "v": 1, "token": tamper(alice)})}, code: engine.CodeUnauthenticated, close: 4001},
		{name: "hello with a payload swapped under a valid signature", frames: []wsFrame{obj(map[string]any{"type": "hello", "v": 1, "token": swapPayload(alice, bob)})}, code: engine.CodeUnauthenticated, close: 4001},
		{name: "hello with an unsigned token", frames: []wsFrame{obj(map[string]any{"type": "hello", "v": 1, "token": unsigned(alice)})}, code: engine.CodeUnauthenticated, close: 4001},
		{name: "user token on the agent endpoint", path: "/v1/ws/agent", frames: []wsFrame{obj(map[string]any{"type": "hello", "v": 1, "token": alice})}, code: engine.CodeUnauthenticated, close: 4001},
		{name: "staff token on the user endpoint", frames: []wsFrame{obj(map[string]any{"type": "hello", "v": 1, "token": staff})}, code: engine.CodeUnauthenticated, close: 4001},
		{name: "hello v2", frames: []wsFrame{obj(map[string]any{"type": "hello", "v": 2, "token": alice, "id": "h"})}, code: engine.CodeVersion, id: "h", close: 4001},
		{name: "hello without v", frames: []wsFrame{obj(map[string]any{"type": "hello", "token": alice})}, code: engine.CodeVersion, close: 4001},
		{name: "no hello in time", close: 4001},

		// Frame-level violations after hello.
		{name: "oversized frame", hello: alice, frames: []wsFrame{txt(`{"type":"ping","pad":"` + strings.Repeat("x", 5000) + `"}`)}, close: 1009},
		{name: "invalid UTF-8", hello: alice, frames: []wsFrame{txt("{\"type\":\"ping\",\"id\":\"\xff\xfe\"}")}, close: 1007},
		{name: "invalid UTF-8 in a text body", hello: alice, frames: []wsFrame{txt("{\"type\":\"send\",\"conv\":\"" + aliceConv + "\",\"client_msg_id\":\"u1\",\"body\":{\"type\":\"text\",\"text\":\"\xc3\x28\"}}")}, close: 1007},
		{name: "invalid JSON", hello: alice, frames: []wsFrame{txt(`{"type":"ping",`)}, code: engine.CodeBadFrame},
		{name: "JSON that is not an object", hello: alice, frames: []wsFrame{txt(`[{"type":"ping"}]`)}, code: engine.CodeBadFrame},
		{name: "binary frame", hello: alice, frames: []wsFrame{bin(`{"type":"ping"}`)}, code: engine.CodeBadFrame},

		// Schema violations after hello: an error, and the socket stays.
		{name: "unknown type", hello: alice, frames: []wsFrame{obj(map[string]any{"type": "shout", "id": "u1"})}, code: engine.CodeUnknownType, id: "u1"},
		{name: "no type", hello: alice, frames: []wsFrame{obj(map[string]any{"id": "u2"})}, code: engine.CodeMissingField, id: "u2"},
		{name: "send without conv", hello: alice, frames: []wsFrame{obj(send(nil, "m1", text))}, code: engine.CodeMissingField, id: "s1", cmid: "m1"},
		{name: "send without client_msg_id", hello: alice, frames: []wsFrame{obj(send(aliceConv, nil, text))}, code: engine.CodeMissingField, id: "s1"},
		{name: "send without body", hello: alice, frames: []wsFrame{obj(send(aliceConv, "m1", nil))}, code: engine.CodeMissingField, id: "s1", cmid: "m1"},
		{name: "send with a blank text", hello: alice, frames: []wsFrame{obj(send(aliceConv, "m1", map[string]string{"type": "text", "text": " \n\t"}))}, code: engine.CodeMissingField, id: "s1", cmid: "m1"},
		{name: "send with an operator as conv", hello: alice, frames: []wsFrame{obj(send(operator, "m1", text))}, code: engine.CodeInvalidField, id: "s1"},
		{name: "resume with an operator as conv", hello: alice, frames: []wsFrame{obj(map[string]any{"type": "resume", "id": "r1", "conv": operator})}, code: engine.CodeInvalidField, id: "r1"},
		{name: "send with an operator as client_msg_id", hello: alice, frames: []wsFrame{obj(send(aliceConv, operator, text))}, code: engine.CodeInvalidField, id: "s1"},
		{name: "send with a path as conv", hello: alice, frames: []wsFrame{obj(send("../"+aliceConv, "m1", text))}, code: engine.CodeInvalidField, id: "s1", cmid: "m1"},
		{name: "client_msg_id with a space", hello: alice, frames: []wsFrame{obj(send(aliceConv, "m 1", text))}, code: engine.CodeInvalidField, id: "s1", cmid: "m 1"},
		{name: "image body", hello: alice, frames: []wsFrame{obj(send(aliceConv, "m1", map[string]string{"type": "image", "url": "https://x.example/a.png"}))}, code: engine.CodeUnsupportedBody, id: "s1", cmid: "m1"},
		{name: "system body", hello: alice, frames: []wsFrame{obj(send(aliceConv, "m1", map[string]string{"type": "system", "text": "you are admin now"}))}, code: engine.CodeUnsupportedBody, id: "s1", cmid: "m1"},
		{name: "unknown body type", hello: alice, frames: []wsFrame{obj(send(aliceConv, "m1", map[string]string{"type": "video"}))}, code: engine.CodeUnsupportedBody, id: "s1", cmid: "m1"},
		{name: "read seq 0", hello: alice, frames: []wsFrame{obj(map[string]any{"type": "read", "id": "r", "conv": aliceConv, "seq": 0})}, code: engine.CodeInvalidField, id: "r"},
		{name: "read ahead of the conversation", hello: alice, frames: []wsFrame{obj(map[string]any{"type": "read", "id": "r", "conv": aliceConv, "seq": 1000})}, code: engine.CodeSeqAhead, id: "r"},
		{name: "second hello", hello: alice, frames: []wsFrame{obj(map[string]any{"type": "hello", "v": 1, "token": bob, "id": "h2"})}, code: engine.CodeInvalidField, id: "h2"},

		// Another customer's conversation does not exist for bob.
		{name: "resume another customer's conversation", hello: bob, frames: []wsFrame{obj(map[string]any{"type": "resume", "id": "r", "conv": aliceConv})}, code: engine.CodeNotFound, id: "r"},
		{name: "send to another customer's conversation", hello: bob, frames: []wsFrame{obj(send(aliceConv, "b1", text))}, code: engine.CodeNotFound, id: "s1", cmid: "b1"},
		{name: "mark another customer's conversation read", hello: bob, frames: []wsFrame{obj(map[string]any{"type": "read", "id": "r", "conv": aliceConv, "seq": 1})}, code: engine.CodeNotFound, id: "r"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = "/v1/ws/user"
			}
			var before float64
			if tc.close != 0 {
				before = s.metric(t, closes(tc.close))
			}
			c := dial(t, s, path, nil)
			if tc.hello != "" {
				c.hello(tc.hello)
			}
			for _, f := range tc.frames {
				c.write(f)
			}
			if tc.code != "" {
				f := c.next(func(f frame) bool { return f.Type == "error" }, "error "+string(tc.code))
				if f.Code != string(tc.code) || f.ID != tc.id || f.ClientMsgID != tc.cmid {
					t.Fatalf("got %s, want code %s, id %q, client_msg_id %q", f.Raw, tc.code, tc.id, tc.cmid)
				}
			}
			if tc.close != 0 {
				if code := c.closeCode(); code != tc.close {
					t.Fatalf("closed with %d, want %d", code, tc.close)
				}
				eventually(t, closes(tc.close)+" counted", func() bool { return s.metric(t, closes(tc.close)) >= before+1 })
			} else {
				// The same connection still works, and said nothing else.
				c.write(ping("after"))
				if f := c.errorOrPong("after"); f.Type != "pong" {
					t.Fatalf("after the bad frame: %s", f.Raw)
				}
			}
			p.check(t)
		})
	}

	// Nothing bob tried reached alice's conversation.
	if msgs := s.history(t, alice, aliceConv); len(msgs) != 0 {
		t.Fatalf("alice's conversation has %d messages: %+v", len(msgs), msgs)
	}
}

// TestCrossCustomerIsolation: a customer's token cannot read, write, watch
// or signal another customer's conversation, and nothing leaks either way.
func TestCrossCustomerIsolation(t *testing.T) {
	s := startServer(t, badInputConfig(t))
	alice, aliceID := s.visitor(t)
	bob, _ := s.visitor(t)
	aliceConv := s.newConversation(t, alice)
	bobConv := s.newConversation(t, bob)

	a1 := dial(t, s, "/v1/ws/user", nil) // alice, following her conversation
	a1.hello(alice)
	a1.resumeAll(aliceConv, 0, 50)
	a2 := dial(t, s, "/v1/ws/user", nil) // alice's other device, writing
	a2.hello(alice)
	b := dial(t, s, "/v1/ws/user", nil)
	b.hello(bob)

	for _, f := range []map[string]any{
		{"type": "resume", "id": "x1", "conv": aliceConv},
		{"type": "send", "id": "x2", "conv": aliceConv, "client_msg_id": "b1", "body": map[string]string{"type": "text", "text": "我是 alice"}},
		{"type": "read", "id": "x3", "conv": aliceConv, "seq": 1},
	} {
		if f["type"] == "read" { // something to mark read
			a2.sendText(aliceConv, "a0", "第一条")
			a2.ack("a0")
		}
		b.send(map[string]any{"type": "typing", "conv": aliceConv, "on": true})
		b.send(f)
		got := b.next(func(g frame) bool {
			return g.Type == "error" || g.Type == "history" || g.Type == "ack" || g.Type == "read"
		}, "answer")
		if got.Type != "error" || got.Code != string(engine.CodeNotFound) || got.ID != f["id"] || got.Conv != aliceConv {
			t.Fatalf("bob's %s of alice's conversation: %s, want not_found", f["type"], got.Raw)
		}
	}

	// Alice writes: bob's session must not receive it (his resume above did
	// not subscribe him), and alice's follower must not have seen bob's
	// typing. Each frame below is ordered after the ones it checks.
	a2.sendText(aliceConv, "a1", "在吗")
	a2.ack("a1")
	for _, want := range []int64{1, 2} {
		f := a1.next(func(f frame) bool { return f.Type == "message" || f.Type == "typing" }, "alice's push")
		if f.Type != "message" || f.Msg.Seq != want || f.Msg.From.ID != aliceID {
			t.Fatalf("alice's follower got %s, want message %d", f.Raw, want)
		}
	}
	page := b.resumePage("own", bobConv, 0, 50)
	if page.Type != "history" {
		t.Fatalf("bob's own conversation: %s", page.Raw)
	}
	select {
	case f := <-b.frames:
		t.Fatalf("bob received %s", f.Raw)
	default:
	}
	if msgs := s.history(t, alice, aliceConv); len(msgs) != 2 || msgs[0].From.ID != aliceID || msgs[1].From.ID != aliceID {
		t.Fatalf("alice's history: %+v", msgs)
	}
}

// swapPayload returns a's header and signature around b's payload.
func swapPayload(a, b string) string {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	return pa[0] + "." + pb[1] + "." + pa[2]
}

// unsigned returns token with alg none and no signature.
func unsigned(token string) string {
	parts := strings.Split(token, ".")
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"k1"}`))
	return h + "." + parts[1] + "."
}

// TestFlood: a client sending far over the rate gets rate_limited errors
// and is closed with 4008 after flood_limit frames in a row over it.
//
// The client sends exactly as many pings as should close it, as fast as it
// can, and after that one at a time, each once the previous one was
// answered. Blasting more would leave frames unread when the server closes
// the socket, and a close with unread input is a TCP reset, which may
// destroy the close frame before the client reads it.
func TestFlood(t *testing.T) {
	cfg := badInputConfig(t)
	s := startServer(t, cfg)
	p := newProbe(t, s)
	token, _ := s.visitor(t)
	before := s.metric(t, closes(4008))
	c := dial(t, s, "/v1/ws/user", nil)
	c.hello(token) // takes one token of the burst
	sent := 0
	flood := func() bool {
		err := c.conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"type":"ping","id":"f%d"}`, sent)))
		if err == nil {
			sent++
		}
		return err == nil
	}
	for range cfg.WS.Burst - 1 + cfg.WS.FloodLimit {
		if !flood() {
			t.Fatalf("write %d failed: the server closed the socket too early", sent)
		}
	}
	p.check(t) // served while the flood is handled
	var pongs, limited int
	deadline := time.After(20 * time.Second)
	ended := false
	for !ended {
		if pongs+limited == sent && !flood() { // all answered: keep flooding
			break
		}
		select {
		case f := <-c.frames:
			switch {
			case f.Type == "pong":
				pongs++
			case f.Type == "error" && f.Code == string(engine.CodeRateLimited):
				limited++
			default:
				t.Fatalf("flooding client got %s", f.Raw)
			}
		case <-c.ended:
			ended = true
		case <-deadline:
			t.Fatalf("not closed after %d pings (%d pongs, %d rate_limited)", sent, pongs, limited)
		}
	}
	frames, code := c.drain()
	for _, f := range frames {
		if f.Type == "pong" {
			pongs++
		} else if f.Type == "error" && f.Code == string(engine.CodeRateLimited) {
			limited++
		} else {
			t.Fatalf("flooding client got %s", f.Raw)
		}
	}
	t.Logf("sent %d pings, got %d pongs and %d rate_limited errors", sent, pongs, limited)
	if code != 4008 {
		t.Fatalf("closed with %d, want 4008", code)
	}
	// The rest of the burst is answered, and every frame over the rate is
	// refused but the last, which closes the socket.
	if pongs < cfg.WS.Burst-1 || limited < cfg.WS.FloodLimit-1 || pongs+limited != sent-1 {
		t.Fatalf("%d pings: %d pongs and %d rate_limited errors, want at least %d and %d, one fewer in all",
			sent, pongs, limited, cfg.WS.Burst-1, cfg.WS.FloodLimit-1)
	}
	eventually(t, "4008 counted", func() bool { return s.metric(t, closes(4008)) >= before+1 })
	p.check(t)
}

// drain reads every frame until the server ends the connection and returns
// them with the close code (0: no close frame).
func (c *wsClient) drain() ([]frame, int) {
	c.t.Helper()
	var out []frame
	deadline := time.After(20 * time.Second)
	for {
		select {
		case f := <-c.frames:
			out = append(out, f)
		case <-c.ended:
			for {
				select {
				case f := <-c.frames:
					out = append(out, f)
				default:
					c.mu.Lock()
					defer c.mu.Unlock()
					if c.closed == nil {
						return out, 0
					}
					return out, c.closed.Code
				}
			}
		case <-deadline:
			c.t.Fatal("the server did not close the connection within 20s")
		}
	}
}

// TestSlowConsumer: a client that asks for a lot and never reads is
// disconnected (4009) once send_queue frames wait for it, while another
// client of the same conversation is served promptly.
func TestSlowConsumer(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.WS.SendQueue = 8
	cfg.WS.WriteTimeout = config.Duration(time.Second)
	cfg.WS.RatePerSec, cfg.WS.Burst = 1000, 1000
	s := startServer(t, cfg)
	owner, _ := s.visitor(t)
	staff, _ := s.staffToken(t)
	conv := s.newConversation(t, owner)
	filler := dial(t, s, "/v1/ws/user", nil)
	filler.hello(owner)
	// At most 4 acks in flight: with send_queue 8 a burst of acks could
	// itself trip the limit.
	fill(t, filler, conv, "big", 1, 100, 4, func(i int) string { return fmt.Sprintf("%03d ", i) + strings.Repeat("x", 3996) })

	before := s.metric(t, closes(4009))
	slow, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/v1/ws/agent", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	write := func(v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if err := slow.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatalf("slow client write: %v", err)
		}
	}
	write(map[string]any{"type": "hello", "v": 1, "token": staff})
	for i := range 60 { // 60 pages of about 400 KB each, never read
		write(map[string]any{"type": "resume", "id": fmt.Sprintf("r%d", i), "conv": conv, "last_seq": 0, "limit": 200})
	}

	// Meanwhile the same conversation serves its customer promptly.
	start := time.Now()
	if err := sendEach(filler, conv, "meanwhile", 1); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a send to the conversation took %v while a subscriber was stuck", d)
	}
	eventually(t, "the slow consumer closed with 4009", func() bool { return s.metric(t, closes(4009)) >= before+1 })

	// Reading again, the client finds its connection ended: whatever was
	// buffered, then a close or a reset, never a wait.
	_ = slow.SetReadDeadline(time.Now().Add(15 * time.Second))
	var frames int
	for {
		_, r, err := slow.NextReader()
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("after %d frames the connection is still open: %v", frames, err)
			}
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != 4009 {
				t.Fatalf("closed with %d, want 4009 (or no close frame)", ce.Code)
			}
			t.Logf("slow client: %d frames, then %v", frames, err)
			break
		}
		frames++
	}
	if frames > 8+60 { // the queue, plus what was written before it filled
		t.Fatalf("the slow client got %d frames", frames)
	}

	// And the server keeps serving everyone else.
	p := newProbe(t, s)
	p.check(t)
	if err := sendEach(filler, conv, "after", 1); err != nil {
		t.Fatal(err)
	}
}

// TestBadREST: the REST API answers bad requests with the documented
// status and {"error":{"code":…}}, and refuses cross-site staff requests.
func TestBadREST(t *testing.T) {
	s := startServer(t, badInputConfig(t))
	p := newProbe(t, s)
	user, _ := s.visitor(t)
	staff, _ := s.staffToken(t)
	own := "http://" + s.addr
	login := func(tenant, username, password any) string {
		b, _ := json.Marshal(map[string]any{"tenant": tenant, "username": username, "password": password})
		return string(b)
	}
	cases := []struct {
		name, method, path, token, origin, body string
		status                                  int
		code                                    engine.Code // "": success
	}{
		{"login with an operator as tenant", "POST", "/v1/auth/login", "", "", login(map[string]any{"$ne": nil}, "admin", adminPassword), 400, engine.CodeInvalidField},
		{"login with operators as credentials", "POST", "/v1/auth/login", "", "", login("demo", map[string]any{"$ne": nil}, map[string]any{"$gt": ""}), 400, engine.CodeInvalidField},
		{"login with a wrong password", "POST", "/v1/auth/login", "", "", login("demo", "admin", "wrong-password"), 401, engine.CodeUnauthenticated},
		{"login of an unknown user", "POST", "/v1/auth/login", "", "", login("demo", "nobody", adminPassword), 401, engine.CodeUnauthenticated},
		{"login of an unknown tenant", "POST", "/v1/auth/login", "", "", login("nope", "admin", adminPassword), 401, engine.CodeUnauthenticated},
		{"login with a JSON array", "POST", "/v1/auth/login", "", "", `["demo","admin"]`, 400, engine.CodeBadFrame},
		{"login that is not JSON", "POST", "/v1/auth/login", "", "", "tenant=demo&username=admin", 400, engine.CodeBadFrame},
		{"login with an over-long password", "POST", "/v1/auth/login", "", "", login("demo", "admin", strings.Repeat("p", 5000)), 400, engine.CodeInvalidField},
		{"login from a cross-site page", "POST", "/v1/auth/login", "", "https://evil.example", login("demo", "admin", adminPassword), 403, engine.CodeForbidden},
		{"login from the allowed origin", "POST", "/v1/auth/login", "", allowedOrigin, login("demo", "admin", adminPassword), 200, ""},
		{"visitor with an operator as tenant", "POST", "/v1/auth/visitor", "", "", `{"tenant":{"$ne":null}}`, 400, engine.CodeInvalidField},
		{"visitor of an unknown tenant", "POST", "/v1/auth/visitor", "", "", `{"tenant":"nope"}`, 404, engine.CodeNotFound},
		{"open a conversation with a staff token", "POST", "/v1/conversations", staff, "", "", 401, engine.CodeUnauthenticated},
		{"open a conversation without a token", "POST", "/v1/conversations", "", "", "", 401, engine.CodeUnauthenticated},
		{"open a conversation with a tampered token", "POST", "/v1/conversations", tamper(user), "", "", 401, engine.CodeUnauthenticated},
		{"list conversations with a user token", "GET", "/v1/conversations", user, "", "", 401, engine.CodeUnauthenticated},
		{"list conversations from a cross-site page", "GET", "/v1/conversations", staff, "https://evil.example", "", 403, engine.CodeForbidden},
		{"list conversations from a look-alike origin", "GET", "/v1/conversations", staff, allowedOrigin + ".evil.example", "", 403, engine.CodeForbidden},
		{"list conversations from the allowed origin", "GET", "/v1/conversations", staff, allowedOrigin, "", 200, ""},
		{"list conversations from the server's own origin", "GET", "/v1/conversations", staff, own, "", 200, ""},
		{"list conversations with an unknown state", "GET", "/v1/conversations?state=deleted", staff, "", "", 400, engine.CodeInvalidField},
		{"list conversations with limit 1000", "GET", "/v1/conversations?limit=1000", staff, "", "", 400, engine.CodeInvalidField},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, s.url(tc.path), body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var out struct {
				AccessToken string `json:"access_token"`
				Error       *struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(data, &out); err != nil {
				t.Fatalf("status %d, body %q is not JSON: %v", resp.StatusCode, data, err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, data, tc.status)
			}
			if tc.code == "" {
				if out.Error != nil {
					t.Fatalf("unexpected error %s", data)
				}
				return
			}
			if out.Error == nil || out.Error.Code != string(tc.code) || out.Error.Message == "" || out.AccessToken != "" {
				t.Fatalf("body %s, want error code %s and no token", data, tc.code)
			}
		})
	}

	t.Run("staff socket origins", func(t *testing.T) {
		for _, tc := range []struct {
			path, origin string
			allowed      bool
		}{
			{"/v1/ws/agent", "https://evil.example", false},
			{"/v1/ws/agent", allowedOrigin + ".evil.example", false},
			{"/v1/ws/agent", allowedOrigin, true},
			{"/v1/ws/agent", own, true},
			{"/v1/ws/agent", "", true},                    // not a browser
			{"/v1/ws/user", "https://evil.example", true}, // customers' pages live on any site
		} {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			conn, resp, err := websocket.DefaultDialer.Dial("ws://"+s.addr+tc.path, h)
			if !tc.allowed {
				if err == nil {
					conn.Close()
					t.Fatalf("%s with Origin %s: the upgrade was accepted", tc.path, tc.origin)
				}
				if resp == nil || resp.StatusCode != 403 {
					t.Fatalf("%s with Origin %s: %v (response %v), want 403", tc.path, tc.origin, err, resp)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s with Origin %q: %v", tc.path, tc.origin, err)
			}
			conn.Close()
		}
		// An allowed staff socket works end to end.
		h := http.Header{}
		h.Set("Origin", allowedOrigin)
		conn, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/v1/ws/agent", h)
		if err != nil {
			t.Fatal(err)
		}
		c := &wsClient{t: t, conn: conn, frames: make(chan frame, 100), ended: make(chan struct{})}
		go c.readLoop()
		defer conn.Close()
		c.hello(staff)
	})
	p.check(t)
}

// TestRESTBodyLimit: a request announcing a body over the REST limit is
// refused with 413 before its body is read.
func TestRESTBodyLimit(t *testing.T) {
	s := startServer(t, testConfig(t.TempDir()))
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/auth/login HTTP/1.1\r\nHost: kefu\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 9<<20)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, " 413 ") {
		t.Fatalf("status line %q, %v; want 413", status, err)
	}
}
