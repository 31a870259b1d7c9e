package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

// auditDoc is an audit entry. The adapter only ever inserts and finds
// these: no code path updates or deletes the audit_log collection (see
// doc.go for making the server refuse it too).
type auditDoc struct {
	Tenant    string    `bson:"tenant"`
	ID        string    `bson:"id"`
	At        time.Time `bson:"at"`
	ActorRole string    `bson:"actor_role"`
	ActorID   string    `bson:"actor_id"`
	IP        string    `bson:"ip"`
	Action    string    `bson:"action"`
	Target    string    `bson:"target"`
	Detail    string    `bson:"detail"`
}

// AppendAudit stores entries with one ordered insert: an unknown tenant is
// engine.ErrNotFound and nothing is stored; a taken (tenant, id) is
// engine.ErrExists, and the entries before it are stored. A zero At is
// stamped with the store's clock.
func (s *Store) AppendAudit(ctx context.Context, entries []engine.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	docs := make([]auditDoc, len(entries))
	tenants := map[string]bool{}
	for i, e := range entries {
		if e.Tenant == "" || e.ID == "" || e.Action == "" {
			return errors.New("mongo: append audit: tenant, id and action are required")
		}
		if e.At.IsZero() {
			e.At = s.clock.Now()
		}
		docs[i] = auditDoc{Tenant: e.Tenant, ID: e.ID, At: e.At, ActorRole: string(e.Actor.Role), ActorID: e.Actor.ID,
			IP: e.IP, Action: string(e.Action), Target: e.Target, Detail: e.Detail}
		tenants[e.Tenant] = true
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	s.metrics.Ops[storemetrics.OpAppendAudit].Inc()
	for t := range tenants {
		if err := s.requireTenant(ctx, t); err != nil {
			return fmt.Errorf("mongo: append audit: %w", err)
		}
	}
	// audit_by_id refuses a taken id.
	_, err := s.c.audit.InsertMany(ctx, docs)
	return createError(fmt.Sprintf("%d audit entries", len(docs)), err)
}

// AuditLog returns the tenant's entries that match q, newest first (ties
// by id, descending). A Limit <= 0 means engine.DefaultAuditLimit.
func (s *Store) AuditLog(ctx context.Context, tenant string, q engine.AuditQuery) ([]engine.AuditEntry, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	// audit_by_time, _by_action, _by_actor or _by_target, whose keys end
	// in the sort order.
	filter := bson.D{{Key: "tenant", Value: tenant}}
	if q.Action != "" {
		filter = append(filter, bson.E{Key: "action", Value: string(q.Action)})
	}
	if q.ActorID != "" {
		filter = append(filter, bson.E{Key: "actor_id", Value: q.ActorID})
	}
	if q.Target != "" {
		filter = append(filter, bson.E{Key: "target", Value: q.Target})
	}
	if !q.Before.IsZero() {
		filter = append(filter, bson.E{Key: "at", Value: bson.D{{Key: "$lt", Value: q.Before}}})
	}
	limit := q.Limit
	if limit <= 0 {
		limit = engine.DefaultAuditLimit
	}
	cur, err := s.c.audit.Find(ctx, filter, options.Find().SetSort(bson.D{desc("at"), desc("id")}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("mongo: audit log of %s: %w", tenant, err)
	}
	var docs []auditDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: audit log of %s: %w", tenant, err)
	}
	out := make([]engine.AuditEntry, len(docs))
	for i, d := range docs {
		out[i] = engine.AuditEntry{Tenant: d.Tenant, ID: d.ID, At: d.At.UTC(),
			Actor: engine.Party{Role: engine.Role(d.ActorRole), ID: d.ActorID}, IP: d.IP,
			Action: engine.AuditAction(d.Action), Target: d.Target, Detail: d.Detail}
	}
	return out, nil
}
