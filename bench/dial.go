package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fasthttp/websocket"
)

// Errors that explain why connections cannot be opened.
var (
	ErrFileLimit = errors.New("bench: too many open files (EMFILE/ENFILE) in the harness: raise `ulimit -n` (the harness tries up to the hard limit)")
	ErrNoPorts   = errors.New("bench: out of ephemeral ports (EADDRNOTAVAIL): raise -sources so connections spread over more 127.0.0.x addresses")
)

// dialer opens WebSockets to one Kefu, spreading them over loopback source
// addresses.
type dialer struct {
	wsBase      string // ws://host:port
	agentWSBase string // where agent sockets go; a cluster may have them on another edge
	sources     []net.IP
	d           websocket.Dialer
}

func newDialer(base, agentBase string, sources int, bufSize int) (*dialer, error) {
	dl := &dialer{wsBase: "ws" + strings.TrimPrefix(base, "http"), agentWSBase: "ws" + strings.TrimPrefix(agentBase, "http")}
	if sources > 1 {
		for i := 1; i <= sources; i++ {
			dl.sources = append(dl.sources, net.IPv4(127, 0, 0, byte(i)))
		}
	}
	dl.d = websocket.Dialer{
		HandshakeTimeout: 30 * time.Second,
		ReadBufferSize:   bufSize, WriteBufferSize: bufSize,
	}
	return dl, nil
}

// dial opens the endpoint path (/v1/ws/user or /v1/ws/agent) from source
// address number n (mod the sources), authenticates with token and, for an
// agent, sets its presence. It returns the connection and the welcome frame.
func (dl *dialer) dial(ctx context.Context, path, token, presence string, n int) (*websocket.Conn, welcome, error) {
	d := dl.d
	if len(dl.sources) > 0 {
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: dl.sources[n%len(dl.sources)]}, Timeout: 30 * time.Second}
		d.NetDialContext = nd.DialContext
	}
	base := dl.wsBase
	if path == "/v1/ws/agent" {
		base = dl.agentWSBase
	}
	conn, _, err := d.DialContext(ctx, base+path, nil)
	if err != nil {
		return nil, welcome{}, classifyDialErr(err)
	}
	var w welcome
	hello, _ := json.Marshal(map[string]any{"type": "hello", "v": 1, "token": token})
	_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := conn.WriteMessage(websocket.TextMessage, hello); err != nil {
		conn.Close()
		return nil, w, fmt.Errorf("bench: hello: %w", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, data, err := conn.ReadMessage()
	if err != nil {
		conn.Close()
		return nil, w, fmt.Errorf("bench: waiting for welcome: %w", err)
	}
	if err := json.Unmarshal(data, &w); err != nil || w.Type != "welcome" {
		conn.Close()
		return nil, w, fmt.Errorf("bench: hello refused: %.200s", data)
	}
	if presence != "" {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"presence","status":"`+presence+`"}`)); err != nil {
			conn.Close()
			return nil, w, fmt.Errorf("bench: presence: %w", err)
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, w, nil
}

type welcome struct {
	Type       string `json:"type"`
	RatePerSec int    `json:"rate_per_sec"`
	You        struct {
		ID string `json:"id"`
	} `json:"you"`
}

func classifyDialErr(err error) error {
	switch {
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return fmt.Errorf("%w: %v", ErrFileLimit, err)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%w: %v", ErrNoPorts, err)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("bench: the server refused or dropped the connection (is it running, and is its `ulimit -n` high enough?): %w", err)
	}
	return fmt.Errorf("bench: dial: %w", err)
}

// selfRSS is the harness's own resident memory in bytes (0 where unknown).
func selfRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
