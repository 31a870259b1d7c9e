package edge

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	fastws "github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
)

// How a socket gets from Fiber to its own goroutine.
//
// fasthttp serves an upgraded connection in a goroutine it starts for the
// hijack handler, and by default closes the connection when the handler
// returns, keeping its 4 KiB buffered reader and the request context for
// the connection's whole life. The server runs with KeepHijackedConns
// instead: the hijack handler returns once the socket is authenticated,
// fasthttp takes back its reader and context, and the socket goes on in a
// goroutine of its own whose stack stays small (see socket in ws.go).
//
// fasthttp (v1.52) puts its buffered reader back in its pool when the
// hijack handler returns even with KeepHijackedConns, while the
// connection it handed over still reads through it. So the socket never
// reads through fasthttp's wrapper: before anything else it takes what the
// reader buffered past the handshake (a client may send its first frames
// without waiting for the 101) and from then on reads the network
// connection itself.

// upgrade is the handler of a WebSocket endpoint. fasthttp/websocket's
// FastHTTPUpgrader checks the handshake and sets the 101 answer, as it did
// under gofiber/contrib/websocket; the connection then goes to
// s.socket instead of the upgrader's own handler.
func (s *Server) upgrade(audience string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx := c.Context()
		if err := s.handshake.Upgrade(ctx, func(*fastws.Conn) {}); err != nil {
			// What gofiber/contrib/websocket answered.
			return fiber.ErrUpgradeRequired
		}
		ctx.Hijack(func(nc net.Conn) { s.socket(nc, audience) })
		return nil
	}
}

// takeOver turns the connection fasthttp hijacked into a WebSocket that
// reads and writes the network connection directly. On an error the
// connection is closed.
func (s *Server) takeOver(nc net.Conn) (*fastws.Conn, error) {
	u, ok := nc.(interface{ UnsafeConn() net.Conn })
	if !ok {
		// Reading through nc after the hijack handler returns would read
		// a reader fasthttp has reused: refuse rather than risk it.
		_ = nc.Close()
		s.log.Error("websocket: fasthttp's hijacked connection does not give its network connection")
		return nil, errors.New("edge: hijacked connection without UnsafeConn")
	}
	raw := u.UnsafeConn()
	pre, err := buffered(nc, raw)
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	// fasthttp/websocket makes a server-side Conn only in an upgrade, so
	// it upgrades a made-up, valid handshake over the connection, whose
	// answer (fasthttp has sent the real one) is dropped.
	h := &hijacked{Conn: raw, pre: pre, mute: true}
	c, err := s.connMaker.Upgrade(handshakeWriter{h}, handshakeRequest, nil)
	h.mute = false
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	return c, nil
}

// buffered returns the bytes fasthttp's reader nc holds past the
// handshake. A read deadline in the past makes nc hand over what it has
// buffered and then fail at once, without reading the network (nor losing
// anything from it).
func buffered(nc, raw net.Conn) ([]byte, error) {
	if err := raw.SetReadDeadline(time.Unix(1, 0)); err != nil {
		return nil, err
	}
	var pre []byte
	buf := make([]byte, 512)
	for {
		n, err := nc.Read(buf)
		pre = append(pre, buf[:n]...)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return pre, raw.SetReadDeadline(time.Time{})
}

// hijacked is an upgraded network connection: it first reads the bytes
// fasthttp had buffered, and drops what is written while mute (the
// made-up handshake's answer). While it gathers, what is written is kept
// and goes out in one write at flush: a socket's queued frames cost one
// system call, not one each.
type hijacked struct {
	net.Conn
	pre  []byte
	mute bool

	// mu orders the writes to the network and their deadlines: the
	// writer gathers and flushes while the reader may answer a ping or a
	// close, and a flush's deadline stands until its write is done.
	mu       sync.Mutex
	gathered *[]byte // from gatherPool, while gathering
}

// gatherPool lends the buffers frames are gathered in, so an idle socket
// holds none.
var gatherPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (h *hijacked) Read(p []byte) (int, error) {
	if len(h.pre) > 0 {
		n := copy(p, h.pre)
		h.pre = h.pre[n:]
		if len(h.pre) == 0 {
			h.pre = nil
		}
		return n, nil
	}
	return h.Conn.Read(p)
}

func (h *hijacked) Write(p []byte) (int, error) {
	if h.mute {
		return len(p), nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gathered != nil {
		*h.gathered = append(*h.gathered, p...)
		return len(p), nil
	}
	return h.Conn.Write(p)
}

// SetWriteDeadline is a no-op while gathering: nothing is written until
// flush, which sets its own.
func (h *hijacked) SetWriteDeadline(t time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gathered != nil {
		return nil
	}
	return h.Conn.SetWriteDeadline(t)
}

// gather keeps what is written from now on until flush.
func (h *hijacked) gather() {
	h.mu.Lock()
	h.gathered = gatherPool.Get().(*[]byte)
	h.mu.Unlock()
}

// flush writes what was gathered, in one write due by deadline, and stops
// gathering.
func (h *hijacked) flush(deadline time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.gathered
	h.gathered = nil
	defer release(b)
	if err := h.Conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	_, err := h.Conn.Write(*b)
	return err
}

// release gives a gathering buffer back to the pool, unless a burst of
// large frames grew it.
func release(b *[]byte) {
	if cap(*b) <= 256<<10 {
		*b = (*b)[:0]
		gatherPool.Put(b)
	}
}

// handshakeRequest is the made-up upgrade request: only the headers
// fasthttp/websocket's Upgrader checks.
var handshakeRequest = &http.Request{Method: http.MethodGet, Header: http.Header{
	"Connection":            {"Upgrade"},
	"Upgrade":               {"websocket"},
	"Sec-Websocket-Version": {"13"},
	"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
}}

// handshakeWriter hands the Upgrader the connection as if net/http had
// served the made-up request on it.
type handshakeWriter struct{ h *hijacked }

func (w handshakeWriter) Header() http.Header         { return http.Header{} }
func (w handshakeWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w handshakeWriter) WriteHeader(int)             {}

func (w handshakeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	// Nothing buffered to read; the small writer only lends the Upgrader
	// a scratch buffer for its answer.
	return w.h, bufio.NewReadWriter(bufio.NewReaderSize(nil, 16), bufio.NewWriterSize(w.h, 16)), nil
}
