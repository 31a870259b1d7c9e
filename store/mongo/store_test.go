package mongo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/mongo/mongotest"
	"github.com/kefu-dev/kefu/store/storemetrics"
	"github.com/kefu-dev/kefu/store/storetest"
)

// TestConformance runs the store conformance suite shared with every other
// adapter, against FerretDB or the server of KEFU_TEST_MONGO_URI.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock engine.Clock) engine.Store {
		return openTest(t, Config{Clock: clock}, testHooks{})
	})
}

// TestReadPointerPaths runs both ways of SetReadPointer on this server: the
// atomic $max that MongoDB allows and the insert-only fallback FerretDB
// needs. Steps one at a time check both everywhere; racing callers check
// the atomic path only where the server applies updates atomically, that
// is not on FerretDB.
func TestReadPointerPaths(t *testing.T) {
	for _, atomic := range []bool{false, true} {
		t.Run(fmt.Sprintf("atomic=%v", atomic), func(t *testing.T) {
			s := openTest(t, Config{}, testHooks{atomicUpdates: &atomic})
			ctx := context.Background()
			seed(t, s, "t1", "c1")
			user := engine.Party{Role: engine.RoleUser, ID: "u1"}
			for _, step := range []struct{ seq, now int64 }{{5, 5}, {3, 5}, {7, 7}, {0, 7}, {7, 7}, {8, 8}} {
				got, err := s.SetReadPointer(ctx, "t1", "c1", user, step.seq)
				if err != nil || got != step.now {
					t.Fatalf("SetReadPointer(%d) = %d, %v; want %d", step.seq, got, err, step.now)
				}
			}
			if atomic && mongotest.Shared(t).FerretDB {
				t.Log("FerretDB updates are not atomic: racing callers only on the fallback path")
				return
			}
			const workers, each = 6, 12
			p := engine.Party{Role: engine.RoleAgent, ID: "racer"}
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Go(func() {
					seen := int64(0)
					for _, v := range rand.Perm(each) {
						seq := int64(v*workers + w)
						got, err := s.SetReadPointer(ctx, "t1", "c1", p, seq)
						if err != nil || got < seq || got < seen {
							errs <- fmt.Errorf("set %d: got %d (seen %d), err %v", seq, got, seen, err)
							return
						}
						seen = got
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			rps, err := s.ReadPointers(ctx, "t1", "c1")
			want := []engine.ReadPointer{{Party: p, Seq: workers*each - 1}, {Party: user, Seq: 8}}
			if err != nil || fmt.Sprint(rps) != fmt.Sprint(want) {
				t.Fatalf("ReadPointers = %v, %v; want %v", rps, err, want)
			}
		})
	}
}

// TestServerDetection: FerretDB is told apart from MongoDB, and the
// insert-only read pointers are chosen for it.
func TestServerDetection(t *testing.T) {
	s := openTest(t, Config{}, testHooks{})
	if ferret := mongotest.Shared(t).FerretDB; s.atomicUpdates == ferret {
		t.Fatalf("atomicUpdates = %v on a server with FerretDB = %v", s.atomicUpdates, ferret)
	}
}

// TestIndexes: Open creates every index of schema.go, unique where it
// should be, and a second Open keeps them.
func TestIndexes(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg, testHooks{})
	s2 := openTest(t, cfg, testHooks{}) // the same database, opened again
	ctx := context.Background()
	for _, st := range []*Store{s, s2} {
		db := st.client.Database(cfg.Database)
		for _, want := range indexes {
			cur, err := db.Collection(want.coll).Indexes().List(ctx)
			mustOK(t, "list indexes", err)
			var got []listedIndex
			mustOK(t, "list indexes", cur.All(ctx, &got))
			i := slices.IndexFunc(got, func(g listedIndex) bool { return g.Name == want.name })
			if i < 0 {
				t.Fatalf("%s has no index %s", want.coll, want.name)
			}
			if got[i].Unique != want.unique || fmt.Sprint(keyFields(got[i].Key)) != fmt.Sprint(keyFields(want.keys)) {
				t.Fatalf("index %s = %v unique=%v, want %v unique=%v", want.name, got[i].Key, got[i].Unique, want.keys, want.unique)
			}
		}
	}
}

// listedIndex is an entry of listIndexes.
type listedIndex struct {
	Name   string `bson:"name"`
	Key    bson.D `bson:"key"`
	Unique bool   `bson:"unique"`
}

// keyFields renders an index's keys as +field or -field, whatever number
// type the server returned the directions in.
func keyFields(keys bson.D) []string {
	var out []string
	for _, k := range keys {
		dir := "+"
		if fmt.Sprint(k.Value) == "-1" {
			dir = "-"
		}
		out = append(out, dir+k.Key)
	}
	return out
}

// TestWriteConcern: majority with journaling unless the URI or the Config
// says otherwise.
func TestWriteConcern(t *testing.T) {
	base := testConfig(t)
	journal := func(wc *writeconcern.WriteConcern) string {
		if wc.Journal == nil {
			return "unset"
		}
		return fmt.Sprint(*wc.Journal)
	}
	if s := openTest(t, base, testHooks{}); fmt.Sprint(s.wc.W) != "majority" || journal(s.wc) != "true" {
		t.Fatalf("default write concern = %v j=%s, want majority j=true", s.wc.W, journal(s.wc))
	}
	fromURI := base
	fromURI.URI = withQuery(base.URI, "w=1&journal=false")
	if s := openTest(t, fromURI, testHooks{}); fmt.Sprint(s.wc.W) != "1" || journal(s.wc) != "false" {
		t.Fatalf("URI write concern = %v j=%s, want 1 j=false", s.wc.W, journal(s.wc))
	}
	explicit := base
	explicit.URI = fromURI.URI
	explicit.WriteConcern = writeconcern.Majority()
	s := openTest(t, explicit, testHooks{})
	if fmt.Sprint(s.wc.W) != "majority" {
		t.Fatalf("Config write concern = %v, want majority", s.wc.W)
	}
	// Writes go through with each.
	seed(t, s, "t1", "c1")
	appendAll(t, s, msgs("t1", "c1", 1, 2))
}

// withQuery adds query parameters to a MongoDB URI.
func withQuery(uri, q string) string {
	switch {
	case strings.Contains(uri, "?"):
		return uri + "&" + q
	case strings.HasSuffix(uri, "/"):
		return uri + "?" + q
	default:
		return uri + "/?" + q
	}
}

// TestReopen: data, indexes and the metrics' series survive a reopen on the
// same database.
func TestReopen(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	s, err := Open(ctx, cfg)
	mustOK(t, "open", err)
	seed(t, s, "t1", "c1")
	appendAll(t, s, msgs("t1", "c1", 1, 3))
	_, err = s.SetReadPointer(ctx, "t1", "c1", engine.Party{Role: engine.RoleUser, ID: "u"}, 2)
	mustOK(t, "read pointer", err)
	_, err = s.PutSettingIfAbsent(ctx, "k", "v")
	mustOK(t, "setting", err)
	mustOK(t, "close", s.Close())

	s2 := openTest(t, cfg, testHooks{})
	got, err := s2.Messages(ctx, "t1", "c1", 0, 100)
	mustOK(t, "messages", err)
	wantMessages(t, "after reopen", got, msgs("t1", "c1", 1, 3))
	if v, _ := s2.PutSettingIfAbsent(ctx, "k", "other"); v != "v" {
		t.Fatalf("setting after reopen = %q, want v", v)
	}
	if rps, _ := s2.ReadPointers(ctx, "t1", "c1"); len(rps) != 1 || rps[0].Seq != 2 {
		t.Fatalf("read pointers after reopen = %v", rps)
	}
	appendAll(t, s2, msgs("t1", "c1", 4, 4))
	if got := counterValue(t, s2, storemetrics.OpAppend); got != 2 {
		t.Fatalf("ops_total{op=append} across reopens = %v, want 2", got)
	}
}

// TestOldDocuments: a conversation and an event written before the routing
// fields existed read back with zero values, and the clearing update
// leaves no empty invitees or zero queue time behind.
func TestOldDocuments(t *testing.T) {
	s := openTest(t, Config{}, testHooks{})
	ctx := context.Background()
	seed(t, s, "t1")
	created := storetest.Epoch
	_, err := s.c.conversations.InsertOne(ctx, bson.D{
		{Key: "tenant", Value: "t1"}, {Key: "id", Value: "c1"}, {Key: "user_id", Value: "u1"},
		{Key: "state", Value: "ASSIGNED"}, {Key: "agent_id", Value: "a1"},
		{Key: "created_at", Value: created}, {Key: "updated_at", Value: created},
	})
	mustOK(t, "insert old conversation", err)
	_, err = s.c.events.InsertOne(ctx, bson.D{
		{Key: "_id", Value: bson.NewObjectID()}, {Key: "tenant", Value: "t1"}, {Key: "conv", Value: "c1"},
		{Key: "type", Value: "taken_over"}, {Key: "from", Value: "QUEUED"}, {Key: "to", Value: "ASSIGNED"},
		{Key: "by_role", Value: "agent"}, {Key: "by_id", Value: "a1"}, {Key: "reason", Value: ""}, {Key: "at", Value: created},
	})
	mustOK(t, "insert old event", err)

	got, err := s.Conversation(ctx, "t1", "c1")
	mustOK(t, "conversation", err)
	want := engine.Conversation{Tenant: "t1", ID: "c1", UserID: "u1", State: engine.StateAssigned, AgentID: "a1",
		CreatedAt: created, UpdatedAt: created}
	if !storetest.SameConversation(got, want) || got.Invited != nil {
		t.Fatalf("old conversation = %+v, want %+v", got, want)
	}
	evs, err := s.Events(ctx, "t1", "c1")
	mustOK(t, "events", err)
	if len(evs) != 1 || evs[0].Agent != "" || evs[0].Group != "" || evs[0].Note != "" || evs[0].By.ID != "a1" {
		t.Fatalf("old events = %+v", evs)
	}

	// Set, then clear, the fields stored only when not empty.
	got.Invited, got.QueuedAt = []string{"a2"}, created
	mustOK(t, "update", s.UpdateConversation(ctx, got, engine.ConvEvent{Type: engine.EventInvited}))
	got.Invited, got.QueuedAt = []string{}, time.Time{}
	mustOK(t, "update", s.UpdateConversation(ctx, got, engine.ConvEvent{Type: engine.EventRequeued}))
	raw, err := s.c.conversations.FindOne(ctx, convFilter("t1", "c1")).Raw()
	mustOK(t, "raw conversation", err)
	for _, f := range []string{"invited", "queued_at"} {
		if v, err := raw.LookupErr(f); err == nil {
			t.Errorf("cleared %s is stored as %v, want the field absent", f, v)
		}
	}
}

// TestOldTimers: timers an older build stored under an ObjectID are keyed
// by their _id after the next open, so they can be replaced and removed.
func TestOldTimers(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	s, err := Open(ctx, cfg)
	mustOK(t, "open", err)
	seed(t, s, "t1", "c1")
	due := storetest.Epoch.Add(time.Minute)
	_, err = s.c.timers.InsertOne(ctx, bson.D{
		{Key: "_id", Value: bson.NewObjectID()}, {Key: "tenant", Value: "t1"}, {Key: "conv", Value: "c1"},
		{Key: "kind", Value: string(engine.TimerNoReply)}, {Key: "due_at", Value: due},
	})
	mustOK(t, "insert old timer", err)
	mustOK(t, "close", s.Close())

	s2 := openTest(t, cfg, testHooks{})
	got, err := s2.Timers(ctx, "t1", "c1")
	mustOK(t, "timers", err)
	if len(got) != 1 || got[0].Kind != engine.TimerNoReply || !got[0].DueAt.Equal(due) {
		t.Fatalf("timers after the migration = %+v, want the old no_reply timer", got)
	}
	later := due.Add(time.Minute)
	mustOK(t, "put", s2.SetTimers(ctx, "t1", "c1", engine.TimerChange{Kind: engine.TimerNoReply, DueAt: later}))
	if got, _ := s2.Timers(ctx, "t1", "c1"); len(got) != 1 || !got[0].DueAt.Equal(later) {
		t.Fatalf("timers after replacing the migrated one = %+v", got)
	}
	mustOK(t, "delete", s2.SetTimers(ctx, "t1", "c1", engine.TimerChange{Kind: engine.TimerNoReply}))
	if got, _ := s2.Timers(ctx, "t1", "c1"); len(got) != 0 {
		t.Fatalf("timers after removing the migrated one = %+v", got)
	}
}

func TestOpenConfig(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Config{}); err == nil {
		t.Fatal("Open without a URI succeeded")
	}
	if _, err := Open(ctx, Config{URI: "postgres://nope"}); err == nil {
		t.Fatal("Open with a non-MongoDB URI succeeded")
	}
	s := openTest(t, Config{}, testHooks{})
	if s.dbName == "" || s.w.maxBatch != defaultMaxBatch || s.w.timeout != defaultBatchTimeout {
		t.Fatalf("defaults: database %q, max batch %d, timeout %v", s.dbName, s.w.maxBatch, s.w.timeout)
	}
}
