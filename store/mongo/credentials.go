package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

// UpdateStaff replaces an account's display name, role and password hash
// (engine.ErrNotFound if it does not exist).
func (s *Store) UpdateStaff(ctx context.Context, st engine.Staff) error {
	if st.Tenant == "" || st.ID == "" {
		return errors.New("mongo: update staff: tenant and id are required")
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	s.metrics.Ops[storemetrics.OpUpdateStaff].Inc()
	// staff_by_id.
	res, err := s.c.staff.UpdateOne(ctx, idFilter(st.Tenant, st.ID), bson.D{{Key: "$set", Value: bson.D{
		{Key: "display_name", Value: st.DisplayName}, {Key: "role", Value: string(st.Role)},
		{Key: "password_hash", Value: st.PasswordHash},
	}}})
	switch {
	case err != nil:
		return fmt.Errorf("mongo: update staff %s/%s: %w", st.Tenant, st.ID, err)
	case res.MatchedCount == 0:
		return fmt.Errorf("mongo: update staff %s/%s: %w", st.Tenant, st.ID, engine.ErrNotFound)
	}
	return nil
}

// credentialDoc is a session or a login state: the engine type as JSON,
// keyed by tenant, staff id and (for a session) id.
type credentialDoc struct {
	Tenant    string    `bson:"tenant"`
	StaffID   string    `bson:"staff_id"`
	ID        string    `bson:"id,omitempty"`
	ExpiresAt time.Time `bson:"expires_at,omitempty"`
	Doc       string    `bson:"doc"`
}

func staffFilter(tenant, staffID string) bson.D {
	return bson.D{{Key: "tenant", Value: tenant}, {Key: "staff_id", Value: staffID}}
}

// putCredential replaces or inserts d in coll under filter, once the
// account is known to exist.
func (s *Store) putCredential(ctx context.Context, kind storemetrics.Op, coll *mongo.Collection, what string, filter bson.D, d credentialDoc, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("mongo: put %s: %w", what, err)
	}
	d.Doc = string(b)
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	s.metrics.Ops[kind].Inc()
	// staff_by_id.
	err = s.c.staff.FindOne(ctx, idFilter(d.Tenant, d.StaffID), options.FindOne().SetProjection(idOnly)).Err()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("mongo: put %s: staff %s/%s: %w", what, d.Tenant, d.StaffID, engine.ErrNotFound)
	case err != nil:
		return fmt.Errorf("mongo: put %s: %w", what, err)
	}
	if err := replaceOrInsert(ctx, coll, filter, d); err != nil {
		return fmt.Errorf("mongo: put %s: %w", what, err)
	}
	return nil
}

// PutSession creates or replaces a session and forgets the account's
// sessions that expired before it was created. An unknown account is
// engine.ErrNotFound.
func (s *Store) PutSession(ctx context.Context, ss engine.StaffSession) error {
	if ss.Tenant == "" || ss.StaffID == "" || ss.ID == "" {
		return errors.New("mongo: put session: tenant, staff id and id are required")
	}
	ss.CreatedAt, ss.ExpiresAt = s.stamped(ss.CreatedAt), ss.ExpiresAt.UTC()
	what := "session " + ss.Tenant + "/" + ss.StaffID + "/" + ss.ID
	filter := append(staffFilter(ss.Tenant, ss.StaffID), bson.E{Key: "id", Value: ss.ID})
	d := credentialDoc{Tenant: ss.Tenant, StaffID: ss.StaffID, ID: ss.ID, ExpiresAt: ss.ExpiresAt}
	if err := s.putCredential(ctx, storemetrics.OpPutSession, s.c.sessions, what, filter, d, ss); err != nil {
		return err
	}
	// staff_sessions_by_id, then a scan of one account's few sessions.
	prune := append(staffFilter(ss.Tenant, ss.StaffID), bson.E{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: ss.CreatedAt}}})
	if _, err := s.c.sessions.DeleteMany(ctx, prune); err != nil {
		return fmt.Errorf("mongo: prune sessions of %s/%s: %w", ss.Tenant, ss.StaffID, err)
	}
	return nil
}

// StaffSessions returns an account's sessions, by id.
func (s *Store) StaffSessions(ctx context.Context, tenant, staffID string) ([]engine.StaffSession, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	what := "sessions of " + tenant + "/" + staffID
	// staff_sessions_by_id.
	cur, err := s.c.sessions.Find(ctx, staffFilter(tenant, staffID), options.Find().SetSort(bson.D{asc("tenant"), asc("staff_id"), asc("id")}))
	if err != nil {
		return nil, fmt.Errorf("mongo: %s: %w", what, err)
	}
	var docs []credentialDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: %s: %w", what, err)
	}
	out := make([]engine.StaffSession, len(docs))
	for i, d := range docs {
		if err := json.Unmarshal([]byte(d.Doc), &out[i]); err != nil {
			return nil, fmt.Errorf("mongo: decode %s: %w", what, err)
		}
	}
	return out, nil
}

// PutLoginState creates or replaces an account's login state (an unknown
// account is engine.ErrNotFound).
func (s *Store) PutLoginState(ctx context.Context, ls engine.LoginState) error {
	if ls.Tenant == "" || ls.StaffID == "" {
		return errors.New("mongo: put login state: tenant and staff id are required")
	}
	ls.LockedUntil = ls.LockedUntil.UTC()
	// login_states_by_staff.
	return s.putCredential(ctx, storemetrics.OpPutLoginState, s.c.loginStates, "login state "+ls.Tenant+"/"+ls.StaffID,
		staffFilter(ls.Tenant, ls.StaffID), credentialDoc{Tenant: ls.Tenant, StaffID: ls.StaffID}, ls)
}

// LoginState returns an account's login state (engine.ErrNotFound if none
// was recorded).
func (s *Store) LoginState(ctx context.Context, tenant, staffID string) (engine.LoginState, error) {
	var ls engine.LoginState
	// login_states_by_staff.
	if err := s.getDoc(ctx, s.c.loginStates, staffFilter(tenant, staffID), "login state "+tenant+"/"+staffID, &ls); err != nil {
		return engine.LoginState{}, err
	}
	return ls, nil
}

// PutTenantCredentials creates or replaces a tenant's credentials. A zero
// UpdatedAt is stamped with the store's clock; an unknown tenant is
// engine.ErrNotFound.
func (s *Store) PutTenantCredentials(ctx context.Context, tc engine.TenantCredentials) error {
	if tc.Tenant == "" {
		return errors.New("mongo: put tenant credentials: tenant is required")
	}
	tc.UpdatedAt = s.stamped(tc.UpdatedAt)
	// tenant_credentials_by_tenant.
	return s.putDoc(ctx, storemetrics.OpPutTenantCredentials, s.c.tenantCredentials, "credentials of "+tc.Tenant,
		tenantFilter(tc.Tenant), jsonDoc{Tenant: tc.Tenant}, tc)
}

// TenantCredentials returns a tenant's credentials (engine.ErrNotFound if
// never set).
func (s *Store) TenantCredentials(ctx context.Context, tenant string) (engine.TenantCredentials, error) {
	var tc engine.TenantCredentials
	if err := s.getDoc(ctx, s.c.tenantCredentials, tenantFilter(tenant), "credentials of "+tenant, &tc); err != nil {
		return engine.TenantCredentials{}, err
	}
	return tc, nil
}
