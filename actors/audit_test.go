package actors_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/sqlite"
)

var (
	admin      = actors.Caller{Tenant: "t1", Party: engine.Party{Role: engine.RoleAgent, ID: "adm"}, StaffRole: engine.StaffAdmin}
	supervisor = actors.Caller{Tenant: "t1", Party: engine.Party{Role: engine.RoleAgent, ID: "sup"}, StaffRole: engine.StaffSupervisor}
)

// auditStore wraps the real store to watch, hold and fail audit writes.
type auditStore struct {
	*sqlite.Store
	mu      sync.Mutex
	calls   []int         // entries per AppendAudit call
	entered chan struct{} // if non-nil, closed by the first call, which then waits for release
	release chan struct{}
	fail    error // if non-nil, the next call fails with it
}

func (s *auditStore) AppendAudit(ctx context.Context, entries []engine.AuditEntry) error {
	s.mu.Lock()
	s.calls = append(s.calls, len(entries))
	first, fail := len(s.calls) == 1, s.fail
	s.fail = nil
	s.mu.Unlock()
	if first && s.entered != nil {
		close(s.entered)
		<-s.release
	}
	if fail != nil {
		return fail
	}
	return s.Store.AppendAudit(ctx, entries)
}

func (s *auditStore) callSizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func withAuditStore(s *auditStore, log *slog.Logger) func(*actors.Deps) {
	return func(d *actors.Deps) {
		s.Store = d.Store.(*sqlite.Store)
		d.Store = s
		d.Logger = log
	}
}

// logSink keeps the records of a slog.Logger.
type logSink struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (h *logSink) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logSink) WithGroup(string) slog.Handler            { return h }
func (h *logSink) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r.Clone())
	h.mu.Unlock()
	return nil
}

// find returns the attributes of the first record with message msg whose
// attribute key has value, if any.
func (h *logSink) find(msg, key, value string) (map[string]string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
		if r.Message == msg && attrs[key] == value {
			return attrs, true
		}
	}
	return nil, false
}

// pollFor polls cond every few milliseconds until it holds, failing t
// after d.
func pollFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// auditLog polls the admin's view of the log until it holds n entries and
// returns them.
func auditLog(t testing.TB, n *testNode, q engine.AuditQuery, want int) []engine.AuditEntry {
	t.Helper()
	var got []engine.AuditEntry
	pollFor(t, 10*time.Second, fmt.Sprintf("%d audit entries for %+v", want, q), func() bool {
		var err error
		got, err = n.client.AuditLog(context.Background(), admin, q)
		if err != nil {
			t.Fatalf("audit log: %v", err)
		}
		return len(got) >= want
	})
	if len(got) != want {
		t.Fatalf("audit log holds %d entries for %+v, want %d: %+v", len(got), q, want, got)
	}
	return got
}

// viewedEntry is the i-th of a series of audit entries.
func viewedEntry(i int) engine.AuditEntry {
	return engine.AuditEntry{Actor: agent.Party, IP: "10.1.2.3", Action: engine.AuditTranscriptViewed,
		Target: fmt.Sprintf("c%03d", i), Detail: "after_seq 0, 3 messages"}
}

// TestAuditBatchesWhileAWriteIsInFlight: entries recorded while the store
// is busy with one audit write go to it together in the next, every one of
// them is stored once, and the actor answers meanwhile.
func TestAuditBatchesWhileAWriteIsInFlight(t *testing.T) {
	st := &auditStore{entered: make(chan struct{}), release: make(chan struct{})}
	n := startNode(t, withAuditStore(st, nil))
	ctx := context.Background()
	if err := n.client.RecordAudit(ctx, "t1", viewedEntry(0)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-st.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first entry was not written")
	}
	// The store holds the first write; each of these is answered once
	// queued, and the tenant actor keeps serving other requests.
	const more = 99
	for i := 1; i <= more; i++ {
		if err := n.client.RecordAudit(ctx, "t1", viewedEntry(i)); err != nil {
			t.Fatalf("record %d while a write is in flight: %v", i, err)
		}
	}
	if _, err := n.client.Config(ctx, admin, actors.ConfigGroup, actors.ConfigList, "", nil); err != nil {
		t.Fatalf("the tenant actor did not answer while an audit write was held: %v", err)
	}
	close(st.release)

	got := auditLog(t, n, engine.AuditQuery{Limit: engine.MaxAuditLimit}, more+1)
	if sizes := st.callSizes(); !slices.Equal(sizes, []int{1, more}) {
		t.Fatalf("AppendAudit calls of %v entries, want [1 %d]", sizes, more)
	}
	targets := map[string]bool{}
	for _, e := range got {
		if e.Tenant != "t1" || e.Actor != agent.Party || e.IP != "10.1.2.3" || e.Action != engine.AuditTranscriptViewed ||
			!engine.ValidID(e.ID) || e.At.IsZero() {
			t.Fatalf("stored %+v", e)
		}
		targets[e.Target] = true
	}
	if len(targets) != more+1 {
		t.Fatalf("%d distinct targets stored, want %d", len(targets), more+1)
	}
	// Newest first, as recorded, though many share a millisecond.
	for i, e := range got {
		if want := viewedEntry(more - i).Target; e.Target != want {
			t.Fatalf("entry %d of the log is %s, want %s: the log is not in the order the entries were recorded", i, e.Target, want)
		}
	}
}

// TestAuditWriteFailureIsLogged: entries the store refuses are written to
// the log one by one, and the next entries are stored as usual.
func TestAuditWriteFailureIsLogged(t *testing.T) {
	sink := &logSink{}
	st := &auditStore{fail: errors.New("injected: disk full")}
	n := startNode(t, withAuditStore(st, slog.New(sink)))
	ctx := context.Background()
	lost := engine.AuditEntry{Actor: admin.Party, IP: "10.9.9.9", Action: engine.AuditTranscriptExported, Target: "c1", Detail: "lost"}
	if err := n.client.RecordAudit(ctx, "t1", lost); err != nil {
		t.Fatal(err)
	}
	var attrs map[string]string
	pollFor(t, 10*time.Second, "the lost entry in the log", func() bool {
		var ok bool
		attrs, ok = sink.find("audit entry not stored", "detail", "lost")
		return ok
	})
	want := map[string]string{"tenant": "t1", "action": "transcript_exported", "actor_id": "adm", "ip": "10.9.9.9", "target": "c1"}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("logged %s = %q, want %q (%v)", k, attrs[k], v, attrs)
		}
	}
	if _, ok := sink.find("audit entries not stored; each follows in this log", "err", "injected: disk full"); !ok {
		t.Error("the store's error was not logged")
	}
	kept := lost
	kept.Detail = "kept"
	if err := n.client.RecordAudit(ctx, "t1", kept); err != nil {
		t.Fatal(err)
	}
	if got := auditLog(t, n, engine.AuditQuery{}, 1); got[0].Detail != "kept" {
		t.Fatalf("after the failure the log holds %+v", got)
	}
}

// TestAuditAccess: only the tenant's admins read its log; malformed
// entries and queries are refused.
func TestAuditAccess(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	if err := n.store.CreateTenant(ctx, engine.Tenant{ID: "t2", Name: "T2", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := n.client.RecordAudit(ctx, "t1", engine.AuditEntry{Actor: agent.Party, Action: engine.AuditTranscriptViewed, Target: "c1"}); err != nil {
		t.Fatal(err)
	}
	auditLog(t, n, engine.AuditQuery{}, 1)

	for _, c := range []actors.Caller{agent, supervisor, customer} {
		if _, err := n.client.AuditLog(ctx, c, engine.AuditQuery{}); engine.CodeOf(err) != engine.CodeForbidden {
			t.Errorf("AuditLog as %s %s: %v, want forbidden", c.StaffRole, c.Party, err)
		}
	}
	otherAdmin := actors.Caller{Tenant: "t2", Party: admin.Party, StaffRole: engine.StaffAdmin}
	if got, err := n.client.AuditLog(ctx, otherAdmin, engine.AuditQuery{}); err != nil || len(got) != 0 {
		t.Errorf("t2's admin read %+v, %v; want an empty log", got, err)
	}
	if _, err := n.client.AuditLog(ctx, admin, engine.AuditQuery{Limit: engine.MaxAuditLimit + 1}); engine.CodeOf(err) != engine.CodeInvalidField {
		t.Errorf("a page over the limit: %v, want invalid_field", err)
	}
	for name, e := range map[string]engine.AuditEntry{
		"unknown action":   {Action: "wiped"},
		"bad target":       {Action: engine.AuditLogout, Target: "a b"},
		"a long detail":    {Action: engine.AuditLogout, Detail: strings.Repeat("x", engine.MaxAuditDetail+1)},
		"an operator id":   {Action: engine.AuditLogout, Actor: engine.Party{Role: engine.RoleAgent, ID: "$ne"}},
		"detail not UTF-8": {Action: engine.AuditLogout, Detail: "\xff"},
	} {
		good := engine.AuditEntry{Action: engine.AuditLogout, Detail: "good " + name}
		if err := n.client.RecordAudit(ctx, "t1", good, e); engine.CodeOf(err) != engine.CodeInvalidField {
			t.Errorf("record %s: %v, want invalid_field", name, err)
		}
	}
	// Nothing of a refused message was stored: the marker comes after them.
	if err := n.client.RecordAudit(ctx, "t1", engine.AuditEntry{Action: engine.AuditKeyRotated}); err != nil {
		t.Fatal(err)
	}
	got := auditLog(t, n, engine.AuditQuery{}, 2)
	if got[0].Action != engine.AuditKeyRotated || got[0].Actor != (engine.Party{}) || got[1].Target != "c1" {
		t.Fatalf("log after refusals: %+v", got)
	}
}

// TestConfigWritesAreAudited: every configuration and knowledge-base write
// that succeeds is recorded with who made it, what it concerned and what
// changed; refused and failed writes are not.
func TestConfigWritesAreAudited(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	type write struct {
		caller        actors.Caller
		kind, op, id  string
		body          string
		ok            bool
		action        engine.AuditAction
		target        string // "new" means the id the reply carries
		detail        string
		staffUsername string
	}
	writes := []write{
		{admin, actors.ConfigSettings, actors.ConfigPut, "", `{"default_capacity":4}`, true, engine.AuditConfigChanged, "settings", "put", ""},
		{supervisor, actors.ConfigGroup, actors.ConfigPut, "vip", `{"name":"VIP"}`, true, engine.AuditConfigChanged, "group/vip", "put, policy least_load", ""},
		{admin, actors.ConfigGroup, actors.ConfigPut, "bad", `{"policy":"random"}`, false, "", "", "", ""},
		{agent, actors.ConfigGroup, actors.ConfigPut, "mine", `{}`, false, "", "", "", ""},
		{admin, actors.ConfigGroup, actors.ConfigDelete, "vip", ``, true, engine.AuditConfigChanged, "group/vip", "deleted", ""},
		{admin, actors.ConfigGroup, actors.ConfigDelete, "vip", ``, false, "", "", "", ""},
		{admin, actors.ConfigAgent, actors.ConfigPut, "a1", `{"capacity":3,"skills":{"default":3,"vip":5}}`, true, engine.AuditConfigChanged, "agent/a1", "capacity 3, 2 skill groups", ""},
		{admin, actors.ConfigAgent, actors.ConfigPut, "nobody", `{"capacity":3}`, false, "", "", "", ""},
		{admin, actors.ConfigStaff, actors.ConfigPut, "", `{"username":"bob","password":"password-bob","role":"supervisor"}`, true, engine.AuditStaffChanged, "new", "created bob, role supervisor", "bob"},
		{supervisor, actors.ConfigStaff, actors.ConfigPut, "", `{"username":"eve","password":"password-eve","role":"admin"}`, false, "", "", "", ""},
		{supervisor, actors.ConfigCustomer, actors.ConfigPut, "u1", `{"vip_level":3}`, true, engine.AuditConfigChanged, "customer/u1", "put", ""},
		{agent, actors.ConfigCustomer, actors.ConfigTag, "u1", `{"add":["a","b"],"remove":["c"]}`, true, engine.AuditConfigChanged, "customer/u1", "tags: 2 added, 1 removed", ""},
	}
	var want []engine.AuditEntry
	for _, w := range writes {
		var body []byte
		if w.body != "" {
			body = []byte(w.body)
		}
		raw, err := n.client.Config(ctx, w.caller, w.kind, w.op, w.id, body)
		if (err == nil) != w.ok {
			t.Fatalf("%s %s %s by %s: %v", w.op, w.kind, w.id, w.caller.StaffRole, err)
		}
		if !w.ok {
			continue
		}
		target := w.target
		if target == "new" {
			var s engine.Staff
			if err := json.Unmarshal(raw, &s); err != nil || s.Username != w.staffUsername {
				t.Fatalf("created %s: %+v, %v", raw, s, err)
			}
			target = s.ID
		}
		want = append(want, engine.AuditEntry{Actor: w.caller.Party, Action: w.action, Target: target, Detail: w.detail})
	}
	kbCaller := supervisor
	if _, err := n.client.KBPut(ctx, kbCaller, []byte(`[{"id":"f1","question":"运费多少？","answer":"包邮"},{"id":"f2","question":"几天到？","answer":"三天"}]`), false); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.KBPut(ctx, agent, []byte(`[{"id":"f3","question":"q","answer":"a"}]`), false); engine.CodeOf(err) != engine.CodeForbidden {
		t.Fatalf("an agent's knowledge-base edit: %v", err)
	}
	if err := n.client.KBDelete(ctx, kbCaller, "f1"); err != nil {
		t.Fatal(err)
	}
	if err := n.client.KBDelete(ctx, kbCaller, "f1"); engine.CodeOf(err) != engine.CodeNotFound {
		t.Fatalf("deleting twice: %v", err)
	}
	if _, err := n.client.KBPut(ctx, kbCaller, []byte(`[{"id":"f9","question":"q","answer":"a"}]`), true); err != nil {
		t.Fatal(err)
	}
	want = append(want,
		engine.AuditEntry{Actor: kbCaller.Party, Action: engine.AuditConfigChanged, Target: "kb", Detail: "put 2 entries"},
		engine.AuditEntry{Actor: kbCaller.Party, Action: engine.AuditConfigChanged, Target: "kb", Detail: "deleted entry f1"},
		engine.AuditEntry{Actor: kbCaller.Party, Action: engine.AuditConfigChanged, Target: "kb", Detail: "replaced all with 1 entry"})

	// Compared as sets: writes a millisecond apart or less may list in
	// either order.
	got := auditLog(t, n, engine.AuditQuery{Limit: engine.MaxAuditLimit}, len(want))
	key := func(e engine.AuditEntry) string {
		return fmt.Sprintf("%s by %s on %q: %q, ip %q", e.Action, e.Actor, e.Target, e.Detail, e.IP)
	}
	var gotKeys, wantKeys []string
	for _, e := range got {
		gotKeys = append(gotKeys, key(e))
	}
	for _, e := range want {
		wantKeys = append(wantKeys, key(e))
	}
	slices.Sort(gotKeys)
	slices.Sort(wantKeys)
	if !slices.Equal(gotKeys, wantKeys) {
		t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(gotKeys, "\n"), strings.Join(wantKeys, "\n"))
	}
}
