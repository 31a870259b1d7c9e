package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

// CreateTenant stores a new tenant (engine.ErrExists if its id is taken). A
// zero CreatedAt is stamped with the store's clock.
func (s *Store) CreateTenant(ctx context.Context, t engine.Tenant) error {
	if t.ID == "" {
		return errors.New("mongo: create tenant: id is required")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.clock.Now()
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	s.metrics.Ops[storemetrics.OpCreateTenant].Inc()
	_, err := s.c.tenants.InsertOne(ctx, tenantDoc{ID: t.ID, Name: t.Name, AppID: t.AppID, CreatedAt: t.CreatedAt})
	return createError("tenant "+t.ID, err)
}

// Tenant returns a tenant (engine.ErrNotFound).
func (s *Store) Tenant(ctx context.Context, id string) (engine.Tenant, error) {
	if err := s.enter(); err != nil {
		return engine.Tenant{}, err
	}
	defer s.calls.Done()
	var d tenantDoc
	err := s.c.tenants.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	switch {
	case err == nil:
		return engine.Tenant{ID: d.ID, Name: d.Name, AppID: d.AppID, CreatedAt: d.CreatedAt.UTC()}, nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return engine.Tenant{}, fmt.Errorf("mongo: tenant %s: %w", id, engine.ErrNotFound)
	default:
		return engine.Tenant{}, fmt.Errorf("mongo: tenant %s: %w", id, err)
	}
}

// CountTenants returns how many tenants exist.
func (s *Store) CountTenants(ctx context.Context) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.calls.Done()
	// Counts the (small) collection by its _id index.
	n, err := s.c.tenants.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("mongo: count tenants: %w", err)
	}
	return int(n), nil
}

// CreateStaff stores a new staff account: engine.ErrExists if the tenant
// already has its id or its username, engine.ErrNotFound if the tenant does
// not exist. A zero CreatedAt is stamped with the store's clock.
func (s *Store) CreateStaff(ctx context.Context, st engine.Staff) error {
	if st.Tenant == "" || st.ID == "" || st.Username == "" {
		return errors.New("mongo: create staff: tenant, id and username are required")
	}
	if st.CreatedAt.IsZero() {
		st.CreatedAt = s.clock.Now()
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	s.metrics.Ops[storemetrics.OpCreateStaff].Inc()
	what := "staff " + st.Tenant + "/" + st.Username
	if err := s.requireTenant(ctx, st.Tenant); err != nil {
		return fmt.Errorf("mongo: create %s: %w", what, err)
	}
	_, err := s.c.staff.InsertOne(ctx, staffDoc{
		Tenant: st.Tenant, ID: st.ID, Username: st.Username, DisplayName: st.DisplayName,
		Role: string(st.Role), PasswordHash: st.PasswordHash, CreatedAt: st.CreatedAt,
	})
	return createError(what, err)
}

// StaffByUsername returns a staff account of the tenant (engine.ErrNotFound).
func (s *Store) StaffByUsername(ctx context.Context, tenant, username string) (engine.Staff, error) {
	// staff_by_username.
	return s.oneStaff(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "username", Value: username}}, tenant+"/"+username)
}

// StaffByID returns a staff account of the tenant (engine.ErrNotFound).
func (s *Store) StaffByID(ctx context.Context, tenant, id string) (engine.Staff, error) {
	// staff_by_id.
	return s.oneStaff(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "id", Value: id}}, tenant+"/"+id)
}

func (s *Store) oneStaff(ctx context.Context, filter bson.D, what string) (engine.Staff, error) {
	if err := s.enter(); err != nil {
		return engine.Staff{}, err
	}
	defer s.calls.Done()
	var d staffDoc
	err := s.c.staff.FindOne(ctx, filter).Decode(&d)
	switch {
	case err == nil:
		return d.staff(), nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return engine.Staff{}, fmt.Errorf("mongo: staff %s: %w", what, engine.ErrNotFound)
	default:
		return engine.Staff{}, fmt.Errorf("mongo: staff %s: %w", what, err)
	}
}

// ListStaff returns the tenant's staff accounts, by username; none for an
// unknown tenant.
func (s *Store) ListStaff(ctx context.Context, tenant string) ([]engine.Staff, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	// staff_by_username.
	cur, err := s.c.staff.Find(ctx, bson.D{{Key: "tenant", Value: tenant}},
		options.Find().SetSort(bson.D{asc("tenant"), asc("username")}))
	if err != nil {
		return nil, fmt.Errorf("mongo: list staff of %s: %w", tenant, err)
	}
	var docs []staffDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: list staff of %s: %w", tenant, err)
	}
	out := make([]engine.Staff, len(docs))
	for i := range docs {
		out[i] = docs[i].staff()
	}
	return out, nil
}

func (d *staffDoc) staff() engine.Staff {
	return engine.Staff{
		Tenant: d.Tenant, ID: d.ID, Username: d.Username, DisplayName: d.DisplayName,
		Role: engine.StaffRole(d.Role), PasswordHash: d.PasswordHash, CreatedAt: d.CreatedAt.UTC(),
	}
}

// PutSettingIfAbsent stores value under key unless the key exists, and
// returns the stored value either way. The upsert only sets the value when
// it inserts the document, and _id is unique: of racing writers, on any
// node, the first insert wins and the others read its value.
func (s *Store) PutSettingIfAbsent(ctx context.Context, key, value string) (string, error) {
	if key == "" {
		return "", errors.New("mongo: put setting: key is required")
	}
	if err := s.enter(); err != nil {
		return "", err
	}
	defer s.calls.Done()
	s.metrics.Ops[storemetrics.OpPutSetting].Inc()
	id := bson.D{{Key: "_id", Value: key}}
	_, err := s.c.settings.UpdateOne(ctx, id,
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "value", Value: value}}}}, options.UpdateOne().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) { // a duplicate: another writer inserted it first
		return "", fmt.Errorf("mongo: put setting %q: %w", key, err)
	}
	var d settingDoc
	if err := s.c.settings.FindOne(ctx, id).Decode(&d); err != nil {
		return "", fmt.Errorf("mongo: read setting %q: %w", key, err)
	}
	return d.Value, nil
}
