package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

// Canned responses are one row each: the owner and shortcut in columns,
// for the unique index and the listing, and the engine type as JSON.

// PutCanned creates or replaces a canned response by id. An unknown tenant
// is engine.ErrNotFound; a shortcut the owner's (or the tenant's) other
// responses have is engine.ErrExists.
func (s *Store) PutCanned(ctx context.Context, c engine.CannedResponse) error {
	if c.Tenant == "" || c.ID == "" {
		return errors.New("sqlite: put canned response: tenant and id are required")
	}
	c.UpdatedAt = c.UpdatedAt.UTC()
	return s.putDoc(ctx, storemetrics.OpPutCanned, func(w *writeStmts) *sql.Stmt { return w.upsertCanned },
		fmt.Sprintf("canned response %s/%s (shortcut %q)", c.Tenant, c.ID, c.Shortcut), c.Tenant, c, c.Tenant, c.ID, c.Owner, c.Shortcut)
}

// DeleteCanned removes a canned response (engine.ErrNotFound if absent).
func (s *Store) DeleteCanned(ctx context.Context, tenant, id string) error {
	return s.deleteRows(ctx, storemetrics.OpDeleteCanned, func(w *writeStmts) *sql.Stmt { return w.deleteCanned },
		"canned response "+tenant+"/"+id, true, tenant, id)
}

// CannedResponses returns the tenant's own canned responses and owner's
// personal ones, the tenant's first, each by shortcut.
func (s *Store) CannedResponses(ctx context.Context, tenant, owner string) ([]engine.CannedResponse, error) {
	out, err := readDocs[engine.CannedResponse](ctx, s, s.rq.canned, "canned responses of "+tenant, tenant, owner)
	for i := range out {
		out[i].Tenant = tenant
	}
	return out, err
}
