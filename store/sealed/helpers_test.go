package sealed

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kefu-dev/kefu/engine"
	mongostore "github.com/kefu-dev/kefu/store/mongo"
	"github.com/kefu-dev/kefu/store/mongo/mongotest"
	"github.com/kefu-dev/kefu/store/sqlite"
	"github.com/kefu-dev/kefu/store/storetest"
)

// TestMain stops the FerretDB the MongoDB runs share.
func TestMain(m *testing.M) {
	code := m.Run()
	mongotest.StopShared()
	os.Exit(code)
}

// masterKey returns test master key n: fixed, so failures reproduce.
func masterKey(n byte) []byte {
	k := sha256.Sum256([]byte{'m', n})
	return k[:]
}

func newKeys(tb testing.TB, ks engine.DataKeyStore, cfg Config) *Keys {
	tb.Helper()
	if cfg.MasterKeys == nil {
		cfg.MasterKeys = [][]byte{masterKey(1)}
	}
	k, err := NewKeys(ks, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// rawStore reaches behind the adapter to change what it stored, as
// someone with access to the database could.
type rawStore interface {
	// setBody overwrites the stored body of a message.
	setBody(tb testing.TB, tenant, conv string, seq int64, body engine.Body)
}

// backend is an adapter under test: open returns a fresh store on clock
// and its raw access.
type backend struct {
	name string
	open func(tb testing.TB, clock engine.Clock) (engine.Store, rawStore)
}

var backends = []backend{{"sqlite", openSQLite}, {"mongo", openMongo}}

// forEachBackend runs test as one subtest per adapter.
func forEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}

type rawSQLite struct{ db *sql.DB }

// openSQLite opens a SQLite store in a fresh directory, closed when tb
// ends. Its raw access is a second connection to the file.
func openSQLite(tb testing.TB, clock engine.Clock) (engine.Store, rawStore) {
	tb.Helper()
	s, path := openSQLitePath(tb, clock)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return s, rawSQLite{db}
}

func openSQLitePath(tb testing.TB, clock engine.Clock) (*sqlite.Store, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "kefu.db")
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, Clock: clock})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, path
}

func (r rawSQLite) exec(tb testing.TB, query string, args ...any) {
	tb.Helper()
	res, err := r.db.Exec(query, args...)
	if err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		tb.Fatalf("%s changed %d rows, want 1", query, n)
	}
}

func (r rawSQLite) setBody(tb testing.TB, tenant, conv string, seq int64, body engine.Body) {
	tb.Helper()
	b, _ := json.Marshal(body)
	r.exec(tb, `UPDATE messages SET body = ? WHERE tenant = ? AND conv = ? AND seq = ?`, string(b), tenant, conv, seq)
}

type rawMongo struct{ db *mongo.Database }

// openMongo opens a MongoDB store on a fresh database of the shared test
// server, closed when tb ends. Its raw access is a client of its own.
func openMongo(tb testing.TB, clock engine.Clock) (engine.Store, rawStore) {
	tb.Helper()
	srv := mongotest.Shared(tb)
	name := srv.Database(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := mongostore.Open(ctx, mongostore.Config{URI: srv.URI, Database: name, Clock: clock})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { client.Disconnect(context.Background()) }) //nolint:errcheck // test cleanup
	return s, rawMongo{client.Database(name)}
}

func (r rawMongo) setBody(tb testing.TB, tenant, conv string, seq int64, body engine.Body) {
	tb.Helper()
	b, _ := json.Marshal(body)
	res, err := r.db.Collection("messages").UpdateOne(context.Background(),
		bson.D{{Key: "tenant", Value: tenant}, {Key: "conv", Value: conv}, {Key: "seq", Value: seq}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "body", Value: string(b)}}}})
	if err != nil || res.MatchedCount != 1 {
		tb.Fatalf("set body of %s/%s seq %d: %v, matched %v", tenant, conv, seq, err, res)
	}
}

// Shorthands for the conformance suite's helpers.
var (
	msgs         = storetest.Msgs
	mustOK       = storetest.MustOK
	wantErrIs    = storetest.WantErrIs
	wantMessages = storetest.WantMessages
	epoch        = storetest.Epoch
)

// storedBody returns the body inner holds for message seq of tenant/conv.
func storedBody(tb testing.TB, inner engine.Store, tenant, conv string, seq int64) engine.Body {
	tb.Helper()
	ms, err := inner.Messages(context.Background(), tenant, conv, seq-1, 1)
	if err != nil || len(ms) != 1 {
		tb.Fatalf("stored message %s/%s seq %d: %v, %v", tenant, conv, seq, ms, err)
	}
	return ms[0].Body
}
