package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storetest"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMigrationsOrdered(t *testing.T) {
	for i, m := range migrations {
		if m.version != i+1 {
			t.Fatalf("migration %d has version %d, want %d: versions are 1, 2, 3, ...", i, m.version, i+1)
		}
		if m.name == "" || strings.TrimSpace(m.sql) == "" {
			t.Fatalf("migration %d has no name or no SQL", m.version)
		}
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "dir", "kefu.db") // parents are created
	reg := prometheus.NewRegistry()                                // shared: reopening reuses the collectors
	cfg := Config{Path: path, Registerer: reg}

	s, err := Open(ctx, cfg)
	mustOK(t, "open", err)
	seed(t, s, "t1", "c1")
	appendAll(t, s, msgs("t1", "c1", 1, 3))
	_, err = s.SetReadPointer(ctx, "t1", "c1", engine.Party{Role: engine.RoleUser, ID: "u"}, 2)
	mustOK(t, "read pointer", err)
	_, err = s.PutSettingIfAbsent(ctx, "k", "v")
	mustOK(t, "setting", err)
	mustOK(t, "close", s.Close())

	for round := range 2 {
		s, err := Open(ctx, cfg)
		mustOK(t, "reopen", err)
		got, err := s.Messages(ctx, "t1", "c1", 0, 100)
		mustOK(t, "messages", err)
		wantMessages(t, "after reopen", got, msgs("t1", "c1", 1, int64(3+round)))
		if v, _ := s.PutSettingIfAbsent(ctx, "k", "other"); v != "v" {
			t.Fatalf("setting after reopen = %q, want v", v)
		}
		if rps, _ := s.ReadPointers(ctx, "t1", "c1"); len(rps) != 1 || rps[0].Seq != 2 {
			t.Fatalf("read pointers after reopen = %v", rps)
		}
		appendAll(t, s, msgs("t1", "c1", int64(4+round), int64(4+round)))
		mustOK(t, "close", s.Close())
	}

	versions := schemaVersions(t, path)
	want := make([]int, len(migrations))
	for i, m := range migrations {
		want[i] = m.version
	}
	if !slices.Equal(versions, want) {
		t.Fatalf("schema_migrations holds %v, want each migration once: %v", versions, want)
	}
	if got := counterValue(t, mustOpen(t, cfg), "append"); got != 3 {
		t.Fatalf("ops_total{op=append} across reopens = %v, want 3", got)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kefu.db")
	s := mustOpen(t, Config{Path: path})
	mustOK(t, "close", s.Close())
	db := rawDB(t, path)
	if _, err := db.Exec(sqlInsertMigration, len(migrations)+1, "from the future", 0); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(context.Background(), Config{Path: path}); err == nil || !strings.Contains(err.Error(), "newer") {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open of a newer schema: %v, want a refusal", err)
	}
}

// oldDatabase makes a database of schema version n holding the rows the
// statements insert, and returns its path.
func oldDatabase(t *testing.T, n int, stmts ...string) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kefu.db")
	db := rawDB(t, path)
	conn, err := db.Conn(ctx)
	mustOK(t, "conn", err)
	_, err = conn.ExecContext(ctx, sqlCreateMigrations)
	mustOK(t, "schema_migrations", err)
	for _, m := range migrations[:n] {
		mustOK(t, "migrate", applyMigration(ctx, conn, m, storetest.Epoch))
	}
	for _, q := range stmts {
		_, err := conn.ExecContext(ctx, q)
		mustOK(t, q, err)
	}
	mustOK(t, "close conn", conn.Close())
	mustOK(t, "close db", db.Close())
	return path
}

// TestMigration3KeepsOldRows: a conversation and an event written under
// schema version 2 read back after the upgrade with zero routing fields.
func TestMigration3KeepsOldRows(t *testing.T) {
	ctx := context.Background()
	path := oldDatabase(t, 2,
		`INSERT INTO tenants VALUES ('t1', 'T', 'wx', 0)`,
		`INSERT INTO conversations (tenant, id, user_id, state, agent_id, created_at, updated_at)
			VALUES ('t1', 'c1', 'u1', 'ASSIGNED', 'a1', 1000, 2000)`,
		`INSERT INTO conv_events VALUES ('t1', 'c1', 1, 'taken_over', 'QUEUED', 'ASSIGNED', 'agent', 'a1', 'r', 2000)`,
	)

	s := mustOpen(t, Config{Path: path})
	got, err := s.Conversation(ctx, "t1", "c1")
	mustOK(t, "conversation", err)
	want := engine.Conversation{Tenant: "t1", ID: "c1", UserID: "u1", State: engine.StateAssigned, AgentID: "a1",
		CreatedAt: timeOf(1000), UpdatedAt: timeOf(2000)}
	if !storetest.SameConversation(got, want) || got.Invited != nil {
		t.Fatalf("old conversation = %+v, want %+v", got, want)
	}
	evs, err := s.Events(ctx, "t1", "c1")
	mustOK(t, "events", err)
	if len(evs) != 1 || evs[0].Agent != "" || evs[0].Group != "" || evs[0].Note != "" || evs[0].By.ID != "a1" {
		t.Fatalf("old events = %+v", evs)
	}
	// The old row is found by the new filters.
	list, err := s.ListConversations(ctx, "t1", engine.ConversationQuery{AgentID: "a1", State: engine.StateAssigned})
	if err != nil || len(list) != 1 {
		t.Fatalf("old conversation by agent and state: %+v, %v", list, err)
	}
}

// TestMigration8IndexesInvitees: the invitees of conversations written
// under schema version 7 are found by ListConversations after the upgrade,
// and follow the updates after it.
func TestMigration8IndexesInvitees(t *testing.T) {
	ctx := context.Background()
	path := oldDatabase(t, 7,
		`INSERT INTO tenants VALUES ('t1', 'T', 'wx', 0)`,
		`INSERT INTO conversations (tenant, id, user_id, state, agent_id, invited, created_at, updated_at)
			VALUES ('t1', 'c1', 'u1', 'ASSIGNED', 'a1', '["a2","a3"]', 1000, 1000),
			('t1', 'c2', 'u1', 'ASSIGNED', 'a2', '["a3"]', 2000, 2000),
			('t1', 'c3', 'u1', 'CLOSED', 'a2', '[]', 3000, 3000)`,
	)
	s := mustOpen(t, Config{Path: path})
	invitedTo := func(staff string) string {
		t.Helper()
		list, err := s.ListConversations(ctx, "t1", engine.ConversationQuery{InvitedID: staff})
		mustOK(t, "list", err)
		got := []string{}
		for _, c := range list {
			got = append(got, c.ID)
		}
		return fmt.Sprint(got)
	}
	if a2, a3 := invitedTo("a2"), invitedTo("a3"); a2 != "[c1]" || a3 != "[c2 c1]" {
		t.Fatalf("after the upgrade a2 is invited to %s, a3 to %s; want [c1], [c2 c1]", a2, a3)
	}
	c1, err := s.Conversation(ctx, "t1", "c1")
	mustOK(t, "conversation", err)
	c1.Invited = []string{"a3"}
	mustOK(t, "update", s.UpdateConversation(ctx, c1, engine.ConvEvent{Type: engine.EventTransferred}))
	if a2, a3 := invitedTo("a2"), invitedTo("a3"); a2 != "[]" || a3 != "[c2 c1]" {
		t.Fatalf("after an update a2 is invited to %s, a3 to %s; want [], [c2 c1]", a2, a3)
	}
}

func TestOpenConfig(t *testing.T) {
	if _, err := Open(context.Background(), Config{}); err == nil {
		t.Fatal("Open without a path succeeded")
	}
	s := openTest(t, Config{})
	if s.w.maxBatch != defaultMaxBatch || cap(s.ops) != defaultMaxBatch {
		t.Fatalf("MaxBatch default: %d (queue %d), want %d", s.w.maxBatch, cap(s.ops), defaultMaxBatch)
	}
	if got := s.rdb.Stats().MaxOpenConnections; got != defaultReadConns {
		t.Fatalf("ReadConns default: %d, want %d", got, defaultReadConns)
	}
	var mode string
	mustOK(t, "journal_mode", s.rdb.QueryRow("PRAGMA journal_mode").Scan(&mode))
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
	// The read pool cannot write.
	if _, err := s.rdb.Exec(`INSERT INTO settings (key, value) VALUES ('x', 'y')`); err == nil {
		t.Fatal("the read pool wrote")
	}
}

// TestQueryPlans runs EXPLAIN QUERY PLAN on every statement the adapter runs
// and fails if one scans a table (or a whole index) or sorts in a temporary
// B-tree: each must be an index search. Every sql* constant of queries.go
// and schema.go must be listed here, so a new query cannot skip the check.
func TestQueryPlans(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kefu.db")
	mustOK(t, "close", mustOpen(t, Config{Path: path}).Close())
	db := rawDB(t, path)
	defer db.Close()

	// Statement name -> arguments. The values do not change the plan (no
	// statistics), but binding them proves the placeholder count.
	queries := map[string][]any{
		"sqlBegin": nil, "sqlCommit": nil, "sqlRollback": nil,
		"sqlSavepoint": nil, "sqlRelease": nil, "sqlRollbackToS": nil,
		"sqlInsertMessage":           {"t", "c", 1, "m", "user", "u", "text", "{}", 0},
		"sqlSeqByClientID":           {"t", "c", "m"},
		"sqlInsertConversation":      {"t", "c", "u", "BOT", "", "[]", "", 0, nil, 0, 0, nil, "", nil},
		"sqlUpdateConversation":      {"QUEUED", "", "[]", "g", 1, 0, 0, 4, "x", 0, "t", "c"},
		"sqlInsertEvent":             {"t", "c", "escalated", "BOT", "QUEUED", "bot", "bot", "r", "", "g", "", 0, 0},
		"sqlUpsertFAQ":               {"t", "f", "c", "q", "[]", "a", "[]", 1, 0, 1},
		"sqlDeleteFAQ":               {"t", "f"},
		"sqlEvents":                  {"t", "c"},
		"sqlFAQEntries":              {"t"},
		"sqlUpsertReadPointer":       {"t", "c", "user", "u", 1},
		"sqlInsertTenant":            {"t", "n", "a", 0},
		"sqlInsertStaff":             {"t", "s", "u", "d", "agent", "h", 0},
		"sqlInsertSettingIfAbsent":   {"k", "v"},
		"sqlSettingValue":            {"k"},
		"sqlMessagesAfter":           {0, "t", "c", 10},
		"sqlMessagesRecent":          {"t", "c", 10},
		"sqlLastSeq":                 {"t", "c"},
		"sqlMessageByClientID":       {"t", "c", "m"},
		"sqlConversation":            {"t", "c"},
		"sqlReadPointers":            {"t", "c"},
		"sqlTenant":                  {"t"},
		"sqlCountTenants":            nil,
		"sqlStaffByUsername":         {"t", "u"},
		"sqlStaffByID":               {"t", "s"},
		"sqlListStaff":               {"t"},
		"sqlUpsertAgentProfile":      {"t", "a", "{}"},
		"sqlAgentProfile":            {"t", "a"},
		"sqlAgentProfiles":           {"t"},
		"sqlUpsertGroup":             {"t", "g", "{}"},
		"sqlDeleteGroup":             {"t", "g"},
		"sqlGroups":                  {"t"},
		"sqlUpsertTenantSettings":    {"t", "{}"},
		"sqlTenantSettings":          {"t"},
		"sqlUpsertCustomer":          {"t", "u", "{}"},
		"sqlCustomer":                {"t", "u"},
		"sqlInsertNote":              {"t", "c", "n", "agent", "a", "x", 0},
		"sqlNotes":                   {"t", "c"},
		"sqlUpsertTimer":             {"t", "c", "no_reply", 0},
		"sqlDeleteTimer":             {"t", "c", "no_reply"},
		"sqlTimers":                  {"t", "c"},
		"sqlUpdateStaff":             {"n", "agent", "h", "t", "s"},
		"sqlUpsertSession":           {"t", "s", "x", 0, "{}"},
		"sqlPruneSessions":           {"t", "s", 0},
		"sqlUpsertLoginState":        {"t", "s", "{}"},
		"sqlStaffSessions":           {"t", "s"},
		"sqlLoginState":              {"t", "s"},
		"sqlUpsertTenantCredentials": {"t", "{}"},
		"sqlTenantCredentials":       {"t"},
		"sqlDueTimers":               {0, 10},
		"sqlCreateMigrations":        nil,
		"sqlSchemaVersion":           nil,
		"sqlInsertMigration":         {1, "n", 0},
		"sqlInsertAudit":             {"t", "e", 0, "agent", "a", "127.0.0.1", "logout", "", ""},
		"sqlInsertDataKeyIfAbsent":   {"t", 1, "m", []byte{1}, 0},
		"sqlDataKey":                 {"t", 1},
		"sqlRewrapDataKey":           {"m", []byte{1}, "t", 1},
		"sqlDataKeys":                {"t"},
		"sqlAllDataKeys":             nil,
		"sqlUpsertCanned":            {"t", "c", "", "hi", "{}"},
		"sqlDeleteCanned":            {"t", "c"},
		"sqlCanned":                  {"t", "a"},
	}
	// Scans that are the query's job, with the reason.
	allowScan := map[string]string{
		"sqlCountTenants": "counting every tenant reads every tenant; the table is small",
		"sqlAllDataKeys":  "every tenant's data keys, read at start and by a rotation; a few rows per tenant",
	}
	sqlOf := map[string]string{
		"sqlBegin": sqlBegin, "sqlCommit": sqlCommit, "sqlRollback": sqlRollback,
		"sqlSavepoint": sqlSavepoint, "sqlRelease": sqlRelease, "sqlRollbackToS": sqlRollbackToS,
		"sqlInsertMessage": sqlInsertMessage, "sqlSeqByClientID": sqlSeqByClientID,
		"sqlInsertConversation": sqlInsertConversation, "sqlUpsertReadPointer": sqlUpsertReadPointer,
		"sqlInsertTenant": sqlInsertTenant, "sqlInsertStaff": sqlInsertStaff,
		"sqlInsertSettingIfAbsent": sqlInsertSettingIfAbsent, "sqlSettingValue": sqlSettingValue,
		"sqlMessagesAfter": sqlMessagesAfter, "sqlMessagesRecent": sqlMessagesRecent,
		"sqlLastSeq": sqlLastSeq, "sqlMessageByClientID": sqlMessageByClientID,
		"sqlConversation": sqlConversation, "sqlReadPointers": sqlReadPointers,
		"sqlTenant": sqlTenant, "sqlCountTenants": sqlCountTenants, "sqlStaffByUsername": sqlStaffByUsername,
		"sqlCreateMigrations": sqlCreateMigrations, "sqlSchemaVersion": sqlSchemaVersion,
		"sqlInsertMigration":    sqlInsertMigration,
		"sqlUpdateConversation": sqlUpdateConversation, "sqlInsertEvent": sqlInsertEvent,
		"sqlUpsertFAQ": sqlUpsertFAQ, "sqlDeleteFAQ": sqlDeleteFAQ, "sqlEvents": sqlEvents, "sqlFAQEntries": sqlFAQEntries,
		"sqlStaffByID": sqlStaffByID, "sqlListStaff": sqlListStaff,
		"sqlUpsertAgentProfile": sqlUpsertAgentProfile, "sqlAgentProfile": sqlAgentProfile, "sqlAgentProfiles": sqlAgentProfiles,
		"sqlUpsertGroup": sqlUpsertGroup, "sqlDeleteGroup": sqlDeleteGroup, "sqlGroups": sqlGroups,
		"sqlUpsertTenantSettings": sqlUpsertTenantSettings, "sqlTenantSettings": sqlTenantSettings,
		"sqlUpsertCustomer": sqlUpsertCustomer, "sqlCustomer": sqlCustomer,
		"sqlInsertNote": sqlInsertNote, "sqlNotes": sqlNotes,
		"sqlUpsertTimer": sqlUpsertTimer, "sqlDeleteTimer": sqlDeleteTimer, "sqlTimers": sqlTimers, "sqlDueTimers": sqlDueTimers,
		"sqlUpdateStaff": sqlUpdateStaff, "sqlUpsertSession": sqlUpsertSession, "sqlPruneSessions": sqlPruneSessions,
		"sqlUpsertLoginState": sqlUpsertLoginState, "sqlStaffSessions": sqlStaffSessions, "sqlLoginState": sqlLoginState,
		"sqlUpsertTenantCredentials": sqlUpsertTenantCredentials, "sqlTenantCredentials": sqlTenantCredentials,
		"sqlInsertAudit":           sqlInsertAudit,
		"sqlInsertDataKeyIfAbsent": sqlInsertDataKeyIfAbsent, "sqlDataKey": sqlDataKey, "sqlRewrapDataKey": sqlRewrapDataKey,
		"sqlDataKeys": sqlDataKeys, "sqlAllDataKeys": sqlAllDataKeys,
		"sqlUpsertCanned": sqlUpsertCanned, "sqlDeleteCanned": sqlDeleteCanned, "sqlCanned": sqlCanned,
	}
	for _, name := range sqlConstants(t, "queries.go", "schema.go") {
		if _, ok := queries[name]; !ok {
			t.Errorf("%s is not in TestQueryPlans: add it with arguments", name)
		}
	}
	// Every ListConversations variant.
	for f := range listFilter(numListFilters) {
		args := []any{"t"}
		for _, a := range []struct {
			bit listFilter
			arg any
		}{{listByInvited, "i"}, {listByUser, "u"}, {listByAgent, "a"}, {listByGroup, "g"}, {listByState, "BOT"}, {listBefore, 0}} {
			if f&a.bit != 0 {
				args = append(args, a.arg)
			}
		}
		name := fmt.Sprintf("listConversations/%06b", f)
		queries[name] = append(args, 50)
		sqlOf[name] = listConversationsSQL(f)
	}
	// Every AuditLog variant.
	for f := range auditFilter(numAuditFilters) {
		args := []any{"t"}
		for _, a := range []struct {
			bit auditFilter
			arg any
		}{{auditByAction, "logout"}, {auditByActor, "a"}, {auditByTarget, "c"}, {auditBefore, 0}} {
			if f&a.bit != 0 {
				args = append(args, a.arg)
			}
		}
		name := fmt.Sprintf("auditLog/%04b", f)
		queries[name] = append(args, 100)
		sqlOf[name] = auditLogSQL(f)
	}

	// The checker itself must catch a scan and a sort.
	for _, q := range []string{`SELECT seq FROM messages WHERE body = ?`, `SELECT id FROM tenants ORDER BY name`} {
		plan := explain(t, db, q, []any{"x"}[:strings.Count(q, "?")])
		if !slices.ContainsFunc(plan, func(s string) bool { return strings.HasPrefix(s, "SCAN ") }) {
			t.Fatalf("plan of %s = %q: the check would miss its scan", q, plan)
		}
	}

	for name, args := range queries {
		q, ok := sqlOf[name]
		if !ok {
			t.Fatalf("no SQL for %s", name)
		}
		plan := explain(t, db, q, args)
		for _, step := range plan {
			bad := strings.HasPrefix(step, "SCAN ") || strings.Contains(step, "TEMP B-TREE")
			if bad && allowScan[name] == "" {
				t.Errorf("%s does not use an index: %q\nplan: %q\nquery: %s", name, step, plan, q)
			}
		}
		t.Logf("%-28s %q", name, plan)
	}
}

// explain returns the detail column of EXPLAIN QUERY PLAN for q.
func explain(t *testing.T, db *sql.DB, q string, args []any) []string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// sqlConstants returns the names of the package-level constants named sql*
// declared in files.
func sqlConstants(t *testing.T, files ...string) []string {
	t.Helper()
	var names []string
	fset := token.NewFileSet()
	for _, file := range files {
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				for _, id := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(id.Name, "sql") {
						names = append(names, id.Name)
					}
				}
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("found no sql* constants")
	}
	return names
}

func mustOpen(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	mustOK(t, "open", err)
	t.Cleanup(func() { s.Close() })
	return s
}

// rawDB opens the file directly, bypassing Store.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	mustOK(t, "open raw", err)
	return db
}

func schemaVersions(t *testing.T, path string) []int {
	t.Helper()
	db := rawDB(t, path)
	defer db.Close()
	rows, err := db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	mustOK(t, "schema_migrations", err)
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		mustOK(t, "scan", rows.Scan(&v))
		out = append(out, v)
	}
	return out
}
