package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storetest"
)

// TestAuditLogAppendOnly: the database itself refuses to change or remove
// an audit entry, whoever asks (here the raw file, bypassing Store), while
// new entries still go in.
func TestAuditLogAppendOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kefu.db")
	s := mustOpen(t, Config{Path: path})
	seed(t, s, "t1")
	e := engine.AuditEntry{Tenant: "t1", ID: "e1", At: storetest.Epoch, Actor: engine.Party{Role: engine.RoleAgent, ID: "s1"},
		IP: "10.0.0.1", Action: engine.AuditConfigChanged, Target: "group/vip", Detail: "put"}
	mustOK(t, "append", s.AppendAudit(ctx, []engine.AuditEntry{e}))
	mustOK(t, "close", s.Close())

	db := rawDB(t, path)
	for _, q := range []string{
		`UPDATE audit_log SET detail = 'forged'`,
		`UPDATE audit_log SET tenant = 't2' WHERE id = 'e1'`,
		`DELETE FROM audit_log`,
		`DELETE FROM audit_log WHERE tenant = 't1' AND id = 'e1'`,
		`INSERT OR REPLACE INTO audit_log VALUES ('t1', 'e1', 0, '', '', '', 'logout', '', 'forged')`,
		`REPLACE INTO audit_log VALUES ('t1', 'e1', 0, '', '', '', 'logout', '', 'forged')`,
		`INSERT INTO audit_log VALUES ('t1', 'e1', 0, '', '', '', 'logout', '', 'forged')
			ON CONFLICT (tenant, id) DO UPDATE SET detail = excluded.detail`,
	} {
		_, err := db.ExecContext(ctx, q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only refusal", q, err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO audit_log VALUES ('t1', 'e2', 1, '', '', '', 'logout', '', '')`); err != nil {
		t.Fatalf("a new entry was refused: %v", err)
	}
	mustOK(t, "close raw", db.Close())

	s = mustOpen(t, Config{Path: path})
	got, err := s.AuditLog(ctx, "t1", engine.AuditQuery{})
	mustOK(t, "audit log", err)
	if len(got) != 2 || got[1].ID != "e2" {
		t.Fatalf("after the attempts the log is %+v, want the original and e2", got)
	}
	first := got[0]
	sameTime := first.At.Equal(e.At)
	first.At = e.At
	if !sameTime || first != e {
		t.Fatalf("after the attempts the entry is %+v, want %+v", got[0], e)
	}
}
