package mongotest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// EnvURI names the variable that points the tests at a real MongoDB (a
// replica set, for majority writes) instead of FerretDB.
const EnvURI = "KEFU_TEST_MONGO_URI"

// Server is a running MongoDB-wire server.
type Server struct {
	// URI is the connection string, without a database name.
	URI string
	// FerretDB is true for the in-process FerretDB, false for a server named
	// by KEFU_TEST_MONGO_URI.
	FerretDB bool

	cancel context.CancelFunc
	done   chan error
	dir    string
}

// Start starts a FerretDB on 127.0.0.1 with its data in a new temporary
// directory, or returns the server of KEFU_TEST_MONGO_URI if that is set.
// Close stops it.
func Start() (*Server, error) {
	if uri := os.Getenv(EnvURI); uri != "" {
		return &Server{URI: uri}, nil
	}
	dir, err := os.MkdirTemp("", "kefu-ferretdb-")
	if err != nil {
		return nil, err
	}
	// FerretDB's SQLite backend keeps one file per database in this
	// directory; its URL must end with a slash. synchronous(NORMAL): a
	// commit is durable once in the WAL, without an fsync of its own.
	// FerretDB runs every statement in a transaction of its own (no group
	// commit, unlike MongoDB's journal), and the tests kill Kefu
	// processes, never FerretDB or the machine: an fsync per statement
	// would measure the test machine's disk instead of Kefu.
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Handler:   "sqlite",
		SQLiteURL: "file:" + filepath.ToSlash(dir) + "/?_pragma=synchronous(NORMAL)",
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mongotest: start FerretDB: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{FerretDB: true, cancel: cancel, done: make(chan error, 1), dir: dir}
	go func() { s.done <- f.Run(ctx) }()
	// MongoDBURI blocks until the listener is bound.
	s.URI = f.MongoDBURI()
	if err := waitDial(s.URI, 10*time.Second); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// DataDir is the directory of an in-process FerretDB's SQLite files, one
// per database ("" for an external server).
func (s *Server) DataDir() string { return s.dir }

// waitDial waits until the server at uri accepts TCP connections.
func waitDial(uri string, d time.Duration) error {
	host := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mongotest: FerretDB at %s does not accept connections: %w", host, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close stops an in-process FerretDB and removes its data; for an external
// server it does nothing.
func (s *Server) Close() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.cancel = nil
	err := <-s.done
	return errors.Join(err, os.RemoveAll(s.dir))
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
	dbCounter  atomic.Int64
)

// Shared returns one server for the whole test binary, started on first
// use. Call StopShared from TestMain after m.Run to stop it.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Start() })
	if sharedErr != nil {
		tb.Fatalf("mongotest: %v", sharedErr)
	}
	return shared
}

// StopShared stops the server Shared started, if any.
func StopShared() {
	if shared != nil {
		if err := shared.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "mongotest: stop FerretDB:", err)
		}
	}
}

// Database returns a database name no other test of this process uses,
// derived from tb's name so a leftover on a real server says where it came
// from, and drops that database on s when tb ends.
func (s *Server) Database(tb testing.TB) string {
	tb.Helper()
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, tb.Name())
	if len(name) > 40 { // MongoDB limits database names to 63 bytes
		name = name[len(name)-40:]
	}
	db := fmt.Sprintf("kefutest_%d_%s", dbCounter.Add(1), name)
	tb.Cleanup(func() {
		if err := s.dropDatabase(db); err != nil {
			tb.Logf("mongotest: drop database %s: %v", db, err)
		}
	})
	return db
}

// dropDatabase drops database name, with a client of its own: the store
// under test is closed by then.
func (s *Server) dropDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(s.URI))
	if err != nil {
		return err
	}
	defer client.Disconnect(ctx) //nolint:errcheck // nothing to do about it
	return client.Database(name).Drop(ctx)
}
