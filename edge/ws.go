package edge

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	fastws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"

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
// the handler has stopped the socket no writer starts again, so the
// handler returns only when no goroutine can touch the connection.
type wsConn struct {
	s *Server
	c *websocket.Conn

	mu       sync.Mutex
	queue    [][]byte // frames waiting for the writer; at most limit
	limit    int
	pingDue  bool
	writing  bool          // a writer goroutine runs
	finished bool          // the close sequence ran: no writer starts again
	stopped  bool          // the handler is returning: no writer starts again
	idle     chan struct{} // closed by the writer when it exits, if the handler waits
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

// stop is called by the handler once its reader has returned and close
// has been called: it waits for a running writer and makes sure no other
// starts. Fiber recycles the connection when the handler returns.
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

// exit marks the writer gone and wakes a waiting handler. Caller holds mu.
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

// socket returns the handler of a WebSocket endpoint whose tokens must be
// for audience.
func (s *Server) socket(audience string) func(*websocket.Conn) {
	endpoint := "user"
	if audience == auth.AudienceStaff {
		endpoint = "agent"
	}
	return func(c *websocket.Conn) {
		w := newWSConn(s, c, s.cfg.SendQueue, func(code int) { s.metrics.closes.WithLabelValues(strconv.Itoa(code)).Inc() })
		if !s.track(w) {
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
			return
		}
		defer s.untrack(w)
		gauge := s.metrics.connections.WithLabelValues(endpoint)
		gauge.Inc()
		defer gauge.Dec()

		w.startPings()
		session := s.read(c, w, audience)
		w.close(websocket.CloseNormalClosure, "")
		w.stop() // Fiber recycles c once we return: no writer may run
		if session != nil {
			session.Stop()
		}
	}
}

// read is the connection's only reader. It returns the session it started,
// if any, once the connection is over.
func (s *Server) read(c *websocket.Conn, w *wsConn, audience string) *actors.Session {
	c.SetReadLimit(int64(s.cfg.MaxFrameBytes))
	pongWait := s.cfg.PingInterval * 5 / 2
	_ = c.SetReadDeadline(time.Now().Add(s.cfg.HelloTimeout))
	c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(pongWait)) })
	limiter := newTokenBucket(s.cfg.RatePerSec, s.cfg.Burst, time.Now())
	var session *actors.Session
	var caller actors.Caller
	overLimit := 0
	for {
		kind, data, err := c.ReadMessage()
		if err != nil {
			var ne net.Error
			switch {
			// contrib/websocket declares its own ErrReadLimit, which nothing
			// returns: the error comes from fasthttp/websocket.
			case errors.Is(err, fastws.ErrReadLimit):
				w.close(websocket.CloseMessageTooBig, "frame larger than "+strconv.Itoa(s.cfg.MaxFrameBytes)+" bytes")
			case session == nil && errors.As(err, &ne) && ne.Timeout():
				w.close(CloseUnauthenticated, "no hello in time")
			}
			return session
		}
		if session != nil {
			_ = c.SetReadDeadline(time.Now().Add(pongWait))
		}
		if !limiter.allow(time.Now()) {
			overLimit++
			if overLimit >= s.cfg.FloodLimit {
				w.close(CloseFlood, "too many frames")
				return session
			}
			s.reject(w, engine.ClientFrame{}, engine.NewError(engine.CodeRateLimited, "too many frames; this one was dropped"))
			continue
		}
		overLimit = 0
		if kind != websocket.TextMessage {
			s.reject(w, engine.ClientFrame{}, engine.NewError(engine.CodeBadFrame, "only text frames carrying JSON are accepted"))
			if session == nil {
				w.close(CloseUnauthenticated, "hello expected")
				return session
			}
			continue
		}
		f, err := engine.DecodeClientFrame(data)
		if err != nil {
			if engine.CodeOf(err) == engine.CodeInvalidUTF8 {
				s.metrics.rejected.WithLabelValues(string(engine.CodeInvalidUTF8)).Inc()
				w.close(websocket.CloseInvalidFramePayloadData, "frame is not valid UTF-8")
				return session
			}
			s.reject(w, f, err)
			if session == nil { // the first frame must be a valid hello
				reason := "hello expected"
				if engine.CodeOf(err) == engine.CodeVersion {
					reason = "unsupported protocol version"
				}
				w.close(CloseUnauthenticated, reason)
				return session
			}
			continue
		}
		s.metrics.framesIn.WithLabelValues(f.Type).Inc()
		switch {
		case session == nil && f.Type != engine.FrameHello:
			s.reject(w, f, engine.NewError(engine.CodeUnauthenticated, "send hello with a token first"))
			w.close(CloseUnauthenticated, "hello expected")
			return session
		case session == nil:
			var err error
			caller, err = s.callerOfToken(context.Background(), f.Token, audience, c.RemoteAddr().String())
			if err != nil {
				s.reject(w, f, err)
				w.close(CloseUnauthenticated, "invalid token")
				return session
			}
			// The welcome is queued before the session starts: a staff
			// session pushes the agent's status as soon as it registers,
			// and the welcome must be the first frame the client reads.
			s.send(w, engine.WelcomeFrame{
				Type: engine.FrameWelcome, V: engine.ProtocolVersion, Session: engine.NewID(time.Now()),
				Tenant: caller.Tenant, You: caller.Party, ServerTime: s.cfg.Clock.Now().UnixMilli(),
				MaxFrame: s.cfg.MaxFrameBytes, RatePerSec: int(s.cfg.RatePerSec),
			})
			session = s.cfg.Client.StartSession(caller, w)
			_ = c.SetReadDeadline(time.Now().Add(pongWait))
		case f.Type == engine.FrameHello:
			s.reject(w, f, engine.NewError(engine.CodeInvalidField, "already authenticated"))
		case f.Type == engine.FramePing:
			s.send(w, engine.PongFrame{Type: engine.FramePong, ID: f.ID, ServerTime: s.cfg.Clock.Now().UnixMilli()})
		default:
			session.Deliver(f)
		}
	}
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
