package edge

import (
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
	CloseFlood           = 4008 // kept sending far over the rate limit
	CloseSlowConsumer    = 4009 // did not read its frames fast enough
)

// wsConn is one socket's outbound side: a bounded queue drained by the
// writer goroutine, and the reason the connection is ending.
//
// The queue is a slice under a mutex rather than a buffered channel: a
// channel of SendQueue (256) frames costs 6 KiB per socket from the start,
// idle or not, which was a fifth of an idle socket's memory; the slice
// costs nothing while empty.
type wsConn struct {
	mu    sync.Mutex
	queue [][]byte // frames waiting for the writer; at most limit
	limit int
	ready chan struct{} // capacity 1: the queue has frames
	done  chan struct{} // closed when the connection must end

	once    sync.Once
	code    int
	reason  string
	onClose func(code int) // counts closes by code
}

func newWSConn(queue int, onClose func(code int)) *wsConn {
	return &wsConn{limit: queue, ready: make(chan struct{}, 1), done: make(chan struct{}), onClose: onClose}
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
	w.mu.Unlock()
	select {
	case w.ready <- struct{}{}:
	default: // the writer has been told already
	}
	return true
}

// take removes and returns every queued frame, oldest first.
func (w *wsConn) take() [][]byte {
	w.mu.Lock()
	frames := w.queue
	w.queue = nil
	w.mu.Unlock()
	return frames
}

// close asks the writer to send a close frame with code and end the
// connection. Only the first call counts.
func (w *wsConn) close(code int, reason string) {
	w.once.Do(func() {
		w.code, w.reason = code, reason
		w.onClose(code)
		close(w.done)
	})
}

var _ actors.Outbox = (*wsConn)(nil)

// writer is the connection's only writer. It exits when done is closed or a
// write fails, and then closes the network connection so the reader stops.
func (s *Server) writer(c *websocket.Conn, w *wsConn, exited chan<- struct{}) {
	defer close(exited)
	defer c.NetConn().Close()
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-w.ready:
			for _, frame := range w.take() {
				_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
				if err := c.WriteMessage(websocket.TextMessage, frame); err != nil {
					w.close(websocket.CloseAbnormalClosure, "write failed")
					return
				}
				s.metrics.framesOut.Inc()
			}
		case <-ping.C:
			if err := c.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.cfg.WriteTimeout)); err != nil {
				w.close(websocket.CloseAbnormalClosure, "ping failed")
				return
			}
		case <-w.done:
			// Frames queued before the close (the error explaining it, say)
			// go out first, unless the client is not reading them anyway.
			if w.code != websocket.CloseAbnormalClosure && w.code != CloseSlowConsumer && !s.flushQueued(c, w) {
				return
			}
			if w.code != websocket.CloseAbnormalClosure {
				msg := websocket.FormatCloseMessage(w.code, w.reason)
				_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			}
			return
		}
	}
}

// flushQueued writes the frames still queued, all within one write
// timeout. It reports whether they were written.
func (s *Server) flushQueued(c *websocket.Conn, w *wsConn) bool {
	_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	for _, frame := range w.take() {
		if err := c.WriteMessage(websocket.TextMessage, frame); err != nil {
			return false
		}
		s.metrics.framesOut.Inc()
	}
	return true
}

// socket returns the handler of a WebSocket endpoint whose tokens must be
// for audience.
func (s *Server) socket(audience string) func(*websocket.Conn) {
	endpoint := "user"
	if audience == auth.AudienceStaff {
		endpoint = "agent"
	}
	return func(c *websocket.Conn) {
		w := newWSConn(s.cfg.SendQueue, func(code int) { s.metrics.closes.WithLabelValues(strconv.Itoa(code)).Inc() })
		if !s.track(w) {
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
			return
		}
		defer s.untrack(w)
		gauge := s.metrics.connections.WithLabelValues(endpoint)
		gauge.Inc()
		defer gauge.Dec()

		exited := make(chan struct{})
		go s.writer(c, w, exited)
		session := s.read(c, w, audience)
		w.close(websocket.CloseNormalClosure, "")
		<-exited // Fiber recycles c once we return: the writer must be gone
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
			claims, err := s.cfg.Verifier.Verify(f.Token, audience)
			if err != nil {
				s.reject(w, f, engine.NewError(engine.CodeUnauthenticated, "invalid or expired token"))
				w.close(CloseUnauthenticated, "invalid token")
				return session
			}
			caller = callerOf(claims)
			session = s.cfg.Client.StartSession(caller, w)
			_ = c.SetReadDeadline(time.Now().Add(pongWait))
			s.send(w, engine.WelcomeFrame{
				Type: engine.FrameWelcome, V: engine.ProtocolVersion, Session: engine.NewID(time.Now()),
				Tenant: caller.Tenant, You: caller.Party, ServerTime: s.cfg.Clock.Now().UnixMilli(),
				MaxFrame: s.cfg.MaxFrameBytes, RatePerSec: int(s.cfg.RatePerSec),
			})
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

// callerOf turns verified token claims into the caller actors see.
func callerOf(c auth.Claims) actors.Caller {
	if c.Audience == auth.AudienceStaff {
		return actors.Caller{Tenant: c.Tenant, Party: engine.Party{Role: engine.RoleAgent, ID: c.Subject}, StaffRole: engine.StaffRole(c.Role)}
	}
	return actors.Caller{Tenant: c.Tenant, Party: engine.Party{Role: engine.RoleUser, ID: c.Subject}}
}
