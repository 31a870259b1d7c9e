package edge

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	fastws "github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/auth"
	"github.com/kefu-dev/kefu/engine"
)

// Config configures the edge. Zero values of the limits mean the defaults
// given on each field.
type Config struct {
	Client   *actors.Client // required
	Signer   *auth.Signer   // required: issues tokens
	Verifier *auth.Verifier // required: checks tokens
	Clock    engine.Clock   // nil: the wall clock
	Logger   *slog.Logger   // nil: discard
	// Registry receives the edge's metrics and is served at /metrics.
	// Nil: a private registry.
	Registry *prometheus.Registry

	// MaxFrameBytes is the largest client frame; larger ones close the
	// socket with 1009. Zero means 64 KiB.
	MaxFrameBytes int
	// SendQueue is how many frames may wait for a slow client before it is
	// disconnected with 4009. Zero means 256.
	SendQueue int
	// RatePerSec and Burst bound the frames one connection may send. Zero
	// means 20 per second with bursts of 40.
	RatePerSec float64
	Burst      int
	// FloodLimit is how many frames over the rate a connection may send in
	// a row before it is closed with 4008. Zero means 100.
	FloodLimit int
	// PingInterval is how often the server pings; a client silent for
	// 2.5 intervals is dropped. Zero means 25s.
	PingInterval time.Duration
	// HelloTimeout is how long a new socket has to authenticate. Zero
	// means 10s.
	HelloTimeout time.Duration
	// WriteTimeout bounds one write to a client. Zero means 10s.
	WriteTimeout time.Duration
	// AllowedOrigins lists the browser origins (scheme://host[:port]) that
	// may open staff sockets and call staff APIs. Empty means only the
	// server's own origin. Requests without an Origin header (non-browser
	// clients) are allowed: they carry a bearer token, not a cookie.
	AllowedOrigins []string
	// StaffTokenTTL and VisitorTokenTTL are the lifetimes of issued tokens.
	// Zero means 15 minutes and 30 days.
	StaffTokenTTL   time.Duration
	VisitorTokenTTL time.Duration
	// SecureCookies marks cookies Secure: clients reach Kefu over HTTPS.
	// HSTS sends Strict-Transport-Security: the listener itself is TLS.
	SecureCookies, HSTS bool
	// AuthPerIPPerMinute bounds sign-in and token requests per client IP.
	// Zero means 30.
	AuthPerIPPerMinute int
	// LoginPerAccountPerMinute bounds login attempts per account. Zero
	// means 10.
	LoginPerAccountPerMinute int
	// APIPerIPPerSecond and APIPerAccountPerSecond bound API requests per
	// client IP and per signed-in party, with bursts of twice as many.
	// Zero means 200 and 50.
	APIPerIPPerSecond, APIPerAccountPerSecond float64
	// Web is the built browser UI (web.Dist()); nil serves none.
	Web fs.FS
	// WidgetFrameAncestors are the origins whose pages may embed the chat
	// widget in a frame (a CSP frame-ancestors list). Empty means any: the
	// widget is meant to be embedded; other pages may never be framed.
	WidgetFrameAncestors []string
}

func (c *Config) setDefaults() {
	if c.Clock == nil {
		c.Clock = engine.SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 64 << 10
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.RatePerSec <= 0 {
		c.RatePerSec = 20
	}
	if c.Burst <= 0 {
		c.Burst = 40
	}
	if c.FloodLimit <= 0 {
		c.FloodLimit = 100
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.HelloTimeout <= 0 {
		c.HelloTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.StaffTokenTTL <= 0 {
		c.StaffTokenTTL = 15 * time.Minute
	}
	if c.AuthPerIPPerMinute <= 0 {
		c.AuthPerIPPerMinute = 30
	}
	if c.LoginPerAccountPerMinute <= 0 {
		c.LoginPerAccountPerMinute = 10
	}
	if c.APIPerIPPerSecond <= 0 {
		c.APIPerIPPerSecond = 200
	}
	if c.APIPerAccountPerSecond <= 0 {
		c.APIPerAccountPerSecond = 50
	}
	if c.VisitorTokenTTL <= 0 {
		c.VisitorTokenTTL = 30 * 24 * time.Hour
	}
}

// restBodyLimit bounds a REST request body: a knowledge-base import of
// several thousand entries fits. WebSocket frames have their own, smaller
// limit (MaxFrameBytes).
const restBodyLimit = 8 << 20

// Server is the running edge.
type Server struct {
	cfg     Config
	app     *fiber.App
	metrics *metrics
	log     *slog.Logger

	ready    atomic.Bool // set by SetReady once the cluster member has joined
	draining atomic.Bool

	mu    sync.Mutex
	conns map[*wsConn]struct{}
	wg    sync.WaitGroup // one per live socket handler

	writeBufs sync.Pool // WebSocket write buffers, shared by every socket

	// handshake checks WebSocket upgrades and answers them; connMaker
	// makes the Conn of an upgraded connection (see upgrade.go).
	handshake fastws.FastHTTPUpgrader
	connMaker fastws.Upgrader

	// Rate limits of the HTTP API (WebSocket frames are limited per socket).
	authLimit, loginLimit, ipLimit, accountLimit *keyedLimiter
}

// New builds the edge; call Serve to accept connections.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil || cfg.Signer == nil || cfg.Verifier == nil {
		return nil, errors.New("edge: Client, Signer and Verifier are required")
	}
	cfg.setDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, conns: make(map[*wsConn]struct{}),
		authLimit:    newKeyedLimiter(float64(cfg.AuthPerIPPerMinute)/60, cfg.AuthPerIPPerMinute),
		loginLimit:   newKeyedLimiter(float64(cfg.LoginPerAccountPerMinute)/60, cfg.LoginPerAccountPerMinute),
		ipLimit:      newKeyedLimiter(cfg.APIPerIPPerSecond, int(2*cfg.APIPerIPPerSecond)),
		accountLimit: newKeyedLimiter(cfg.APIPerAccountPerSecond, int(2*cfg.APIPerAccountPerSecond)),
	}
	s.metrics = newMetrics(cfg.Registry)
	s.newApp()
	if err := s.routes(); err != nil {
		return nil, err
	}
	return s, nil
}

// NewHealth builds a server of the probes only (/healthz, /readyz,
// /metrics from reg): the HTTP side of an actor node, which serves no
// clients. Like the edge's, its /readyz answers 503 until SetReady(true)
// and from Shutdown on. A nil logger or registry is as in Config.
func NewHealth(reg *prometheus.Registry, logger *slog.Logger) *Server {
	cfg := Config{Registry: reg, Logger: logger}
	cfg.setDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, conns: make(map[*wsConn]struct{})}
	s.newApp()
	s.probeRoutes()
	return s
}

func (s *Server) newApp() {
	s.app = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		// Strings from a request (path parameters, queries) travel into
		// actor messages that outlive the handler; fasthttp reuses its
		// buffers afterwards, so they must be copies.
		Immutable:    true,
		BodyLimit:    restBodyLimit,
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 30 * time.Second,
		IdleTimeout:  120 * time.Second,
		ErrorHandler: s.errorHandler,
	})
	// WebSocket handlers hand their connections to goroutines of their
	// own and close them themselves (upgrade.go).
	s.app.Server().KeepHijackedConns = true
}

// probeRoutes serves the health, readiness and metrics probes.
func (s *Server) probeRoutes() {
	s.app.Get("/healthz", func(c *fiber.Ctx) error { return c.SendString("ok") })
	s.app.Get("/readyz", func(c *fiber.Ctx) error {
		if !s.ready.Load() || s.draining.Load() {
			return c.Status(http.StatusServiceUnavailable).SendString("not ready")
		}
		return c.SendString("ready")
	})
	s.app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})))
}

func (s *Server) routes() error {
	app := s.app
	s.probeRoutes()

	app.Use(s.securityHeaders)
	v1 := app.Group("/v1", s.requireReady, s.limitIP)
	s.authRoutes(v1)
	s.identityRoutes(v1)
	v1.Post("/conversations", s.requireToken(auth.AudienceUser), s.createConversation)
	v1.Get("/conversations", s.checkOrigin, s.requireToken(auth.AudienceStaff), s.listConversations)
	v1.Get("/conversations/:id/messages", s.requireAnyToken, s.history)
	v1.Get("/conversations/:id/export", s.checkOrigin, s.requireToken(auth.AudienceStaff), s.export)
	v1.Get("/conversations/:id/assist", s.checkOrigin, s.requireToken(auth.AudienceStaff), s.assist)
	v1.Get("/audit", s.checkOrigin, s.requireToken(auth.AudienceStaff), s.auditLog)
	s.kbRoutes(v1)
	s.takeoverRoutes(v1)
	if err := s.webRoutes(app); err != nil {
		return err
	}

	// Every origin may upgrade, as under gofiber/contrib/websocket:
	// checkOrigin guards the staff endpoint, customers' pages live on any
	// site.
	s.handshake = fastws.FastHTTPUpgrader{CheckOrigin: func(*fasthttp.RequestCtx) bool { return true }}
	// Buffers are most of an idle socket's memory. The WebSocket reader
	// needs little of its own (frames are small); write buffers are taken
	// from a pool only while a frame is written.
	s.connMaker = fastws.Upgrader{ReadBufferSize: 512, WriteBufferSize: 2048, WriteBufferPool: &s.writeBufs,
		CheckOrigin: func(*http.Request) bool { return true }}
	v1.Get("/ws/user", s.upgradeOnly, s.upgrade(auth.AudienceUser))
	v1.Get("/ws/agent", s.upgradeOnly, s.checkOrigin, s.upgrade(auth.AudienceStaff))
	return nil
}

// securityHeaders tells browsers to treat every answer as what it says it
// is and never frame it, and (over TLS) to use HTTPS only from now on.
func (s *Server) securityHeaders(c *fiber.Ctx) error {
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	if s.cfg.HSTS {
		c.Set(fiber.HeaderStrictTransportSecurity, "max-age=31536000; includeSubDomains")
	}
	return c.Next()
}

// requireReady refuses API requests and new sockets until the server is
// ready (its member has joined the cluster): before, there is nothing to
// forward them to.
func (s *Server) requireReady(c *fiber.Ctx) error {
	if !s.ready.Load() {
		return apiError(c, engine.NewError(engine.CodeUnavailable, "the server is joining the cluster; try again"))
	}
	return c.Next()
}

// limitIP bounds the API requests of one client IP.
func (s *Server) limitIP(c *fiber.Ctx) error {
	if !s.ipLimit.allow(c.IP(), s.cfg.Clock.Now()) {
		return apiError(c, engine.NewError(engine.CodeRateLimited, "too many requests from this address; slow down"))
	}
	return c.Next()
}

// upgradeOnly refuses plain HTTP on WebSocket routes and refuses new
// sockets while draining.
func (s *Server) upgradeOnly(c *fiber.Ctx) error {
	if !fastws.FastHTTPIsWebSocketUpgrade(c.Context()) {
		return fiber.ErrUpgradeRequired
	}
	if s.draining.Load() {
		return fiber.NewError(http.StatusServiceUnavailable, "shutting down")
	}
	return c.Next()
}

// checkOrigin rejects cross-site browser requests to staff endpoints.
func (s *Server) checkOrigin(c *fiber.Ctx) error {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" || origin == c.BaseURL() {
		return c.Next()
	}
	for _, o := range s.cfg.AllowedOrigins {
		if strings.EqualFold(o, origin) {
			return c.Next()
		}
	}
	return apiError(c, engine.NewError(engine.CodeForbidden, "origin "+origin+" is not allowed"))
}

// SetReady marks the server ready (or not): /readyz answers 200 only while
// it is ready and not shutting down, and the API and new sockets are
// refused (503, unavailable) until it is ready.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(ln) }

// Shutdown stops accepting, closes every socket with a close frame (1001),
// waits for their handlers to return and stops the HTTP server.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	for c := range s.conns {
		c.close(fastws.CloseGoingAway, "server shutting down")
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.app.ShutdownWithContext(ctx)
}

// track registers a live socket; it refuses once Shutdown has begun, so
// Shutdown's wait covers every socket it did not see.
func (s *Server) track(c *wsConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c *wsConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}
