package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kefu-dev/kefu/engine"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures Open. Only Path is required.
type Config struct {
	// Path is the database file. Its parent directory is created if
	// missing. Required: an in-memory database could not be shared by the
	// writer and the read pool.
	Path string
	// MaxBatch is the most ops one group commit takes. Zero means 512.
	MaxBatch int
	// ReadConns is the number of connections in the read pool, that is
	// how many reads run at once. Zero means 4.
	ReadConns int
	// Logger receives the store's few log lines (open, migrations, failed
	// commits, close). Nil discards them.
	Logger *slog.Logger
	// Registerer receives the metrics of metrics.go. Nil means the metrics
	// are kept but not exported.
	Registerer prometheus.Registerer
	// Clock stamps records whose CreatedAt is zero and migrations. Nil
	// means engine.SystemClock.
	Clock engine.Clock
}

const (
	defaultMaxBatch  = 512
	defaultReadConns = 4
	// busyTimeoutMS bounds how long a connection waits for a lock held by
	// another process sharing the file (a backup, the sqlite3 shell).
	busyTimeoutMS = 5000
	// writeCacheKiB is the writer's page cache (negative: in KiB, as
	// PRAGMA cache_size takes it). A group commit dirties about two pages
	// per message, each in a different conversation's B-tree leaf; with
	// SQLite's 2 MiB default the writer spilled dirty pages to the WAL
	// mid-transaction and re-read leaves from disk, costing about a fifth
	// of BenchmarkAppendGroupCommit's throughput.
	writeCacheKiB = -64 * 1024
	// walCheckpointPages is how many WAL pages accumulate before a commit
	// checkpoints them into the database file (SQLite's default is 1000).
	// Hot leaf pages are rewritten in many consecutive commits; a longer
	// interval copies each once per checkpoint instead of once per few
	// commits. Measured: +20-40% appends/s. Since the checkpointer
	// (checkpoint.go) copies pages in the background, this is only a
	// backstop, which fires when the writer never finds the WAL fully
	// copied to restart it: by then little is left to copy. Lowering it
	// to 1000 with the checkpointer running cost a third of
	// BenchmarkAppendGroupCommit's appends/s.
	walCheckpointPages = 10000
	// walSizeLimit truncates the WAL file back to this size after a
	// checkpoint, so a burst does not leave a huge file behind.
	walSizeLimit = 64 << 20
)

// Store is engine.Store on SQLite. Its methods are safe for concurrent use.
type Store struct {
	log   *slog.Logger
	clock engine.Clock
	path  string

	wdb *sql.DB // holds the one write connection, owned by the writer
	w   *writer
	rdb *sql.DB // the read pool (query_only)
	rq  *readStmts
	ck  *checkpointer

	// mu makes "check closed, then send" atomic with respect to Close, so
	// Close can close ops knowing no sender is mid-send. Senders hold it
	// shared; the writer never takes it.
	mu     sync.RWMutex
	closed bool
	ops    chan op

	isClosed  atomic.Bool // the fast check for reads
	closeOnce sync.Once
	closeErr  error
}

var _ engine.Store = (*Store)(nil)

// Open opens (creating if needed) the database at cfg.Path, applies any
// migrations it lacks, and starts the writer goroutine.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	return open(ctx, cfg, testHooks{})
}

func open(ctx context.Context, cfg Config, hooks testHooks) (_ *Store, err error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: Config.Path is required")
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	if cfg.ReadConns <= 0 {
		cfg.ReadConns = defaultReadConns
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = engine.SystemClock{}
	}
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: create directory: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("sqlite: register metrics: %w", err)
	}

	s := &Store{log: cfg.Logger, clock: cfg.Clock, path: path}
	var conn *sql.Conn
	var wst *writeStmts
	defer func() {
		if err == nil {
			return
		}
		if s.rq != nil {
			s.rq.close()
		}
		if s.ck != nil {
			s.ck.close()
		}
		if wst != nil {
			wst.close()
		}
		if conn != nil {
			conn.Close()
		}
		for _, db := range []*sql.DB{s.rdb, s.wdb} {
			if db != nil {
				db.Close()
			}
		}
	}()

	// The write side: one connection, held for the store's life.
	// synchronous=FULL fsyncs the WAL at every commit: an acked message
	// survives a power cut (DESIGN.md §4).
	s.wdb, err = sql.Open("sqlite", dsn(path,
		"_pragma=journal_mode(WAL)", "_pragma=synchronous(FULL)", "_pragma=foreign_keys(1)",
		"_txlock=immediate",
		fmt.Sprintf("_pragma=cache_size(%d)", writeCacheKiB), fmt.Sprintf("_pragma=wal_autocheckpoint(%d)", walCheckpointPages),
		fmt.Sprintf("_pragma=journal_size_limit(%d)", walSizeLimit)))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	if conn, err = s.wdb.Conn(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	var mode string
	if err = conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("sqlite: read journal_mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		// Without WAL, readers would block the writer and vice versa.
		return nil, fmt.Errorf("sqlite: %s: journal_mode is %q, WAL is required", path, mode)
	}
	applied, err := migrate(ctx, conn, cfg.Clock.Now)
	if err != nil {
		return nil, err
	}
	if wst, err = prepareWriteStmts(ctx, conn); err != nil {
		return nil, err
	}

	// The read side: WAL lets these read concurrently with each other and
	// with the writer, each from the last committed snapshot.
	s.rdb, err = sql.Open("sqlite", dsn(path, "_pragma=query_only(1)"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open read pool: %w", err)
	}
	s.rdb.SetMaxOpenConns(cfg.ReadConns)
	s.rdb.SetMaxIdleConns(cfg.ReadConns)
	s.rdb.SetConnMaxLifetime(0)
	if s.rq, err = prepareReadStmts(ctx, s.rdb); err != nil {
		return nil, err
	}

	if s.ck, err = startCheckpointer(ctx, path, cfg.Logger, m); err != nil {
		return nil, err
	}

	// Enough room that the callers of a whole batch can queue without
	// blocking while the previous batch commits.
	s.ops = make(chan op, cfg.MaxBatch)
	s.w = &writer{
		conn: conn, st: wst, ops: s.ops, maxBatch: cfg.MaxBatch,
		log: cfg.Logger, metrics: m, hooks: hooks, done: make(chan struct{}),
	}
	go s.w.run()
	s.log.Info("sqlite: store open", "path", path, "migrations_applied", applied,
		"schema_version", migrations[len(migrations)-1].version)
	return s, nil
}

// dsn builds a modernc.org/sqlite data source name for path. The path is
// escaped as a file: URI so that '?', '#' or '%' in it cannot be read as
// parameters.
func dsn(path string, params ...string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	params = append([]string{fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeoutMS)}, params...)
	return u.String() + "?" + strings.Join(params, "&")
}

// Close stops accepting writes (later calls return engine.ErrClosed),
// commits every op already queued, stops the writer and closes the
// database. It is safe to call more than once; later calls return the
// first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.isClosed.Store(true)
		close(s.ops) // no sender is mid-send: each holds mu shared
		s.mu.Unlock()

		<-s.w.done // the writer has committed everything queued
		ckErr := s.ck.close()
		s.w.st.close()
		s.rq.close()
		s.closeErr = errors.Join(ckErr, s.w.conn.Close(), s.wdb.Close(), s.rdb.Close())
		if s.closeErr != nil {
			s.log.Error("sqlite: close", "path", s.path, "err", s.closeErr)
		} else {
			s.log.Info("sqlite: store closed", "path", s.path)
		}
	})
	return s.closeErr
}

// submit queues o for the writer and waits until it is committed (or failed).
//
// If ctx ends while o is still queued, the writer skips it. If ctx ends after
// the writer started it, o may still commit: the caller gets ctx.Err() and
// must treat the outcome as unknown (a resent Append then reports a
// *engine.DuplicateError, which is how the protocol resolves it).
func (s *Store) submit(ctx context.Context, o op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return engine.ErrClosed
	}
	select {
	case s.ops <- o:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case <-o.header().done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readErr maps an error of the read pool: a pool closed under a running
// read reports engine.ErrClosed.
func (s *Store) readErr(what string, err error) error {
	if s.isClosed.Load() {
		return engine.ErrClosed
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// msOf converts t to the stored form; zeroMS stands in for a zero time.
func msOf(t time.Time, zero time.Time) int64 {
	if t.IsZero() {
		t = zero
	}
	return t.UnixMilli()
}

func timeOf(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
