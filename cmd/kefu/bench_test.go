package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// BenchmarkUserToAgentLatency measures the time from a user writing a
// message on its WebSocket to the agent's WebSocket receiving the push,
// through the real server with durable commits, at a fixed 1,000 msgs/s
// spread over 500 conversations (10 agents watching 50 each). b.N is the
// number of messages; run with -benchtime 5000x for a 5 s run. Sends follow
// a fixed schedule and latency counts from the scheduled instant, so a
// stalled server cannot hide its delay (no coordinated omission).
func BenchmarkUserToAgentLatency(b *testing.B) {
	const convs, agents, rate = 500, 10, 1000
	cfg := testConfig(b.TempDir())
	cfg.WS.RatePerSec, cfg.WS.Burst = 10000, 10000
	s := startServer(b, cfg)
	staffToken, _ := s.staffToken(b)

	type user struct {
		conn *websocket.Conn
		conv string
	}
	users := make([]user, convs)
	for i := range users {
		token, _ := s.visitor(b)
		users[i].conv = s.newConversation(b, token)
		users[i].conn = rawHello(b, s, "/v1/ws/user", token)
		go drain(users[i].conn) // acks
	}

	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	received := make(chan struct{}, b.N)
	for a := range agents {
		conn := rawHello(b, s, "/v1/ws/agent", staffToken)
		for i := a; i < convs; i += agents {
			resume, _ := json.Marshal(map[string]any{"type": "resume", "conv": users[i].conv})
			if err := conn.WriteMessage(websocket.TextMessage, resume); err != nil {
				b.Fatal(err)
			}
		}
		want := convs / agents
		for pages := 0; pages < want; { // wait until every subscription is live
			_, data, err := conn.ReadMessage()
			if err != nil {
				b.Fatal(err)
			}
			if strings.Contains(string(data), `"type":"history"`) {
				pages++
			}
		}
		go func() {
			var f struct {
				Type string `json:"type"`
				Msg  struct {
					ClientMsgID string `json:"client_msg_id"`
				} `json:"msg"`
			}
			for {
				_, data, err := conn.ReadMessage()
				if err != nil {
					return
				}
				now := time.Now()
				if json.Unmarshal(data, &f) != nil || f.Type != "message" {
					continue
				}
				sent, err := strconv.ParseInt(strings.SplitN(f.Msg.ClientMsgID, "-", 2)[0], 10, 64)
				if err != nil {
					continue
				}
				mu.Lock()
				lat = append(lat, now.Sub(time.Unix(0, sent)))
				mu.Unlock()
				received <- struct{}{}
			}
		}()
	}

	b.ResetTimer()
	start := time.Now()
	interval := time.Second / rate
	for i := range b.N {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d) // pacing the load generator, not synchronising a test
		}
		u := users[i%convs]
		frame := fmt.Sprintf(`{"type":"send","conv":%q,"client_msg_id":"%d-%d","body":{"type":"text","text":"我想问一下发货时间"}}`, u.conv, due.UnixNano(), i)
		if err := u.conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			b.Fatal(err)
		}
	}
	timeout := time.After(30 * time.Second)
	for range b.N {
		select {
		case <-received:
		case <-timeout:
			b.Fatalf("only %d of %d messages reached an agent", len(lat), b.N)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// rawHello dials and authenticates a plain connection whose frames the
// caller reads itself.
func rawHello(b testing.TB, s *testServer, path, token string) *websocket.Conn {
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	hello, _ := json.Marshal(map[string]any{"type": "hello", "v": 1, "token": token})
	if err := conn.WriteMessage(websocket.TextMessage, hello); err != nil {
		b.Fatal(err)
	}
	if _, data, err := conn.ReadMessage(); err != nil || !strings.Contains(string(data), `"welcome"`) {
		b.Fatalf("hello: %s %v", data, err)
	}
	return conn
}

func drain(conn *websocket.Conn) {
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return
		}
	}
}
