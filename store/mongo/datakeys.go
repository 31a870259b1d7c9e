package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

// dataKeyDoc is one version of a tenant's data key, wrapped by the master
// key MasterKeyID names.
type dataKeyDoc struct {
	Tenant      string    `bson:"tenant"`
	Version     int       `bson:"version"`
	MasterKeyID string    `bson:"master_key_id"`
	Wrapped     []byte    `bson:"wrapped"`
	CreatedAt   time.Time `bson:"created_at"`
}

func (d *dataKeyDoc) dataKey() engine.DataKey {
	return engine.DataKey{Tenant: d.Tenant, Version: d.Version, MasterKeyID: d.MasterKeyID, Wrapped: d.Wrapped,
		CreatedAt: d.CreatedAt.UTC()}
}

func dataKeyFilter(tenant string, version int) bson.D {
	return bson.D{{Key: "tenant", Value: tenant}, {Key: "version", Value: version}}
}

// validDataKey checks what both writes of a data key need.
func validDataKey(k engine.DataKey) error {
	if k.Tenant == "" || k.Version < 1 || k.MasterKeyID == "" || len(k.Wrapped) == 0 {
		return errors.New("tenant, a version from 1, master key id and wrapped key are required")
	}
	return nil
}

// CreateDataKey stores k unless the tenant has a key of its version, and
// returns the stored key either way: data_keys_by_version is unique, so of
// racing writers, on any node, the first insert wins and the others read
// its key. An unknown tenant is engine.ErrNotFound; a zero CreatedAt is
// stamped with the store's clock.
func (s *Store) CreateDataKey(ctx context.Context, k engine.DataKey) (engine.DataKey, error) {
	if err := validDataKey(k); err != nil {
		return engine.DataKey{}, fmt.Errorf("mongo: create data key: %w", err)
	}
	k.CreatedAt = s.stamped(k.CreatedAt)
	if err := s.enter(); err != nil {
		return engine.DataKey{}, err
	}
	defer s.calls.Done()
	s.metrics.Ops[storemetrics.OpCreateDataKey].Inc()
	what := fmt.Sprintf("data key %s v%d", k.Tenant, k.Version)
	if err := s.requireTenant(ctx, k.Tenant); err != nil {
		return engine.DataKey{}, fmt.Errorf("mongo: create %s: %w", what, err)
	}
	_, err := s.c.dataKeys.InsertOne(ctx, dataKeyDoc{Tenant: k.Tenant, Version: k.Version, MasterKeyID: k.MasterKeyID,
		Wrapped: k.Wrapped, CreatedAt: k.CreatedAt})
	if err != nil && !mongo.IsDuplicateKeyError(err) { // a duplicate: another writer inserted it first
		return engine.DataKey{}, fmt.Errorf("mongo: create %s: %w", what, err)
	}
	var d dataKeyDoc
	if err := s.c.dataKeys.FindOne(ctx, dataKeyFilter(k.Tenant, k.Version)).Decode(&d); err != nil {
		return engine.DataKey{}, fmt.Errorf("mongo: read %s: %w", what, err)
	}
	return d.dataKey(), nil
}

// DataKeys returns the tenant's data keys, by version; none for an unknown
// tenant.
func (s *Store) DataKeys(ctx context.Context, tenant string) ([]engine.DataKey, error) {
	// data_keys_by_version.
	return s.findDataKeys(ctx, tenantFilter(tenant), "data keys of "+tenant)
}

// AllDataKeys returns every tenant's data keys, by tenant and version.
func (s *Store) AllDataKeys(ctx context.Context) ([]engine.DataKey, error) {
	// data_keys_by_version, whole: read at start and by a rotation.
	return s.findDataKeys(ctx, bson.D{}, "all data keys")
}

func (s *Store) findDataKeys(ctx context.Context, filter bson.D, what string) ([]engine.DataKey, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	cur, err := s.c.dataKeys.Find(ctx, filter, options.Find().SetSort(bson.D{asc("tenant"), asc("version")}))
	if err != nil {
		return nil, fmt.Errorf("mongo: %s: %w", what, err)
	}
	var docs []dataKeyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: %s: %w", what, err)
	}
	out := make([]engine.DataKey, len(docs))
	for i := range docs {
		out[i] = docs[i].dataKey()
	}
	return out, nil
}

// RewrapDataKey replaces the master key id and wrapped form of a stored
// data key (engine.ErrNotFound if the tenant has no key of k.Version).
func (s *Store) RewrapDataKey(ctx context.Context, k engine.DataKey) error {
	if err := validDataKey(k); err != nil {
		return fmt.Errorf("mongo: rewrap data key: %w", err)
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	s.metrics.Ops[storemetrics.OpRewrapDataKey].Inc()
	// data_keys_by_version.
	res, err := s.c.dataKeys.UpdateOne(ctx, dataKeyFilter(k.Tenant, k.Version), bson.D{{Key: "$set", Value: bson.D{
		{Key: "master_key_id", Value: k.MasterKeyID}, {Key: "wrapped", Value: k.Wrapped}}}})
	if err != nil {
		return fmt.Errorf("mongo: rewrap data key %s v%d: %w", k.Tenant, k.Version, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongo: rewrap data key %s v%d: %w", k.Tenant, k.Version, engine.ErrNotFound)
	}
	return nil
}
