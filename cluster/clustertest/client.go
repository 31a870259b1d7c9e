package clustertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// API calls node's REST API with token and decodes the answer into out
// (if not nil); it returns the HTTP status.
func API(t testing.TB, n *Node, method, path, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.URL(path), rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.Name, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return res.StatusCode
}

// mustAPI is API that fails the test on a status of 300 or more.
func mustAPI(t testing.TB, n *Node, method, path, token string, body, out any) {
	t.Helper()
	if st := API(t, n, method, path, token, body, out); st >= 300 {
		t.Fatalf("%s %s on %s: status %d", method, path, n.Name, st)
	}
}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	UserID      string `json:"user_id"`
	Staff       struct {
		ID string `json:"id"`
	} `json:"staff"`
}

// Visitor signs an anonymous visitor of tenant demo in through n and
// opens a conversation: it returns the token and the conversation id.
func Visitor(t testing.TB, n *Node) (token, conv string) {
	t.Helper()
	var tok tokenAnswer
	mustAPI(t, n, "POST", "/v1/auth/visitor", "", map[string]string{"tenant": "demo"}, &tok)
	var c struct {
		ID string `json:"id"`
	}
	mustAPI(t, n, "POST", "/v1/conversations", tok.AccessToken, nil, &c)
	return tok.AccessToken, c.ID
}

// StaffLogin signs a member of staff of tenant demo in through n.
func StaffLogin(t testing.TB, n *Node, username, password string) (token, id string) {
	t.Helper()
	var tok tokenAnswer
	mustAPI(t, n, "POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "username": username, "password": password}, &tok)
	return tok.AccessToken, tok.Staff.ID
}

// Agent creates an agent account (as the demo admin) with room for
// capacity conversations and signs it in: it returns the token and id.
func Agent(t testing.TB, n *Node, username string, capacity int) (token, id string) {
	t.Helper()
	admin, _ := StaffLogin(t, n, "admin", AdminPassword)
	password := username + "-password-1"
	var s struct {
		ID string `json:"id"`
	}
	mustAPI(t, n, "POST", "/v1/staff", admin, map[string]string{"username": username, "password": password, "display_name": username, "role": "agent"}, &s)
	mustAPI(t, n, "PUT", "/v1/agents/"+s.ID, admin, map[string]any{"capacity": capacity}, nil)
	return StaffLogin(t, n, username, password)
}

// Message is a stored message as frames carry it.
type Message struct {
	Conv        string `json:"conv"`
	Seq         int64  `json:"seq"`
	ClientMsgID string `json:"client_msg_id"`
	From        struct {
		Role string `json:"role"`
		ID   string `json:"id"`
	} `json:"from"`
	Body struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"body"`
}

// Frame is any server frame, with the fields the tests read.
type Frame struct {
	Type        string    `json:"type"`
	ID          string    `json:"id"`
	Code        string    `json:"code"`
	Conv        string    `json:"conv"`
	ClientMsgID string    `json:"client_msg_id"`
	Seq         int64     `json:"seq"`
	Dup         bool      `json:"dup"`
	State       string    `json:"state"`
	More        bool      `json:"more"`
	LastSeq     int64     `json:"last_seq"`
	Msg         Message   `json:"msg"`
	Messages    []Message `json:"messages"`
	Kind        string    `json:"kind"`
}

// Socket is a real WebSocket client whose reader goroutine queues every
// frame.
type Socket struct {
	t      testing.TB
	conn   *websocket.Conn
	frames chan Frame
	mu     sync.Mutex
	done   chan struct{}
}

// Dial opens path (/v1/ws/user or /v1/ws/agent) on n and says hello with
// token; it fails the test unless the server welcomes it.
func Dial(t testing.TB, n *Node, path, token string) *Socket {
	t.Helper()
	s, err := TryDial(n, path, token)
	if err != nil {
		t.Fatalf("dial %s on %s: %v", path, n.Name, err)
	}
	s.t = t
	t.Cleanup(s.Close)
	return s
}

// TryDial is Dial that returns the error instead of failing the test.
func TryDial(n *Node, path, token string) (*Socket, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial(n.WS(path), nil)
	if err != nil {
		return nil, err
	}
	s := &Socket{conn: conn, frames: make(chan Frame, 100000), done: make(chan struct{})}
	go s.read()
	if err := s.Send(map[string]any{"type": "hello", "v": 1, "token": token}); err != nil {
		conn.Close()
		return nil, err
	}
	f, ok := s.Next(func(f Frame) bool { return true }, 10*time.Second)
	if !ok || f.Type != "welcome" {
		conn.Close()
		return nil, fmt.Errorf("no welcome: %+v", f)
	}
	return s, nil
}

func (s *Socket) read() {
	defer close(s.done)
	for {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			return
		}
		var f Frame
		if json.Unmarshal(data, &f) == nil {
			s.frames <- f
		}
	}
}

// Send writes one frame.
func (s *Socket) Send(v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return s.conn.WriteJSON(v)
}

// Next returns the first queued frame that satisfies pred, dropping the
// others, or false after d or once the connection ended.
func (s *Socket) Next(pred func(Frame) bool, d time.Duration) (Frame, bool) {
	deadline := time.After(d)
	for {
		select {
		case f := <-s.frames:
			if pred(f) {
				return f, true
			}
		case <-s.done:
			select {
			case f := <-s.frames:
				if pred(f) {
					return f, true
				}
				continue
			default:
			}
			return Frame{}, false
		case <-deadline:
			return Frame{}, false
		}
	}
}

// Ended is closed when the connection is gone.
func (s *Socket) Ended() <-chan struct{} { return s.done }

// Close closes the connection.
func (s *Socket) Close() { s.conn.Close() }

// Resume pages conv's history after lastSeq until the last page and
// returns the messages; false if the socket ended or a page failed.
func (s *Socket) Resume(conv string, lastSeq int64) ([]Message, bool) {
	var out []Message
	for page := 0; ; page++ {
		id := fmt.Sprintf("resume-%s-%d-%d", conv, lastSeq, page)
		if s.Send(map[string]any{"type": "resume", "id": id, "conv": conv, "last_seq": lastSeq, "limit": 200}) != nil {
			return nil, false
		}
		f, ok := s.Next(func(f Frame) bool { return f.ID == id }, 15*time.Second)
		if !ok || f.Type != "history" {
			return nil, false
		}
		out = append(out, f.Messages...)
		if len(f.Messages) > 0 {
			lastSeq = f.Messages[len(f.Messages)-1].Seq
		}
		if !f.More {
			return out, true
		}
	}
}
