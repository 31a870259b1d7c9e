package sqlite

import (
	"context"
	"errors"
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

// appendAuditOp inserts entries; it runs in its own savepoint, so a refused
// entry leaves none of the call's stored.
type appendAuditOp struct {
	opHeader
	entries []engine.AuditEntry
}

// AppendAudit stores entries, all or none: an unknown tenant is
// engine.ErrNotFound, a taken (tenant, id) engine.ErrExists. A zero At is
// stamped with the store's clock.
func (s *Store) AppendAudit(ctx context.Context, entries []engine.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	own := make([]engine.AuditEntry, len(entries)) // the writer may read them after a caller gave up
	for i, e := range entries {
		if e.Tenant == "" || e.ID == "" || e.Action == "" {
			return errors.New("sqlite: append audit: tenant, id and action are required")
		}
		if e.At.IsZero() {
			e.At = s.clock.Now()
		}
		own[i] = e
	}
	o := &appendAuditOp{opHeader: newHeader(ctx, storemetrics.OpAppendAudit), entries: own}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	return o.err
}

func (o *appendAuditOp) apply(w *writer) error {
	for _, e := range o.entries {
		_, err := w.st.insertAudit.ExecContext(bg, e.Tenant, e.ID, e.At.UnixMilli(), string(e.Actor.Role), e.Actor.ID,
			e.IP, string(e.Action), e.Target, e.Detail)
		what := "audit entry " + e.Tenant + "/" + e.ID
		if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_TRIGGER { // audit_log_no_replace: the id is taken
			return fmt.Errorf("sqlite: create %s: %w", what, engine.ErrExists)
		}
		if err := createError(what, "tenant "+e.Tenant, err); err != nil {
			return err
		}
	}
	return nil
}

// AuditLog returns the tenant's entries that match q, newest first (ties
// by id, descending). A Limit <= 0 means engine.DefaultAuditLimit.
func (s *Store) AuditLog(ctx context.Context, tenant string, q engine.AuditQuery) ([]engine.AuditEntry, error) {
	if s.isClosed.Load() {
		return nil, engine.ErrClosed
	}
	var f auditFilter
	args := []any{tenant}
	if q.Action != "" {
		f |= auditByAction
		args = append(args, string(q.Action))
	}
	if q.ActorID != "" {
		f |= auditByActor
		args = append(args, q.ActorID)
	}
	if q.Target != "" {
		f |= auditByTarget
		args = append(args, q.Target)
	}
	if !q.Before.IsZero() {
		f |= auditBefore
		args = append(args, q.Before.UnixMilli())
	}
	limit := q.Limit
	if limit <= 0 {
		limit = engine.DefaultAuditLimit
	}
	rows, err := s.rq.audit[f].QueryContext(ctx, append(args, limit)...)
	if err != nil {
		return nil, s.readErr("audit log", err)
	}
	defer rows.Close()
	var out []engine.AuditEntry
	for rows.Next() {
		e := engine.AuditEntry{Tenant: tenant}
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor.Role, &e.Actor.ID, &e.IP, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, s.readErr("audit log", err)
		}
		e.At = timeOf(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("audit log", err)
	}
	return out, nil
}
