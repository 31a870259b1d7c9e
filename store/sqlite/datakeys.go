package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

// validDataKey checks what both writes of a data key need.
func validDataKey(k engine.DataKey) error {
	if k.Tenant == "" || k.Version < 1 || k.MasterKeyID == "" || len(k.Wrapped) == 0 {
		return errors.New("tenant, a version from 1, master key id and wrapped key are required")
	}
	return nil
}

type createDataKeyOp struct {
	opHeader
	k engine.DataKey // in: the proposed key; out: the stored one
}

// CreateDataKey stores k unless the tenant has a key of its version, and
// returns the stored key either way. The insert and the read back run in
// one savepoint on the single writer, so the first writer wins. An unknown
// tenant is engine.ErrNotFound; a zero CreatedAt is stamped with the
// store's clock.
func (s *Store) CreateDataKey(ctx context.Context, k engine.DataKey) (engine.DataKey, error) {
	if err := validDataKey(k); err != nil {
		return engine.DataKey{}, fmt.Errorf("sqlite: create data key: %w", err)
	}
	k.CreatedAt = s.stamped(k.CreatedAt)
	o := &createDataKeyOp{opHeader: newHeader(ctx, storemetrics.OpCreateDataKey), k: k}
	if err := s.submit(ctx, o); err != nil {
		return engine.DataKey{}, err
	}
	if o.err != nil {
		return engine.DataKey{}, o.err
	}
	return o.k, nil
}

func (o *createDataKeyOp) apply(w *writer) error {
	k := &o.k
	what := fmt.Sprintf("data key %s v%d", k.Tenant, k.Version)
	_, err := w.st.insertDataKey.ExecContext(bg, k.Tenant, k.Version, k.MasterKeyID, k.Wrapped, k.CreatedAt.UnixMilli())
	if err != nil {
		return createError(what, "tenant "+k.Tenant, err)
	}
	var created int64
	if err := w.st.dataKey.QueryRowContext(bg, k.Tenant, k.Version).Scan(&k.MasterKeyID, &k.Wrapped, &created); err != nil {
		return fmt.Errorf("sqlite: read %s: %w", what, err)
	}
	k.CreatedAt = timeOf(created)
	return nil
}

// DataKeys returns the tenant's data keys, by version; none for an unknown
// tenant.
func (s *Store) DataKeys(ctx context.Context, tenant string) ([]engine.DataKey, error) {
	return s.queryDataKeys(ctx, s.rq.dataKeys, tenant)
}

// AllDataKeys returns every tenant's data keys, by tenant and version.
func (s *Store) AllDataKeys(ctx context.Context) ([]engine.DataKey, error) {
	return s.queryDataKeys(ctx, s.rq.allDataKeys)
}

func (s *Store) queryDataKeys(ctx context.Context, st *sql.Stmt, args ...any) ([]engine.DataKey, error) {
	if s.isClosed.Load() {
		return nil, engine.ErrClosed
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, s.readErr("data keys", err)
	}
	defer rows.Close()
	var out []engine.DataKey
	for rows.Next() {
		var k engine.DataKey
		var created int64
		if err := rows.Scan(&k.Tenant, &k.Version, &k.MasterKeyID, &k.Wrapped, &created); err != nil {
			return nil, s.readErr("data keys", err)
		}
		k.CreatedAt = timeOf(created)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("data keys", err)
	}
	return out, nil
}

type rewrapDataKeyOp struct {
	opHeader
	k engine.DataKey
}

// RewrapDataKey replaces the master key id and wrapped form of a stored
// data key (engine.ErrNotFound if the tenant has no key of k.Version).
func (s *Store) RewrapDataKey(ctx context.Context, k engine.DataKey) error {
	if err := validDataKey(k); err != nil {
		return fmt.Errorf("sqlite: rewrap data key: %w", err)
	}
	o := &rewrapDataKeyOp{opHeader: newHeader(ctx, storemetrics.OpRewrapDataKey), k: k}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	return o.err
}

func (o *rewrapDataKeyOp) apply(w *writer) error {
	k := o.k
	res, err := w.st.rewrapDataKey.ExecContext(bg, k.MasterKeyID, k.Wrapped, k.Tenant, k.Version)
	if err != nil {
		return fmt.Errorf("sqlite: rewrap data key %s v%d: %w", k.Tenant, k.Version, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: rewrap data key %s v%d: %w", k.Tenant, k.Version, engine.ErrNotFound)
	}
	return nil
}
