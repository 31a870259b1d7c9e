package main

import (
	"bytes"
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/auth"
	"github.com/kefu-dev/kefu/bots"
	"github.com/kefu-dev/kefu/cluster"
	"github.com/kefu-dev/kefu/config"
	"github.com/kefu-dev/kefu/edge"
	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/kb"
	mongostore "github.com/kefu-dev/kefu/store/mongo"
	"github.com/kefu-dev/kefu/store/sealed"
	"github.com/kefu-dev/kefu/store/sqlite"
	"github.com/kefu-dev/kefu/web"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run executes one subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := config.Load(args, getenv, stderr)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "kefu: invalid configuration:\n  %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
			return 2
		}
		logger := newLogger(cfg.Log, stderr)
		if err := serve(ctx, cfg, logger, stdout, serveHooks{}); err != nil {
			logger.Error("kefu stopped with an error", "err", err)
			return 1
		}
		return 0
	case "kb":
		return runKB(ctx, args, stdout, stderr, getenv)
	case "bench":
		return runBench(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "kefu", version)
		return 0
	case "keys":
		return runKeys(ctx, args, stdout, stderr, getenv)
	case "eval":
		return runEval(args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: kefu [serve] [flags] | kefu kb import|export ... | kefu keys rotate [flags] | kefu eval ... | kefu bench ... | kefu version\nrun `kefu serve -h` for every setting")
		return 0
	default:
		fmt.Fprintf(stderr, "kefu: unknown command %q (try `kefu help`)\n", cmd)
		return 2
	}
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serveHooks let tests watch and steer a server.
type serveHooks struct {
	onListen  func(addr string)               // receives the HTTP address once the probes answer, before the member joins
	onReady   func(addr string)               // receives the HTTP address once the server is ready
	clock     engine.Clock                    // nil: the wall clock
	wrapStore func(engine.Store) engine.Store // nil: the store as opened; tests wrap it to hold or fail calls
}

// serve runs Kefu in its role until ctx is done, then shuts down in order:
// stop accepting and close every socket, stop the timer scheduler, leave
// the cluster and stop the actors, flush the store's writer and close the
// database. An actor node keeps answering its probes (503) until it has
// left. Role edge opens no store and hosts no actors.
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger, stdout io.Writer, hooks serveHooks) error {
	clock := hooks.clock
	if clock == nil {
		clock = engine.SystemClock{}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hostsActors, servesClients := cfg.Role != config.RoleEdge, cfg.Role != config.RoleNode

	var (
		store engine.Store // nil for an edge
		where string
		kinds []*protocluster.Kind
	)
	if hostsActors {
		var err error
		if store, _, where, err = openStore(ctx, cfg, logger, reg); err != nil {
			return fmt.Errorf("opening the store: %w", err)
		}
		if hooks.wrapStore != nil {
			store = hooks.wrapStore(store)
		}
		defer func() {
			if err := store.Close(); err != nil {
				logger.Error("closing the store", "err", err)
			}
		}()
		if err := bootstrap(ctx, store, cfg.Bootstrap, logger, stdout); err != nil {
			return err
		}
		deps, err := actorDeps(cfg, store, clock, logger, reg)
		if err != nil {
			return err
		}
		kinds = actors.Kinds(deps)
	}
	node, err := cluster.New(cluster.Config{
		Name: cfg.Cluster.Name, Host: cfg.Cluster.Host, Port: cfg.Cluster.Port,
		AdvertisedHost: cfg.Cluster.AdvertisedHost, AdvertisedPort: cfg.Cluster.AdvertisedPort,
		Etcd: cfg.Cluster.Etcd, Client: !hostsActors,
		RequestTimeout: cfg.Cluster.RequestTimeout.D(), Logger: logger,
	}, kinds...)
	if err != nil {
		return err
	}
	defer node.Shutdown() // returns once every activation has stopped and stored what it held
	// Made before the member joins, the client follows every topology
	// change: the actors of a node reach each other through it too.
	client := actors.NewClient(node.Cluster, cfg.Cluster.RequestTimeout.D(), logger)

	srv := edge.NewHealth(reg, logger)
	if servesClients {
		if srv, err = newEdge(ctx, cfg, store, client, logger, reg); err != nil {
			return err
		}
	}
	// The probes answer while the member joins: /healthz 200, /readyz 503.
	ln, err := listen(cfg.HTTP)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if hooks.onListen != nil {
		hooks.onListen(ln.Addr().String())
	}
	stopHTTP := sync.OnceFunc(func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout.D())
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			logger.Error("stopping the HTTP server", "err", err)
		}
	})
	defer stopHTTP()

	joinCtx, cancel := context.WithTimeout(ctx, cfg.Cluster.JoinTimeout.D())
	err = node.Join(joinCtx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			logger.Info("stopped before joining the cluster")
			return nil
		}
		return err
	}
	stopScheduler := func() {}
	if hostsActors {
		schedCtx, cancel := context.WithCancel(context.Background())
		schedDone := make(chan struct{})
		go func() {
			defer close(schedDone)
			actors.NewScheduler(store, clock, node.Cluster, cfg.Conversation.TimerInterval.D(), logger).Run(schedCtx)
		}()
		stopScheduler = sync.OnceFunc(func() { cancel(); <-schedDone })
		defer stopScheduler()
	}
	srv.SetReady(true)
	addr := ln.Addr().String()
	ready := []any{"http", addr}
	if hostsActors {
		ready = append(ready, "store", where)
	}
	logger.Info("kefu is ready", append(ready, "cluster", node.Address(), "role", cfg.Role)...)
	if hooks.onReady != nil {
		hooks.onReady(addr)
	}

	var stopErr error
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case err := <-node.Lost():
		stopErr = fmt.Errorf("%w; stopping so that a restart joins again", err)
	}
	logger.Info("shutting down")
	srv.SetReady(false)
	if servesClients {
		stopHTTP() // every socket gets its close frame (1001) before the actors stop
	}
	stopScheduler()
	node.Shutdown() // leaves the cluster, then stops the actors
	return stopErr  // deferred: stop the probes, then flush and close the store
}

// actorDeps builds what the actors of a node need.
func actorDeps(cfg config.Config, store engine.Store, clock engine.Clock, logger *slog.Logger, reg prometheus.Registerer) (actors.Deps, error) {
	bot, err := newBot(cfg.Bot, logger)
	if err != nil {
		return actors.Deps{}, err
	}
	indexCfg := kb.IndexConfig{Logger: logger}
	if e := cfg.Bot.Embeddings; e.BaseURL != "" {
		if indexCfg.Embedder, err = kb.NewOpenAIEmbedder(kb.OpenAIEmbedderConfig{BaseURL: e.BaseURL, Model: e.Model, APIKey: e.APIKey}); err != nil {
			return actors.Deps{}, fmt.Errorf("bot.embeddings: %w", err)
		}
	}
	return actors.Deps{
		Store: store, Clock: clock, Logger: logger, Metrics: actors.NewMetrics(reg),
		Recent: cfg.Conversation.Recent, IdleTimeout: cfg.Conversation.IdleTimeout.D(),
		StoreTimeout: cfg.Store.StoreTimeout.D(), Bot: bot,
		Knowledge: actors.NewKnowledge(store, indexCfg, 0, logger),
		WeChat:    actors.WeChatConfig{APIBase: strings.TrimSuffix(cfg.WeChat.APIBase, "/")},
		SignIn: actors.SignInPolicy{LockoutThreshold: cfg.Auth.LockoutThreshold, LockoutDuration: cfg.Auth.LockoutDuration.D(),
			RefreshTTL: cfg.Auth.RefreshTokenTTL.D()},
	}, nil
}

// newEdge builds the HTTP and WebSocket edge over the member's client.
// store is nil for role edge, whose token keys must be configured.
func newEdge(ctx context.Context, cfg config.Config, store engine.Store, client *actors.Client, logger *slog.Logger, reg *prometheus.Registry) (*edge.Server, error) {
	keys, err := tokenKeys(ctx, store, cfg.Auth)
	if err != nil {
		return nil, err
	}
	if cfg.Role == config.RoleAll && len(cfg.Cluster.Etcd) > 0 && cfg.Auth.TokenSecret == "" && len(cfg.Auth.TokenKeys) == 0 {
		logger.Warn("tokens are signed with the key kept in the store, which edges cannot read: give every member that serves HTTP the same auth.token_secret")
	}
	return edge.New(edge.Config{
		Client:   client,
		Signer:   &auth.Signer{Keys: keys, Issuer: "kefu"},
		Verifier: &auth.Verifier{Keys: keys, Issuer: "kefu", Leeway: 30 * time.Second},
		Logger:   logger, Registry: reg,
		MaxFrameBytes: cfg.WS.MaxFrameBytes, SendQueue: cfg.WS.SendQueue,
		RatePerSec: cfg.WS.RatePerSec, Burst: cfg.WS.Burst, FloodLimit: cfg.WS.FloodLimit,
		PingInterval: cfg.WS.PingInterval.D(), HelloTimeout: cfg.WS.HelloTimeout.D(),
		WriteTimeout:   cfg.WS.WriteTimeout.D(),
		AllowedOrigins: cfg.HTTP.AllowedOrigins,
		Web:            web.Dist(), WidgetFrameAncestors: cfg.HTTP.WidgetFrameAncestors,
		StaffTokenTTL: cfg.Auth.StaffTokenTTL.D(), VisitorTokenTTL: cfg.Auth.VisitorTokenTTL.D(),
		SecureCookies: cfg.HTTP.SecureCookies || cfg.HTTP.TLSCertFile != "", HSTS: cfg.HTTP.TLSCertFile != "",
		AuthPerIPPerMinute: cfg.Limits.AuthPerIPPerMinute, LoginPerAccountPerMinute: cfg.Limits.LoginPerAccountPerMinute,
		APIPerIPPerSecond: cfg.Limits.APIPerIPPerSecond, APIPerAccountPerSecond: cfg.Limits.APIPerAccountPerSecond,
	})
}

// newBot builds the bot pipeline: FAQ-only, or with an LLM when configured.
// A disabled bot is nil.
func newBot(c config.Bot, logger *slog.Logger) (*bots.Pipeline, error) {
	if !c.Enabled {
		return nil, nil
	}
	var llm *bots.LLM
	if c.LLM.BaseURL != "" {
		var err error
		llm, err = bots.NewLLM(bots.LLMConfig{BaseURL: c.LLM.BaseURL, Model: c.LLM.Model, APIKey: c.LLM.APIKey, Timeout: c.LLM.Timeout.D(), Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("bot.llm: %w", err)
		}
		logger.Info("the bot answers low-confidence questions with an LLM", "base_url", c.LLM.BaseURL, "model", c.LLM.Model)
	}
	return bots.New(bots.Config{LLM: llm, MaxFailedTurns: c.MaxFailedTurns, Logger: logger}), nil
}

// demoFAQ is the demo tenant's knowledge base: an online shop's common
// questions about orders, payment, delivery and returns.
//
//go:embed demo/faq-demo.json
var demoFAQ []byte

// demoCanned are the demo tenant's canned responses, shared by its staff.
func demoCanned(tenant string, now time.Time) []engine.CannedResponse {
	out := []engine.CannedResponse{
		{Shortcut: "hi", Title: "问候", Text: "您好，我是客服，请问有什么可以帮您？"},
		{Shortcut: "wait", Title: "请稍等", Text: "请稍等，我帮您查询一下。"},
		{Shortcut: "refund", Title: "退款说明", Text: "退款申请审核通过后，款项将在 1-3 个工作日内原路退回，请留意账户变动。"},
		{Shortcut: "bye", Title: "结束语", Text: "感谢您的咨询，祝您生活愉快！"},
	}
	for i := range out {
		out[i].Tenant, out[i].ID, out[i].Scope, out[i].UpdatedAt = tenant, engine.NewID(now), engine.CannedTenant, now
	}
	return out
}

// openStore opens the database (openDatabase) and wraps it in store/sealed,
// so that personal data is encrypted at rest, with the configured master
// keys (openKeys). where names the database for the log.
func openStore(ctx context.Context, cfg config.Config, logger *slog.Logger, reg prometheus.Registerer) (_ engine.Store, _ *sealed.Keys, where string, err error) {
	db, where, err := openDatabase(ctx, cfg, logger, reg)
	if err != nil {
		return nil, nil, "", err
	}
	keys, err := openKeys(ctx, cfg, db, logger)
	if err != nil {
		db.Close()
		return nil, nil, "", err
	}
	return sealed.Wrap(db, keys), keys, where, nil
}

// openDatabase opens MongoDB when store.mongo_uri is set, else the embedded
// SQLite file. where names it for the log, without the URI's credentials.
func openDatabase(ctx context.Context, cfg config.Config, logger *slog.Logger, reg prometheus.Registerer) (store engine.Store, where string, err error) {
	if cfg.Store.MongoURI != "" {
		s, err := mongostore.Open(ctx, mongostore.Config{URI: cfg.Store.MongoURI, Database: cfg.Store.MongoDatabase,
			MaxBatch: cfg.Store.MaxBatch, Logger: logger, Registerer: reg})
		if err != nil {
			return nil, "", err
		}
		return s, "mongodb database " + cfg.Store.MongoDatabase, nil
	}
	s, err := sqlite.Open(ctx, sqlite.Config{Path: cfg.SQLiteFile(), MaxBatch: cfg.Store.MaxBatch, Logger: logger, Registerer: reg})
	if err != nil {
		return nil, "", err
	}
	return s, cfg.SQLiteFile(), nil
}

// bootstrap creates the demo tenant, its admin, its knowledge base and
// canned responses on an empty store, so a new installation is usable at
// once. The generated
// password is printed once and never stored in clear.
func bootstrap(ctx context.Context, store engine.Store, b config.Bootstrap, logger *slog.Logger, stdout io.Writer) error {
	n, err := store.CountTenants(ctx)
	if err != nil || n > 0 {
		return err
	}
	now := time.Now().UTC()
	switch err := store.CreateTenant(ctx, engine.Tenant{ID: b.Tenant, Name: "Demo shop", AppID: b.Tenant, CreatedAt: now}); {
	case errors.Is(err, engine.ErrExists):
		return nil // another node of the cluster, starting at the same time, bootstraps
	case err != nil:
		return fmt.Errorf("creating the demo tenant: %w", err)
	}
	password, generated := b.AdminPassword, false
	if password == "" {
		password, generated = auth.GenerateSecret(12), true
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	admin := engine.Staff{Tenant: b.Tenant, ID: engine.NewID(now), Username: b.AdminUser, DisplayName: "Administrator", Role: engine.StaffAdmin, PasswordHash: hash, CreatedAt: now}
	if err := store.CreateStaff(ctx, admin); err != nil {
		return fmt.Errorf("creating the admin account: %w", err)
	}
	entries, err := kb.ParseJSON(bytes.NewReader(demoFAQ))
	if err != nil {
		return fmt.Errorf("the demo knowledge base: %w", err)
	}
	for i := range entries {
		entries[i].Version, entries[i].UpdatedAt = 1, now
	}
	if err := store.PutFAQ(ctx, b.Tenant, actors.EntriesToStore(entries)); err != nil {
		return fmt.Errorf("storing the demo knowledge base: %w", err)
	}
	canned := demoCanned(b.Tenant, now)
	for _, c := range canned {
		if err := store.PutCanned(ctx, c); err != nil {
			return fmt.Errorf("storing the demo canned responses: %w", err)
		}
	}
	logger.Info("first start: created the demo tenant, its admin, its knowledge base and canned responses", "tenant", b.Tenant,
		"admin", b.AdminUser, "faq_entries", len(entries), "canned_responses", len(canned))
	if generated {
		fmt.Fprintf(stdout, "\nKefu's first start created tenant %q with admin %q.\nAdmin password (shown only this once): %s\n\n", b.Tenant, b.AdminUser, password)
	}
	return nil
}

// tokenKeys returns the token signing keys: the configured ones, or one
// generated on first start and kept in the store for every node to share.
// Without a store (role edge) they must be configured.
func tokenKeys(ctx context.Context, store engine.Store, a config.Auth) (*auth.Keyring, error) {
	current, keys, err := a.Keys()
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 && store == nil {
		return nil, errors.New("role edge opens no store, where the generated token key is kept: set auth.token_secret or auth.token_keys, the same on every member that serves HTTP")
	}
	if len(keys) == 0 {
		secret, err := store.PutSettingIfAbsent(ctx, "auth.token_key.k1", auth.GenerateSecret(32))
		if err != nil {
			return nil, fmt.Errorf("token key: %w", err)
		}
		current, keys = "k1", map[string][]byte{"k1": []byte(secret)}
	}
	return auth.NewKeyring(current, keys)
}

// listen opens the HTTP listener: TLS when a certificate is configured.
func listen(h config.HTTP) (net.Listener, error) {
	var cert tls.Certificate
	if h.TLSCertFile != "" {
		var err error
		if cert, err = tls.LoadX509KeyPair(h.TLSCertFile, h.TLSKeyFile); err != nil {
			return nil, fmt.Errorf("http.tls_cert_file: %w", err)
		}
	}
	ln, err := net.Listen("tcp", h.Addr)
	if err != nil {
		return nil, fmt.Errorf("http.addr %s: %w", h.Addr, err)
	}
	if h.TLSCertFile == "" {
		return ln, nil
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}
