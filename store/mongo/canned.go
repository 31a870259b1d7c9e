package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

// cannedDoc is a canned response: its owner and shortcut as fields, for
// the unique index and the listing, and the engine type as JSON, as
// store/sqlite keeps it.
type cannedDoc struct {
	Tenant   string `bson:"tenant"`
	ID       string `bson:"id"`
	Owner    string `bson:"owner"`
	Shortcut string `bson:"shortcut"`
	Doc      string `bson:"doc"`
}

// PutCanned creates or replaces a canned response by id. An unknown tenant
// is engine.ErrNotFound; a shortcut the owner's (or the tenant's) other
// responses have is engine.ErrExists. canned_by_shortcut refuses it; the
// store looks first, since FerretDB reports that refusal of a replace as
// an internal error rather than a duplicate key.
func (s *Store) PutCanned(ctx context.Context, c engine.CannedResponse) error {
	if c.Tenant == "" || c.ID == "" {
		return errors.New("mongo: put canned response: tenant and id are required")
	}
	c.UpdatedAt = c.UpdatedAt.UTC()
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("mongo: put canned response: %w", err)
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	s.metrics.Ops[storemetrics.OpPutCanned].Inc()
	what := fmt.Sprintf("canned response %s/%s (shortcut %q)", c.Tenant, c.ID, c.Shortcut)
	if err := s.requireTenant(ctx, c.Tenant); err != nil {
		return fmt.Errorf("mongo: put %s: %w", what, err)
	}
	// canned_by_shortcut.
	taken := bson.D{{Key: "tenant", Value: c.Tenant}, {Key: "owner", Value: c.Owner}, {Key: "shortcut", Value: c.Shortcut},
		{Key: "id", Value: bson.D{{Key: "$ne", Value: c.ID}}}}
	switch err := s.c.canned.FindOne(ctx, taken).Err(); {
	case err == nil:
		return fmt.Errorf("mongo: put %s: %w", what, engine.ErrExists)
	case !errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("mongo: put %s: %w", what, err)
	}
	// canned_by_id.
	doc := cannedDoc{Tenant: c.Tenant, ID: c.ID, Owner: c.Owner, Shortcut: c.Shortcut, Doc: string(b)}
	if err := replaceOrInsert(ctx, s.c.canned, idFilter(c.Tenant, c.ID), doc); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("mongo: put %s: %w", what, engine.ErrExists)
		}
		return fmt.Errorf("mongo: put %s: %w", what, err)
	}
	return nil
}

// DeleteCanned removes a canned response (engine.ErrNotFound if absent).
func (s *Store) DeleteCanned(ctx context.Context, tenant, id string) error {
	// canned_by_id.
	return s.deleteByID(ctx, storemetrics.OpDeleteCanned, s.c.canned, "canned response", tenant, id)
}

// CannedResponses returns the tenant's own canned responses and owner's
// personal ones, the tenant's first, each by shortcut.
func (s *Store) CannedResponses(ctx context.Context, tenant, owner string) ([]engine.CannedResponse, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	// canned_by_shortcut.
	filter := bson.D{{Key: "tenant", Value: tenant}, {Key: "owner", Value: bson.D{{Key: "$in", Value: bson.A{"", owner}}}}}
	cur, err := s.c.canned.Find(ctx, filter, options.Find().SetSort(bson.D{asc("tenant"), asc("owner"), asc("shortcut")}))
	if err != nil {
		return nil, fmt.Errorf("mongo: canned responses of %s: %w", tenant, err)
	}
	var docs []cannedDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: canned responses of %s: %w", tenant, err)
	}
	out := make([]engine.CannedResponse, len(docs))
	for i, d := range docs {
		if err := json.Unmarshal([]byte(d.Doc), &out[i]); err != nil {
			return nil, fmt.Errorf("mongo: decode canned response %s/%s: %w", tenant, d.ID, err)
		}
		out[i].Tenant = tenant
	}
	return out, nil
}
