package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

type updateStaffOp struct {
	opHeader
	st engine.Staff
}

// UpdateStaff replaces an account's display name, role and password hash
// (engine.ErrNotFound if it does not exist).
func (s *Store) UpdateStaff(ctx context.Context, st engine.Staff) error {
	if st.Tenant == "" || st.ID == "" {
		return errors.New("sqlite: update staff: tenant and id are required")
	}
	o := &updateStaffOp{opHeader: newHeader(ctx, storemetrics.OpUpdateStaff), st: st}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	return o.err
}

func (o *updateStaffOp) apply(w *writer) error {
	st := o.st
	res, err := w.st.updateStaff.ExecContext(bg, st.DisplayName, string(st.Role), st.PasswordHash, st.Tenant, st.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update staff %s/%s: %w", st.Tenant, st.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: update staff %s/%s: %w", st.Tenant, st.ID, engine.ErrNotFound)
	}
	return nil
}

type putSessionOp struct {
	opHeader
	sess engine.StaffSession
	doc  string
}

// PutSession creates or replaces a session and forgets the account's
// sessions that expired before it was created. An unknown account is
// engine.ErrNotFound.
func (s *Store) PutSession(ctx context.Context, sess engine.StaffSession) error {
	if sess.Tenant == "" || sess.StaffID == "" || sess.ID == "" {
		return errors.New("sqlite: put session: tenant, staff id and id are required")
	}
	sess.CreatedAt = s.stamped(sess.CreatedAt)
	sess.ExpiresAt = sess.ExpiresAt.UTC()
	doc, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("sqlite: put session: %w", err)
	}
	o := &putSessionOp{opHeader: newHeader(ctx, storemetrics.OpPutSession), sess: sess, doc: string(doc)}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	return o.err
}

func (o *putSessionOp) apply(w *writer) error {
	ss := o.sess
	if _, err := w.st.pruneSessions.ExecContext(bg, ss.Tenant, ss.StaffID, ss.CreatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("sqlite: prune sessions of %s/%s: %w", ss.Tenant, ss.StaffID, err)
	}
	_, err := w.st.upsertSession.ExecContext(bg, ss.Tenant, ss.StaffID, ss.ID, ss.ExpiresAt.UnixMilli(), o.doc)
	switch {
	case err == nil:
		return nil
	case isForeignKeyViolation(err):
		return fmt.Errorf("sqlite: put session: staff %s/%s: %w", ss.Tenant, ss.StaffID, engine.ErrNotFound)
	default:
		return fmt.Errorf("sqlite: put session: %w", err)
	}
}

// StaffSessions returns an account's sessions, by id.
func (s *Store) StaffSessions(ctx context.Context, tenant, staffID string) ([]engine.StaffSession, error) {
	return readDocs[engine.StaffSession](ctx, s, s.rq.staffSessions, "sessions of "+tenant+"/"+staffID, tenant, staffID)
}

// PutLoginState creates or replaces an account's login state (an unknown
// account is engine.ErrNotFound).
func (s *Store) PutLoginState(ctx context.Context, ls engine.LoginState) error {
	if ls.Tenant == "" || ls.StaffID == "" {
		return errors.New("sqlite: put login state: tenant and staff id are required")
	}
	ls.LockedUntil = ls.LockedUntil.UTC()
	return s.putDoc(ctx, storemetrics.OpPutLoginState, func(w *writeStmts) *sql.Stmt { return w.upsertLoginState },
		"login state "+ls.Tenant+"/"+ls.StaffID, ls.Tenant, ls, ls.Tenant, ls.StaffID)
}

// LoginState returns an account's login state (engine.ErrNotFound if none
// was recorded).
func (s *Store) LoginState(ctx context.Context, tenant, staffID string) (engine.LoginState, error) {
	var ls engine.LoginState
	if err := s.readDoc(ctx, s.rq.loginState, "login state "+tenant+"/"+staffID, &ls, tenant, staffID); err != nil {
		return engine.LoginState{}, err
	}
	return ls, nil
}

// PutTenantCredentials creates or replaces a tenant's credentials. A zero
// UpdatedAt is stamped with the store's clock; an unknown tenant is
// engine.ErrNotFound.
func (s *Store) PutTenantCredentials(ctx context.Context, tc engine.TenantCredentials) error {
	if tc.Tenant == "" {
		return errors.New("sqlite: put tenant credentials: tenant is required")
	}
	tc.UpdatedAt = s.stamped(tc.UpdatedAt)
	return s.putDoc(ctx, storemetrics.OpPutTenantCredentials, func(w *writeStmts) *sql.Stmt { return w.upsertTenantCredentials },
		"credentials of "+tc.Tenant, tc.Tenant, tc, tc.Tenant)
}

// TenantCredentials returns a tenant's credentials (engine.ErrNotFound if
// never set).
func (s *Store) TenantCredentials(ctx context.Context, tenant string) (engine.TenantCredentials, error) {
	var tc engine.TenantCredentials
	if err := s.readDoc(ctx, s.rq.tenantCredentials, "credentials of "+tenant, &tc, tenant); err != nil {
		return engine.TenantCredentials{}, err
	}
	return tc, nil
}
