package edge

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/auth"
	"github.com/kefu-dev/kefu/engine"
)

// Close codes the server uses besides the standard ones (1001 going away,
// 1007 invalid UTF-8, 1009 too big). All are listed in docs/protocol.md.
const (
	CloseUnauthenticated = 4001 // no valid hello in time, or a bad token
	CloseRevoked         = 4003 // the staff session was revoked: a logout or a password change
	CloseFlood           = 4008 // kept sending far over the rate limit
	CloseSlowConsumer    = 4009 // did not read its frames fast enough
)

// wsConn is one socket's outbound side: a bounded queue, the writer that
// drains it, and the reason the connection is ending.
//
// Memory is what an idle socket costs, so nothing outbound lives while
// there is nothing to write:
//   - The queue is a slice under a mutex rather than a buffered channel,
//     which cost 6 KiB per socket (SendQueue frames) idle or not.
//   - The writer is a goroutine started when there is something to write
//     (frames, a ping, the close) and ending when the queue is empty, not
//     one parked for the socket's whole life: an idle socket holds no
//     writer stack and no ticker, only a timer for the next ping.
//
// Still at most one writer runs at a time (writing, under mu), and once
// the reader has stopped the socket no writer starts again, so the socket
// ends only when no goroutine can touch the connection.
type wsConn struct {
	s *Server
	c *websocket.Conn

	mu       sync.Mutex
	queue    [][]byte // frames waiting for the writer; at most limit
	limit    int
	pingDue  bool
	writing  bool          // a writer goroutine runs
	finished bool          // the close sequence ran: no writer starts again
	stopped  bool          // the socket is ending: no writer starts again
	idle     chan struct{} // closed by the writer when it exits, if stop waits
	ping     *time.Timer

	done    chan struct{} // closed when the connection must end
	once    sync.Once
	code    int
	reason  string
	onClose func(code int) // counts closes by code
}

func newWSConn(s *Server, c *websocket.Conn, queue int, onClose func(code int)) *wsConn {
	return &wsConn{s: s, c: c, limit: queue, done: make(chan struct{}), onClose: onClose}
}

// Enqueue queues a frame for the writer without ever blocking. A full queue
// means the client is not reading: the connection is closed with 4009.
func (w *wsConn) Enqueue(frame []byte) bool {
	select {
	case <-w.done:
		return false
	default:
	}
	w.mu.Lock()
	if len(w.queue) >= w.limit {
		w.mu.Unlock()
		w.close(CloseSlowConsumer, "slow consumer: too many unread frames")
		return false
	}
	w.queue = append(w.queue, frame)
	w.kick()
	w.mu.Unlock()
	return true
}

// kick starts the writer unless one runs or the socket is over. Caller
// holds mu.
func (w *wsConn) kick() {
	if w.writing || w.finished || w.stopped {
		return
	}
	w.writing = true
	go w.write()
}

// close asks the writer to send a close frame with code and end the
// connection. Only the first call counts.
func (w *wsConn) close(code int, reason string) {
	w.once.Do(func() {
		w.code, w.reason = code, reason
		w.onClose(code)
		close(w.done)
		w.mu.Lock()
		w.kick()
		w.mu.Unlock()
	})
}

// startPings arms the ping timer: every PingInterval the writer sends a
// ping.
func (w *wsConn) startPings() {
	interval := w.s.cfg.PingInterval
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ping = time.AfterFunc(interval, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.finished || w.stopped {
			return
		}
		w.pingDue = true
		w.kick()
		w.ping.Reset(interval)
	})
}

// stop is called once the reader has returned and close has been called:
// it waits for a running writer and makes sure no other starts, so that
// nothing touches the connection after it is closed.
func (w *wsConn) stop() {
	w.mu.Lock()
	w.stopped = true
	if w.ping != nil {
		w.ping.Stop()
	}
	var idle chan struct{}
	if w.writing {
		w.idle = make(chan struct{})
		idle = w.idle
	}
	w.mu.Unlock()
	if idle != nil {
		<-idle
	}
}

var _ actors.Outbox = (*wsConn)(nil)

// Revoked tells the client its sign-in was revoked and closes with 4003.
func (w *wsConn) Revoked(reason string) {
	w.s.send(w, engine.ErrorFrame{Type: engine.FrameError, Code: engine.CodeUnauthenticated, Message: "signed out: " + reason})
	w.close(CloseRevoked, "session revoked")
}

// write is the writer goroutine: it writes what is queued, and a ping when
// one is due, until nothing is left. Once the connection must end it runs
// the close sequence and closes the network connection, so the reader
// stops.
func (w *wsConn) write() {
	c, s := w.c, w.s
	for {
		w.mu.Lock()
		frames := w.queue
		w.queue = nil
		ping := w.pingDue
		w.pingDue = false
		var ending bool
		select {
		case <-w.done:
			ending = true
		default:
		}
		if !ending && len(frames) == 0 && !ping {
			w.exit()
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		if ending {
			w.closeSequence(frames)
			w.mu.Lock()
			w.finished = true
			if w.ping != nil {
				w.ping.Stop()
			}
			w.exit()
			w.mu.Unlock()
			return
		}
		if ping {
			if err := c.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.cfg.WriteTimeout)); err != nil {
				w.close(websocket.CloseAbnormalClosure, "ping failed")
				continue
			}
		}
		if len(frames) > 1 {
			if err := w.writeGathered(frames); err != nil {
				w.close(websocket.CloseAbnormalClosure, "write failed")
			}
			clear(frames)
			continue
		}
		for i, frame := range frames {
			_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if err := c.WriteMessage(websocket.TextMessage, frame); err != nil {
				w.close(websocket.CloseAbnormalClosure, "write failed")
				clear(frames[i:]) // dropped
				break
			}
			s.metrics.framesOut.Inc()
		}
	}
}

// writeGathered writes several frames with one system call: under load an
// agent's socket has many queued at once.
func (w *wsConn) writeGathered(frames [][]byte) error {
	h, ok := w.c.NetConn().(*hijacked)
	if !ok {
		return errors.New("edge: the socket's connection is not the hijacked one")
	}
	h.gather()
	deadline := time.Now().Add(w.s.cfg.WriteTimeout)
	for i, frame := range frames {
		if err := w.c.WriteMessage(websocket.TextMessage, frame); err != nil {
			// The reader answered a close meanwhile: what was gathered,
			// that answer included, still goes out.
			if ferr := h.flush(deadline); ferr == nil {
				w.s.metrics.framesOut.Add(float64(i))
			}
			return err
		}
	}
	if err := h.flush(deadline); err != nil {
		return err
	}
	w.s.metrics.framesOut.Add(float64(len(frames)))
	return nil
}

// exit marks the writer gone and wakes a waiting stop. Caller holds mu.
func (w *wsConn) exit() {
	w.writing = false
	if w.idle != nil {
		close(w.idle)
		w.idle = nil
	}
}

// closeSequence ends the connection: frames queued before the close (the
// error explaining it, say) go out first, unless the client is not reading
// them anyway, then the close frame, then the network connection closes.
func (w *wsConn) closeSequence(frames [][]byte) {
	c, s := w.c, w.s
	defer c.NetConn().Close()
	if w.code == websocket.CloseAbnormalClosure {
		return
	}
	if w.code != CloseSlowConsumer {
		w.mu.Lock()
		frames = append(frames, w.queue...)
		w.queue = nil
		w.mu.Unlock()
		_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		for _, frame := range frames {
			if err := c.WriteMessage(websocket.TextMessage, frame); err != nil {
				return
			}
			s.metrics.framesOut.Inc()
		}
	}
	msg := websocket.FormatCloseMessage(w.code, w.reason)
	_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
}

// socket serves a connection fasthttp has upgraded, in the goroutine
// fasthttp hijacked it in: it reads until the client has authenticated
// (its hello), then hands the socket to a goroutine of its own and
// returns, so that fasthttp takes back the buffered reader and request
// context it keeps while the hijack handler runs.
//
// The new goroutine's stack holds only the read loop, and an idle socket
// is parked in it: it starts at the runtime's usual size and stays there,
// while the stack that authenticated (token checks, the session's start,
// JSON) grew to 8 KiB and would have stayed so.
func (s *Server) socket(nc net.Conn, audience string) {
	c, err := s.takeOver(nc)
	if err != nil {
		return
	}
	w := newWSConn(s, c, s.cfg.SendQueue, func(code int) { s.metrics.closes.WithLabelValues(strconv.Itoa(code)).Inc() })
	if !s.track(w) {
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
		_ = c.NetConn().Close()
		return
	}
	endpoint := "user"
	if audience == auth.AudienceStaff {
		endpoint = "agent"
	}
	r := &reader{s: s, c: c, w: w, audience: audience, gauge: s.metrics.connections.WithLabelValues(endpoint)}
	r.gauge.Inc()
	w.startPings()
	if r.hello() {
		go r.serve()
		return
	}
	r.end()
}

// reader is a socket's only reader.
type reader struct {
	s        *Server
	c        *websocket.Conn
	w        *wsConn
	audience string
	gauge    prometheus.Gauge

	session   *actors.Session // nil until the hello is accepted
	limiter   *tokenBucket
	overLimit int // frames over the rate in a row
	pongWait  time.Duration
}

// hello reads until the client has authenticated, and reports whether it
// has and the socket goes on.
func (r *reader) hello() (ok bool) {
	defer r.recover()
	s, c := r.s, r.c
	c.SetReadLimit(int64(s.cfg.MaxFrameBytes))
	r.pongWait = s.cfg.PingInterval * 5 / 2
	_ = c.SetReadDeadline(time.Now().Add(s.cfg.HelloTimeout))
	c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(r.pongWait)) })
	r.limiter = newTokenBucket(s.cfg.RatePerSec, s.cfg.Burst, time.Now())
	for r.session == nil {
		if !r.next() {
			return false
		}
	}
	return true
}

// serve reads the authenticated socket's frames until it ends, then ends
// it.
func (r *reader) serve() {
	r.loop()
	r.end()
}

func (r *reader) loop() {
	defer r.recover()
	for r.next() {
	}
}

// recover turns a panic in the reader into the socket's end (1011), as
// gofiber/contrib/websocket's handler recovered them, rather than the
// process's.
func (r *reader) recover() {
	if p := recover(); p != nil {
		r.s.log.Error("websocket reader panicked", "panic", p, "stack", string(debug.Stack()))
		r.w.close(websocket.CloseInternalServerErr, "internal error")
	}
}

// end closes the socket, waits for its writer, stops its session and
// untracks it. fasthttp no longer closes a hijacked connection
// (KeepHijackedConns): it is closed here in any case.
func (r *reader) end() {
	r.w.close(websocket.CloseNormalClosure, "")
	r.w.stop()
	_ = r.c.NetConn().Close()
	if r.session != nil {
		r.session.Stop()
	}
	r.gauge.Dec()
	r.s.untrack(r.w)
}

// next reads and handles one frame, and reports whether the socket goes
// on.
func (r *reader) next() bool {
	s, w := r.s, r.w
	kind, data, err := r.c.ReadMessage()
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, websocket.ErrReadLimit):
			w.close(websocket.CloseMessageTooBig, "frame larger than "+strconv.Itoa(s.cfg.MaxFrameBytes)+" bytes")
		case r.session == nil && errors.As(err, &ne) && ne.Timeout():
			w.close(CloseUnauthenticated, "no hello in time")
		}
		return false
	}
	if r.session != nil {
		_ = r.c.SetReadDeadline(time.Now().Add(r.pongWait))
	}
	if !r.limiter.allow(time.Now()) {
		r.overLimit++
		if r.overLimit >= s.cfg.FloodLimit {
			w.close(CloseFlood, "too many frames")
			return false
		}
		s.reject(w, engine.ClientFrame{}, engine.NewError(engine.CodeRateLimited, "too many frames; this one was dropped"))
		return true
	}
	r.overLimit = 0
	if kind != websocket.TextMessage {
		s.reject(w, engine.ClientFrame{}, engine.NewError(engine.CodeBadFrame, "only text frames carrying JSON are accepted"))
		if r.session == nil {
			w.close(CloseUnauthenticated, "hello expected")
			return false
		}
		return true
	}
	f, err := engine.DecodeClientFrame(data)
	if err != nil {
		if engine.CodeOf(err) == engine.CodeInvalidUTF8 {
			s.metrics.rejected.WithLabelValues(string(engine.CodeInvalidUTF8)).Inc()
			w.close(websocket.CloseInvalidFramePayloadData, "frame is not valid UTF-8")
			return false
		}
		s.reject(w, f, err)
		if r.session == nil { // the first frame must be a valid hello
			reason := "hello expected"
			if engine.CodeOf(err) == engine.CodeVersion {
				reason = "unsupported protocol version"
			}
			w.close(CloseUnauthenticated, reason)
			return false
		}
		return true
	}
	s.metrics.framesIn.WithLabelValues(f.Type).Inc()
	switch {
	case r.session == nil && f.Type != engine.FrameHello:
		s.reject(w, f, engine.NewError(engine.CodeUnauthenticated, "send hello with a token first"))
		w.close(CloseUnauthenticated, "hello expected")
		return false
	case r.session == nil:
		caller, err := s.callerOfToken(context.Background(), f.Token, r.audience, r.c.RemoteAddr().String())
		if err != nil {
			s.reject(w, f, err)
			w.close(CloseUnauthenticated, "invalid token")
			return false
		}
		// The welcome is queued before the session starts: a staff
		// session pushes the agent's status as soon as it registers,
		// and the welcome must be the first frame the client reads.
		s.send(w, engine.WelcomeFrame{
			Type: engine.FrameWelcome, V: engine.ProtocolVersion, Session: engine.NewID(time.Now()),
			Tenant: caller.Tenant, You: caller.Party, ServerTime: s.cfg.Clock.Now().UnixMilli(),
			MaxFrame: s.cfg.MaxFrameBytes, RatePerSec: int(s.cfg.RatePerSec),
		})
		r.session = s.cfg.Client.StartSession(caller, w)
		_ = r.c.SetReadDeadline(time.Now().Add(r.pongWait))
	case f.Type == engine.FrameHello:
		s.reject(w, f, engine.NewError(engine.CodeInvalidField, "already authenticated"))
	case f.Type == engine.FramePing:
		s.send(w, engine.PongFrame{Type: engine.FramePong, ID: f.ID, ServerTime: s.cfg.Clock.Now().UnixMilli()})
	default:
		r.session.Deliver(f)
	}
	return true
}

func (s *Server) send(w *wsConn, frame any) {
	b, err := json.Marshal(frame)
	if err != nil {
		s.log.Error("encoding frame", "err", err)
		return
	}
	w.Enqueue(b)
}

// reject answers a frame with an error frame.
func (s *Server) reject(w *wsConn, f engine.ClientFrame, err error) {
	var e *engine.Error
	if !errors.As(err, &e) {
		e = engine.NewError(engine.CodeInternal, "internal error")
	}
	s.metrics.rejected.WithLabelValues(string(e.Code)).Inc()
	s.send(w, engine.ErrorFrame{Type: engine.FrameError, ID: f.ID, Code: e.Code, Message: e.Message, Conv: f.Conv, ClientMsgID: f.ClientMsgID})
}
