package edge

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	fastws "github.com/fasthttp/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// countingConn counts the writes that reach the network connection.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A socket's queued frames go out in one write, each a whole WebSocket
// frame, in order.
func TestQueuedFramesGoOutInOneWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	counted := &countingConn{Conn: raw}
	h := &hijacked{Conn: counted, mute: true}
	c, err := (&fastws.Upgrader{}).Upgrade(handshakeWriter{h}, handshakeRequest, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.mute = false
	w := &wsConn{s: &Server{cfg: Config{WriteTimeout: 5 * time.Second}, metrics: newMetrics(prometheus.NewRegistry())}, c: c}

	if err := w.writeGathered([][]byte{[]byte(`{"a":1}`), []byte(`{"b":22}`), []byte(`{"c":333}`)}); err != nil {
		t.Fatal(err)
	}
	if n := counted.writes.Load(); n != 1 {
		t.Fatalf("three frames took %d writes, want 1", n)
	}
	// Server frames are unmasked: FIN+text, the length, the payload.
	want := []byte("\x81\x07{\"a\":1}\x81\x08{\"b\":22}\x81\x09{\"c\":333}")
	got := make([]byte, len(want))
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the client read %q, want %q", got, want)
	}
	// Gathering is over: the next frame is written at once.
	if err := c.WriteMessage(fastws.TextMessage, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if n := counted.writes.Load(); n != 2 {
		t.Fatalf("after the gathered frames, one more took %d writes in all, want 2", n)
	}
}
