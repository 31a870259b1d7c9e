package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/kefu-dev/kefu/config"
)

// TestSocketFramesSentWithTheUpgrade: a client that sends its first
// frames in the same write as the upgrade request, before the 101, loses
// none of them. The edge takes them out of fasthttp's buffered reader
// before it lets go of it (edge/upgrade.go); over TLS they may also wait
// in the TLS connection's own buffer.
func TestSocketFramesSentWithTheUpgrade(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[useTLS], func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			if useTLS {
				cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile = selfSignedCert(t)
			}
			s := startServer(t, cfg)
			hc := http.DefaultClient
			scheme := "http://"
			if useTLS {
				hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
				scheme = "https://"
			}
			resp, err := hc.Post(scheme+s.addr+"/v1/auth/visitor", "application/json", strings.NewReader(`{"tenant":"demo"}`))
			if err != nil {
				t.Fatal(err)
			}
			var tok tokenResp
			err = json.NewDecoder(resp.Body).Decode(&tok)
			resp.Body.Close()
			if err != nil || tok.AccessToken == "" {
				t.Fatalf("visitor token: %v (status %d)", err, resp.StatusCode)
			}

			var conn net.Conn
			if useTLS {
				conn, err = tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true})
			} else {
				conn, err = net.Dial("tcp", s.addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(15 * time.Second))

			// The upgrade, the hello and 20 pings (about 1.5 KB) in one write.
			var out bytes.Buffer
			fmt.Fprintf(&out, "GET /v1/ws/user HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", s.addr)
			hello, _ := json.Marshal(map[string]any{"type": "hello", "v": 1, "token": tok.AccessToken})
			out.Write(maskedText(hello))
			const pings = 20
			for i := range pings {
				out.Write(maskedText(fmt.Appendf(nil, `{"type":"ping","id":"p%d"}`, i)))
			}
			if _, err := conn.Write(out.Bytes()); err != nil {
				t.Fatal(err)
			}

			br := bufio.NewReader(conn)
			answer, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if answer.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade answered %d", answer.StatusCode)
			}
			want := []string{"welcome"}
			for i := range pings {
				want = append(want, fmt.Sprintf("pong p%d", i))
			}
			for _, w := range want {
				var f frame
				if err := json.Unmarshal(readServerText(t, br), &f); err != nil {
					t.Fatal(err)
				}
				got := f.Type
				if f.ID != "" {
					got += " " + f.ID
				}
				if got != w {
					t.Fatalf("got %q, want %q", got, w)
				}
			}
		})
	}
}

// maskedText is a client's text frame.
func maskedText(payload []byte) []byte {
	b := []byte{0x81}
	if n := len(payload); n < 126 {
		b = append(b, 0x80|byte(n))
	} else {
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	}
	key := []byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// readServerText reads the next text frame the server sends (unmasked,
// unfragmented), skipping control frames.
func readServerText(t *testing.T, br *bufio.Reader) []byte {
	t.Helper()
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatal(err)
		}
		n := int(h[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(br, ext[:]); err != nil {
				t.Fatal(err)
			}
			n = int(binary.BigEndian.Uint16(ext[:]))
		case 127:
			t.Fatal("unexpectedly large frame")
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			t.Fatal(err)
		}
		if op := h[0] & 0x0f; op == websocket.TextMessage {
			return payload
		} else if op == websocket.CloseMessage {
			t.Fatalf("closed: %q", payload)
		}
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key, and
// returns their paths.
func selfSignedCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestSocketPingsAndDeadPeers: the server pings every socket; one that
// answers stays open however long it is idle, one that does not is
// dropped after 2.5 ping intervals.
func TestSocketPingsAndDeadPeers(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.WS.PingInterval = config.Duration(200 * time.Millisecond)
	s := startServer(t, cfg)
	token, _ := s.visitor(t)

	var ignored atomic.Int32
	answered := make(chan struct{}, 1000)
	alive := dialPinged(t, s, func(conn *websocket.Conn) func(string) error {
		return func(data string) error {
			answered <- struct{}{}
			return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		}
	})
	dead := dialPinged(t, s, func(*websocket.Conn) func(string) error {
		return func(string) error { ignored.Add(1); return nil }
	})
	alive.hello(token)
	dead.hello(token)

	select {
	case <-dead.ended:
	case <-time.After(15 * time.Second):
		t.Fatal("a socket that answers no pings is still open after 15s")
	}
	if n := ignored.Load(); n < 1 {
		t.Fatalf("the dropped socket got %d pings", n)
	}
	// The answering socket has outlived several pong deadlines.
	deadline := time.After(15 * time.Second)
	for n := 0; n < 6; n++ {
		select {
		case <-answered:
		case <-alive.ended:
			t.Fatalf("the answering socket was dropped after %d pings", n)
		case <-deadline:
			t.Fatalf("only %d pings in 15s", n)
		}
	}
	alive.send(map[string]any{"type": "ping", "id": "still-there"})
	if f := alive.errorOrPong("still-there"); f.Type != "pong" {
		t.Fatalf("got %s", f.Raw)
	}
}

// dialPinged dials a user socket whose client answers the server's pings
// with the handler onPing makes.
func dialPinged(t *testing.T, s *testServer, onPing func(*websocket.Conn) func(string) error) *wsClient {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+"/v1/ws/user", nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetPingHandler(onPing(conn))
	c := &wsClient{t: t, conn: conn, frames: make(chan frame, 100), ended: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(func() { conn.Close() })
	return c
}

// TestShutdownClosesSockets: a graceful shutdown closes every socket with
// 1001, authenticated or not, and leaves no goroutine of theirs behind
// (fasthttp does not track hijacked connections: the edge does).
func TestShutdownClosesSockets(t *testing.T) {
	s := startServer(t, testConfig(t.TempDir()))
	user, _ := s.visitor(t)
	staff, _ := s.staffToken(t)
	u := dial(t, s, "/v1/ws/user", nil)
	u.hello(user)
	a := dial(t, s, "/v1/ws/agent", nil)
	a.hello(staff)
	anon := dial(t, s, "/v1/ws/user", nil) // no hello yet

	s.stop(t)
	for name, c := range map[string]*wsClient{"user": u, "agent": a, "unauthenticated": anon} {
		select {
		case <-c.ended:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s socket still open after the shutdown", name)
		}
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed == nil || closed.Code != websocket.CloseGoingAway {
			t.Fatalf("%s socket ended with %v, want close 1001", name, closed)
		}
	}

	// Shutdown waited for every socket to end; a goroutine may still be
	// returning from its last call.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var b bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		left := strings.Contains(b.String(), "kefu/edge.(*reader)") || strings.Contains(b.String(), "kefu/edge.(*wsConn)") ||
			strings.Contains(b.String(), "kefu/edge.(*Server).socket")
		if !left {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("socket goroutines left after the shutdown:\n%s", b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
