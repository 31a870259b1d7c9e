package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

type createTenantOp struct {
	opHeader
	t engine.Tenant
}

// CreateTenant stores a new tenant (engine.ErrExists if its id is taken). A
// zero CreatedAt is stamped with the store's clock.
func (s *Store) CreateTenant(ctx context.Context, t engine.Tenant) error {
	if t.ID == "" {
		return errors.New("sqlite: create tenant: id is required")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.clock.Now()
	}
	o := &createTenantOp{opHeader: newHeader(ctx, storemetrics.OpCreateTenant), t: t}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	return o.err
}

func (o *createTenantOp) apply(w *writer) error {
	_, err := w.st.insertTenant.ExecContext(bg, o.t.ID, o.t.Name, o.t.AppID, o.t.CreatedAt.UnixMilli())
	return createError("tenant "+o.t.ID, "", err)
}

// Tenant returns a tenant (engine.ErrNotFound).
func (s *Store) Tenant(ctx context.Context, id string) (engine.Tenant, error) {
	if s.isClosed.Load() {
		return engine.Tenant{}, engine.ErrClosed
	}
	var t engine.Tenant
	var created int64
	err := s.rq.tenant.QueryRowContext(ctx, id).Scan(&t.ID, &t.Name, &t.AppID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return engine.Tenant{}, fmt.Errorf("sqlite: tenant %s: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return engine.Tenant{}, s.readErr("tenant", err)
	}
	t.CreatedAt = timeOf(created)
	return t, nil
}

// CountTenants returns how many tenants exist.
func (s *Store) CountTenants(ctx context.Context) (int, error) {
	if s.isClosed.Load() {
		return 0, engine.ErrClosed
	}
	var n int
	if err := s.rq.countTenants.QueryRowContext(ctx).Scan(&n); err != nil {
		return 0, s.readErr("count tenants", err)
	}
	return n, nil
}

type createStaffOp struct {
	opHeader
	st engine.Staff
}

// CreateStaff stores a new staff account: engine.ErrExists if the tenant
// already has its id or its username, engine.ErrNotFound if the tenant does
// not exist. A zero CreatedAt is stamped with the store's clock.
func (s *Store) CreateStaff(ctx context.Context, st engine.Staff) error {
	if st.Tenant == "" || st.ID == "" || st.Username == "" {
		return errors.New("sqlite: create staff: tenant, id and username are required")
	}
	if st.CreatedAt.IsZero() {
		st.CreatedAt = s.clock.Now()
	}
	o := &createStaffOp{opHeader: newHeader(ctx, storemetrics.OpCreateStaff), st: st}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	return o.err
}

func (o *createStaffOp) apply(w *writer) error {
	st := o.st
	_, err := w.st.insertStaff.ExecContext(bg, st.Tenant, st.ID, st.Username, st.DisplayName,
		string(st.Role), st.PasswordHash, st.CreatedAt.UnixMilli())
	return createError("staff "+st.Tenant+"/"+st.Username, "tenant "+st.Tenant, err)
}

// StaffByUsername returns a staff account of the tenant (engine.ErrNotFound).
func (s *Store) StaffByUsername(ctx context.Context, tenant, username string) (engine.Staff, error) {
	return s.oneStaff(ctx, s.rq.staffByUsername, tenant, username)
}

// StaffByID returns a staff account of the tenant (engine.ErrNotFound).
func (s *Store) StaffByID(ctx context.Context, tenant, id string) (engine.Staff, error) {
	return s.oneStaff(ctx, s.rq.staffByID, tenant, id)
}

// oneStaff runs a staff read keyed by tenant and key.
func (s *Store) oneStaff(ctx context.Context, st *sql.Stmt, tenant, key string) (engine.Staff, error) {
	if s.isClosed.Load() {
		return engine.Staff{}, engine.ErrClosed
	}
	staff, err := scanStaff(st.QueryRowContext(ctx, tenant, key))
	if errors.Is(err, sql.ErrNoRows) {
		return engine.Staff{}, fmt.Errorf("sqlite: staff %s/%s: %w", tenant, key, engine.ErrNotFound)
	}
	if err != nil {
		return engine.Staff{}, s.readErr("staff", err)
	}
	return staff, nil
}

// ListStaff returns the tenant's staff accounts, by username; none for an
// unknown tenant.
func (s *Store) ListStaff(ctx context.Context, tenant string) ([]engine.Staff, error) {
	if s.isClosed.Load() {
		return nil, engine.ErrClosed
	}
	rows, err := s.rq.listStaff.QueryContext(ctx, tenant)
	if err != nil {
		return nil, s.readErr("list staff", err)
	}
	defer rows.Close()
	var out []engine.Staff
	for rows.Next() {
		st, err := scanStaff(rows)
		if err != nil {
			return nil, s.readErr("list staff", err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("list staff", err)
	}
	return out, nil
}

// scanStaff scans staffColumns.
func scanStaff(row interface{ Scan(...any) error }) (engine.Staff, error) {
	var st engine.Staff
	var created int64
	if err := row.Scan(&st.Tenant, &st.ID, &st.Username, &st.DisplayName, &st.Role, &st.PasswordHash, &created); err != nil {
		return engine.Staff{}, err
	}
	st.CreatedAt = timeOf(created)
	return st, nil
}

type putSettingOp struct {
	opHeader
	key, value string // value: in, the proposed value; out, the stored one
}

// PutSettingIfAbsent stores value under key unless the key exists, and
// returns the stored value either way. The insert and the read back run in
// one transaction on the single writer, so the first writer wins.
func (s *Store) PutSettingIfAbsent(ctx context.Context, key, value string) (string, error) {
	if key == "" {
		return "", errors.New("sqlite: put setting: key is required")
	}
	o := &putSettingOp{opHeader: newHeader(ctx, storemetrics.OpPutSetting), key: key, value: value}
	if err := s.submit(ctx, o); err != nil {
		return "", err
	}
	if o.err != nil {
		return "", o.err
	}
	return o.value, nil
}

func (o *putSettingOp) apply(w *writer) error {
	if _, err := w.st.insertSetting.ExecContext(bg, o.key, o.value); err != nil {
		return fmt.Errorf("sqlite: put setting %q: %w", o.key, err)
	}
	if err := w.st.settingValue.QueryRowContext(bg, o.key).Scan(&o.value); err != nil {
		return fmt.Errorf("sqlite: read setting %q: %w", o.key, err)
	}
	return nil
}
