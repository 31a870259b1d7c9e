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
	client, raw := tcpPair(t)
	counted := &countingConn{Conn: raw}
	w, c, _ := socketOver(t, counted)

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

// A pong the reader sends while a gathered write is blocked on a slow
// client waits for it, rather than cutting its deadline to the pong's one
// second.
func TestPongDuringAGatheredWriteKeepsItsDeadline(t *testing.T) {
	client, raw := tcpPair(t)
	_ = raw.(*net.TCPConn).SetWriteBuffer(16 << 10)
	_ = client.(*net.TCPConn).SetReadBuffer(16 << 10)
	w, c, _ := socketOver(t, raw)
	go func() { // the socket's reader: it answers pings
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	go func() { // a slow client: it pings, then reads after two seconds
		var one [1]byte
		_, _ = io.ReadFull(client, one[:])                  // the write has started
		_, _ = client.Write([]byte{0x89, 0x80, 1, 2, 3, 4}) // a masked, empty ping
		time.Sleep(2 * time.Second)                         // the client's slowness, within WriteTimeout
		_, _ = io.Copy(io.Discard, client)
	}()
	frame := bytes.Repeat([]byte("x"), 1<<20)
	frames := make([][]byte, 16)
	for i := range frames {
		frames[i] = frame
	}
	start := time.Now()
	if err := w.writeGathered(frames); err != nil {
		t.Fatalf("the gathered write failed after %v, within its 5 s deadline: %v", time.Since(start).Round(time.Millisecond), err)
	}
}

// A close the reader answers while frames are gathered goes out with them:
// what writeGathered does when the next frame is refused.
func TestCloseAnsweredWhileGatheringGoesOut(t *testing.T) {
	client, raw := tcpPair(t)
	_, c, h := socketOver(t, raw)
	h.gather()
	if err := c.WriteMessage(fastws.TextMessage, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	// The reader answers the client's close.
	if err := c.WriteControl(fastws.CloseMessage, fastws.FormatCloseMessage(fastws.CloseNormalClosure, ""), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(fastws.TextMessage, []byte(`{"b":2}`)); err == nil {
		t.Fatal("a frame after the close was accepted")
	}
	if err := h.flush(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_ = raw.Close()
	got, _ := io.ReadAll(client)
	if want := []byte("\x81\x07{\"a\":1}\x88\x02\x03\xe8"); !bytes.Equal(got, want) {
		t.Fatalf("the client read %q, want the frame and the close %q", got, want)
	}
}

// tcpPair connects a client to a server end over loopback.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if client, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// socketOver makes the server side of a WebSocket over conn, as takeOver
// does, with a 5 s write timeout.
func socketOver(t *testing.T, conn net.Conn) (*wsConn, *fastws.Conn, *hijacked) {
	t.Helper()
	h := &hijacked{Conn: conn, mute: true}
	c, err := (&fastws.Upgrader{}).Upgrade(handshakeWriter{h}, handshakeRequest, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.mute = false
	return &wsConn{s: &Server{cfg: Config{WriteTimeout: 5 * time.Second}, metrics: newMetrics(prometheus.NewRegistry())}, c: c}, c, h
}
