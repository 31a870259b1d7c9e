package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/kefu-dev/kefu/engine"
)

// Config configures Open. Only URI is required.
type Config struct {
	// URI is the MongoDB connection string, for example
	// mongodb://db1,db2,db3/?replicaSet=rs0. Required.
	URI string
	// Database is the database Kefu keeps its collections in. Empty means
	// "kefu".
	Database string
	// WriteConcern of every write. Nil means the URI's (w=..., journal=...)
	// if it sets one, else majority with journaling: a write acknowledged
	// to Kefu survives the loss of the primary.
	WriteConcern *writeconcern.WriteConcern
	// MaxBatch is the most Append calls one InsertMany takes. Zero means
	// 512.
	MaxBatch int
	// BatchTimeout bounds the round trips of one batch of appends. Zero
	// means 30s.
	BatchTimeout time.Duration
	// Logger receives the store's few log lines (open, failed batches,
	// close). Nil discards them.
	Logger *slog.Logger
	// Registerer receives the metrics of metrics.go. Nil means the metrics
	// are kept but not exported.
	Registerer prometheus.Registerer
	// Clock stamps records whose CreatedAt is zero. Nil means
	// engine.SystemClock.
	Clock engine.Clock
}

const (
	defaultDatabase     = "kefu"
	defaultMaxBatch     = 512
	defaultBatchTimeout = 30 * time.Second
	// knownConversations bounds the set of conversations the store has seen
	// exist; when full it starts again empty.
	knownConversations = 100_000
	// disconnectTimeout bounds Close's wait for the driver to end its
	// connections.
	disconnectTimeout = 10 * time.Second
)

// Store is engine.Store on MongoDB. Its methods are safe for concurrent use.
type Store struct {
	log    *slog.Logger
	clock  engine.Clock
	client *mongo.Client
	dbName string
	wc     *writeconcern.WriteConcern
	c      collections
	// atomicUpdates: the server applies an update's filter and operators to
	// a document atomically (MongoDB does; FerretDB v1 reads, modifies and
	// writes back without isolation).
	atomicUpdates bool
	metrics       *metrics
	known         *knownSet
	w             *writer

	// mu makes "check closed, then register the call" atomic with respect
	// to Close (see doc.go).
	mu        sync.RWMutex
	closed    bool
	calls     sync.WaitGroup
	ops       chan *appendOp
	closeOnce sync.Once
	closeErr  error
}

var _ engine.Store = (*Store)(nil)

// collections are the store's collections; schema.go lists their indexes.
type collections struct {
	tenants, staff, conversations, messages, readPointers, settings *mongo.Collection
	events, faq                                                     *mongo.Collection
	profiles, groups, tenantSettings, customers, notes, timers      *mongo.Collection
	sessions, loginStates, tenantCredentials                        *mongo.Collection
	audit                                                           *mongo.Collection
	dataKeys, canned                                                *mongo.Collection
}

// testHooks let tests choose paths Open would otherwise pick from the
// server. All zero in production.
type testHooks struct {
	// atomicUpdates, when set, overrides the detection of the server.
	atomicUpdates *bool
	// beforeBatch runs on the writer goroutine before each batch.
	beforeBatch func(batchLen int)
}

// Open connects to cfg.URI, creates the indexes the store needs (existing
// ones are kept) and starts the writer goroutine. It fails unless a primary
// answers within ctx.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	return open(ctx, cfg, testHooks{})
}

func open(ctx context.Context, cfg Config, hooks testHooks) (_ *Store, err error) {
	if cfg.URI == "" {
		return nil, errors.New("mongo: Config.URI is required")
	}
	if cfg.Database == "" {
		cfg.Database = defaultDatabase
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = defaultBatchTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = engine.SystemClock{}
	}
	opts := options.Client().ApplyURI(cfg.URI)
	wc := cfg.WriteConcern
	if wc == nil {
		wc = opts.WriteConcern
	}
	if wc == nil {
		journal := true
		wc = &writeconcern.WriteConcern{W: "majority", Journal: &journal}
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("mongo: register metrics: %w", err)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: %w", err)
	}
	defer func() {
		if err != nil {
			dctx, cancel := context.WithTimeout(context.Background(), disconnectTimeout)
			defer cancel()
			_ = client.Disconnect(dctx)
		}
	}()
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		return nil, fmt.Errorf("mongo: no primary answers: %w", err)
	}
	// Reads go to the primary whatever the URI says: a secondary may not
	// have a write yet that was acknowledged to a caller.
	db := client.Database(cfg.Database, options.Database().SetWriteConcern(wc).SetReadPreference(readpref.Primary()))
	s := &Store{
		log: cfg.Logger, clock: cfg.Clock, client: client, dbName: cfg.Database, wc: wc,
		c: collections{
			tenants: db.Collection("tenants"), staff: db.Collection("staff"),
			conversations: db.Collection("conversations"), messages: db.Collection("messages"),
			readPointers: db.Collection("read_pointers"), settings: db.Collection("settings"),
			events: db.Collection("conv_events"), faq: db.Collection("faq_entries"),
			profiles: db.Collection("agent_profiles"), groups: db.Collection("skill_groups"),
			tenantSettings: db.Collection("tenant_settings"), customers: db.Collection("customers"),
			notes: db.Collection("notes"), timers: db.Collection("timers"),
			sessions: db.Collection("staff_sessions"), loginStates: db.Collection("login_states"),
			tenantCredentials: db.Collection("tenant_credentials"),
			audit:             db.Collection("audit_log"),
			dataKeys:          db.Collection("data_keys"),
			canned:            db.Collection("canned_responses"),
		},
		metrics: m, known: newKnownSet(knownConversations),
	}
	server, err := serverInfo(ctx, db)
	if err != nil {
		return nil, err
	}
	s.atomicUpdates = !server.ferretDB
	if hooks.atomicUpdates != nil {
		s.atomicUpdates = *hooks.atomicUpdates
	}
	if err := ensureIndexes(ctx, db); err != nil {
		return nil, err
	}
	if err := migrateTimerIDs(ctx, s.c.timers); err != nil {
		return nil, err
	}

	// Room for the callers of a whole batch to queue while the previous
	// batch is inserted.
	s.ops = make(chan *appendOp, cfg.MaxBatch)
	s.w = &writer{
		ops: s.ops, maxBatch: cfg.MaxBatch, timeout: cfg.BatchTimeout,
		s: s, done: make(chan struct{}), hooks: hooks,
	}
	go s.w.run()
	s.log.Info("mongo: store open", "database", cfg.Database, "server", server.version,
		"ferretdb", server.ferretDB, "write_concern", fmt.Sprint(wc.W), "atomic_updates", s.atomicUpdates)
	return s, nil
}

type serverDesc struct {
	version  string
	ferretDB bool
}

// serverInfo asks the server what it is. FerretDB answers buildInfo with a
// ferretdbVersion field besides the MongoDB version it emulates.
func serverInfo(ctx context.Context, db *mongo.Database) (serverDesc, error) {
	var info struct {
		Version         string `bson:"version"`
		FerretDBVersion string `bson:"ferretdbVersion"`
	}
	raw, err := db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Raw()
	if err != nil {
		return serverDesc{}, fmt.Errorf("mongo: buildInfo: %w", err)
	}
	if err := bson.Unmarshal(raw, &info); err != nil {
		return serverDesc{}, fmt.Errorf("mongo: buildInfo: %w", err)
	}
	_, isFerret := raw.Lookup("ferretdbVersion").StringValueOK()
	return serverDesc{version: info.Version, ferretDB: isFerret}, nil
}

// Close stops accepting calls (later ones return engine.ErrClosed), waits
// for the calls under way, inserts every append already queued, stops the
// writer and disconnects. It is safe to call more than once; later calls
// return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.calls.Wait() // no call is mid-send any more
		close(s.ops)
		<-s.w.done // the writer has inserted everything queued
		ctx, cancel := context.WithTimeout(context.Background(), disconnectTimeout)
		defer cancel()
		s.closeErr = s.client.Disconnect(ctx)
		if s.closeErr != nil {
			s.log.Error("mongo: close", "database", s.dbName, "err", s.closeErr)
		} else {
			s.log.Info("mongo: store closed", "database", s.dbName)
		}
	})
	return s.closeErr
}

// enter registers a call, or returns engine.ErrClosed. Every method that
// passes it calls s.calls.Done when it returns.
func (s *Store) enter() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return engine.ErrClosed
	}
	s.calls.Add(1)
	return nil
}

// requireConversation returns engine.ErrNotFound unless tenant has
// conversation conv.
func (s *Store) requireConversation(ctx context.Context, tenant, conv string) error {
	if s.known.has(tenant, conv) {
		return nil
	}
	err := s.c.conversations.FindOne(ctx, convFilter(tenant, conv), options.FindOne().SetProjection(idOnly)).Err()
	switch {
	case err == nil:
		s.known.add(tenant, conv)
		return nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("mongo: conversation %s/%s: %w", tenant, conv, engine.ErrNotFound)
	default:
		return fmt.Errorf("mongo: conversation %s/%s: %w", tenant, conv, err)
	}
}

// requireTenant returns engine.ErrNotFound unless the tenant exists.
func (s *Store) requireTenant(ctx context.Context, tenant string) error {
	err := s.c.tenants.FindOne(ctx, bson.D{{Key: "_id", Value: tenant}}, options.FindOne().SetProjection(idOnly)).Err()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("tenant %s: %w", tenant, engine.ErrNotFound)
	default:
		return fmt.Errorf("tenant %s: %w", tenant, err)
	}
}

var idOnly = bson.D{{Key: "_id", Value: 1}}

// knownSet remembers conversations that exist. Conversations are never
// deleted, so an entry never goes stale; a port that deletes them must
// forget them here too.
type knownSet struct {
	mu  sync.Mutex
	m   map[string]struct{}
	max int
}

func newKnownSet(max int) *knownSet { return &knownSet{m: map[string]struct{}{}, max: max} }

func knownKey(tenant, conv string) string { return tenant + "\x00" + conv }

func (k *knownSet) has(tenant, conv string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.m[knownKey(tenant, conv)]
	return ok
}

func (k *knownSet) add(tenant, conv string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.m) >= k.max {
		clear(k.m)
	}
	k.m[knownKey(tenant, conv)] = struct{}{}
}
