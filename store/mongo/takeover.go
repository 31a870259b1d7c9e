package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

// jsonDoc is a record that is small and always read whole (an agent
// profile, a skill group, tenant settings, a customer): the engine type as
// JSON, as store/sqlite keeps it. Tenant settings have no ID: the tenant is
// their key.
type jsonDoc struct {
	Tenant string `bson:"tenant"`
	ID     string `bson:"id,omitempty"`
	Doc    string `bson:"doc"`
}

func idFilter(tenant, id string) bson.D {
	return bson.D{{Key: "tenant", Value: tenant}, {Key: "id", Value: id}}
}

func tenantFilter(tenant string) bson.D { return bson.D{{Key: "tenant", Value: tenant}} }

// putDoc creates or replaces the document filter matches in coll with d,
// its Doc v as JSON. An unknown tenant is engine.ErrNotFound.
func (s *Store) putDoc(ctx context.Context, kind storemetrics.Op, coll *mongo.Collection, what string,
	filter bson.D, d jsonDoc, v any) error {
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
	if err := s.requireTenant(ctx, d.Tenant); err != nil {
		return fmt.Errorf("mongo: put %s: %w", what, err)
	}
	if err := replaceOrInsert(ctx, coll, filter, d); err != nil {
		return fmt.Errorf("mongo: put %s: %w", what, err)
	}
	return nil
}

// replaceOrInsert replaces the document filter matches with doc, or inserts
// doc. Two first writes can race to insert it: the loser's duplicate key
// means the document exists now, and its retry replaces it.
func replaceOrInsert(ctx context.Context, coll *mongo.Collection, filter bson.D, doc any) error {
	var err error
	for range 2 {
		_, err = coll.ReplaceOne(ctx, filter, doc, options.Replace().SetUpsert(true))
		if !mongo.IsDuplicateKeyError(err) {
			break
		}
	}
	return err
}

// getDoc decodes into v the document filter matches in coll
// (engine.ErrNotFound).
func (s *Store) getDoc(ctx context.Context, coll *mongo.Collection, filter bson.D, what string, v any) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	var d jsonDoc
	err := coll.FindOne(ctx, filter).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("mongo: %s: %w", what, engine.ErrNotFound)
	case err != nil:
		return fmt.Errorf("mongo: %s: %w", what, err)
	}
	if err := json.Unmarshal([]byte(d.Doc), v); err != nil {
		return fmt.Errorf("mongo: decode %s: %w", what, err)
	}
	return nil
}

// listDocs decodes every document of tenant in coll, by id (the
// collection's <name>_by_id index).
func listDocs[T any](ctx context.Context, s *Store, coll *mongo.Collection, tenant, what string) ([]T, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	cur, err := coll.Find(ctx, tenantFilter(tenant), options.Find().SetSort(bson.D{asc("tenant"), asc("id")}))
	if err != nil {
		return nil, fmt.Errorf("mongo: %s: %w", what, err)
	}
	var docs []jsonDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: %s: %w", what, err)
	}
	out := make([]T, len(docs))
	for i, d := range docs {
		if err := json.Unmarshal([]byte(d.Doc), &out[i]); err != nil {
			return nil, fmt.Errorf("mongo: decode %s: %w", what, err)
		}
	}
	return out, nil
}

// stamped returns t in UTC, or the store's clock's time if t is zero. A
// JSON document keeps its times as given, so they are made UTC first, as
// every other read returns them.
func (s *Store) stamped(t time.Time) time.Time {
	if t.IsZero() {
		t = s.clock.Now()
	}
	return t.UTC()
}

// PutAgentProfile creates or replaces a profile. A zero UpdatedAt is
// stamped with the store's clock; an unknown tenant is engine.ErrNotFound.
func (s *Store) PutAgentProfile(ctx context.Context, p engine.AgentProfile) error {
	if p.Tenant == "" || p.ID == "" {
		return errors.New("mongo: put agent profile: tenant and id are required")
	}
	p.UpdatedAt = s.stamped(p.UpdatedAt)
	return s.putDoc(ctx, storemetrics.OpPutAgentProfile, s.c.profiles, "agent profile "+p.Tenant+"/"+p.ID,
		idFilter(p.Tenant, p.ID), jsonDoc{Tenant: p.Tenant, ID: p.ID}, p)
}

// AgentProfile returns one profile (engine.ErrNotFound).
func (s *Store) AgentProfile(ctx context.Context, tenant, id string) (engine.AgentProfile, error) {
	var p engine.AgentProfile
	if err := s.getDoc(ctx, s.c.profiles, idFilter(tenant, id), "agent profile "+tenant+"/"+id, &p); err != nil {
		return engine.AgentProfile{}, err
	}
	return p, nil
}

// AgentProfiles returns the tenant's profiles, by id.
func (s *Store) AgentProfiles(ctx context.Context, tenant string) ([]engine.AgentProfile, error) {
	return listDocs[engine.AgentProfile](ctx, s, s.c.profiles, tenant, "agent profiles of "+tenant)
}

// PutGroup creates or replaces a skill group. A zero UpdatedAt is stamped
// with the store's clock; an unknown tenant is engine.ErrNotFound.
func (s *Store) PutGroup(ctx context.Context, g engine.SkillGroup) error {
	if g.Tenant == "" || g.ID == "" {
		return errors.New("mongo: put group: tenant and id are required")
	}
	g.UpdatedAt = s.stamped(g.UpdatedAt)
	return s.putDoc(ctx, storemetrics.OpPutGroup, s.c.groups, "group "+g.Tenant+"/"+g.ID,
		idFilter(g.Tenant, g.ID), jsonDoc{Tenant: g.Tenant, ID: g.ID}, g)
}

// DeleteGroup removes a group (engine.ErrNotFound if absent).
func (s *Store) DeleteGroup(ctx context.Context, tenant, id string) error {
	// skill_groups_by_id.
	return s.deleteByID(ctx, storemetrics.OpDeleteGroup, s.c.groups, "group", tenant, id)
}

// deleteByID deletes the tenant's document with id from coll, whose index
// on (tenant, id) finds it; what names it for errors. Deleting nothing is
// engine.ErrNotFound.
func (s *Store) deleteByID(ctx context.Context, kind storemetrics.Op, coll *mongo.Collection, what, tenant, id string) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	s.metrics.Ops[kind].Inc()
	res, err := coll.DeleteOne(ctx, idFilter(tenant, id))
	if err != nil {
		return fmt.Errorf("mongo: delete %s %s/%s: %w", what, tenant, id, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("mongo: delete %s %s/%s: %w", what, tenant, id, engine.ErrNotFound)
	}
	return nil
}

// Groups returns the tenant's groups, by id.
func (s *Store) Groups(ctx context.Context, tenant string) ([]engine.SkillGroup, error) {
	return listDocs[engine.SkillGroup](ctx, s, s.c.groups, tenant, "groups of "+tenant)
}

// PutTenantSettings creates or replaces the tenant's settings, as given
// (defaults are the reader's business). A zero UpdatedAt is stamped with
// the store's clock; an unknown tenant is engine.ErrNotFound.
func (s *Store) PutTenantSettings(ctx context.Context, ts engine.TenantSettings) error {
	if ts.Tenant == "" {
		return errors.New("mongo: put tenant settings: tenant is required")
	}
	ts.UpdatedAt = s.stamped(ts.UpdatedAt)
	// tenant_settings_by_tenant.
	return s.putDoc(ctx, storemetrics.OpPutTenantSettings, s.c.tenantSettings, "settings of "+ts.Tenant,
		tenantFilter(ts.Tenant), jsonDoc{Tenant: ts.Tenant}, ts)
}

// TenantSettings returns the tenant's settings as stored (engine.ErrNotFound
// if never set).
func (s *Store) TenantSettings(ctx context.Context, tenant string) (engine.TenantSettings, error) {
	var ts engine.TenantSettings
	if err := s.getDoc(ctx, s.c.tenantSettings, tenantFilter(tenant), "settings of "+tenant, &ts); err != nil {
		return engine.TenantSettings{}, err
	}
	return ts, nil
}

// PutCustomer creates or replaces a customer's profile. A zero UpdatedAt is
// stamped with the store's clock; an unknown tenant is engine.ErrNotFound.
// Tags and Attrs come back as given, nil or empty.
func (s *Store) PutCustomer(ctx context.Context, c engine.Customer) error {
	if c.Tenant == "" || c.ID == "" {
		return errors.New("mongo: put customer: tenant and id are required")
	}
	c.UpdatedAt, c.LastPurchaseAt = s.stamped(c.UpdatedAt), c.LastPurchaseAt.UTC()
	return s.putDoc(ctx, storemetrics.OpPutCustomer, s.c.customers, "customer "+c.Tenant+"/"+c.ID,
		idFilter(c.Tenant, c.ID), jsonDoc{Tenant: c.Tenant, ID: c.ID}, c)
}

// Customer returns one customer's profile (engine.ErrNotFound).
func (s *Store) Customer(ctx context.Context, tenant, id string) (engine.Customer, error) {
	var c engine.Customer
	if err := s.getDoc(ctx, s.c.customers, idFilter(tenant, id), "customer "+tenant+"/"+id, &c); err != nil {
		return engine.Customer{}, err
	}
	return c, nil
}

type noteDoc struct {
	Tenant     string    `bson:"tenant"`
	Conv       string    `bson:"conv"`
	ID         string    `bson:"id"`
	AuthorRole string    `bson:"author_role"`
	AuthorID   string    `bson:"author_id"`
	Text       string    `bson:"text"`
	CreatedAt  time.Time `bson:"created_at"`
}

// AddNote stores a note: engine.ErrExists if the conversation has a note
// with its id, engine.ErrNotFound if the conversation does not exist. A
// zero CreatedAt is stamped with the store's clock.
func (s *Store) AddNote(ctx context.Context, n engine.Note) error {
	if n.Tenant == "" || n.Conv == "" || n.ID == "" {
		return errors.New("mongo: add note: tenant, conversation and id are required")
	}
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock.Now()
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	s.metrics.Ops[storemetrics.OpAddNote].Inc()
	what := "note " + n.Tenant + "/" + n.Conv + "/" + n.ID
	if err := s.requireConversation(ctx, n.Tenant, n.Conv); err != nil {
		return fmt.Errorf("mongo: create %s: %w", what, err)
	}
	// notes_by_id refuses a taken id.
	_, err := s.c.notes.InsertOne(ctx, noteDoc{Tenant: n.Tenant, Conv: n.Conv, ID: n.ID,
		AuthorRole: string(n.Author.Role), AuthorID: n.Author.ID, Text: n.Text, CreatedAt: n.CreatedAt})
	return createError(what, err)
}

// Notes returns a conversation's notes, oldest first (ties by id); none for
// an unknown conversation.
func (s *Store) Notes(ctx context.Context, tenant, conv string) ([]engine.Note, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	// notes_by_time.
	cur, err := s.c.notes.Find(ctx, msgFilter(tenant, conv), options.Find().SetSort(bson.D{asc("created_at"), asc("id")}))
	if err != nil {
		return nil, fmt.Errorf("mongo: notes of %s/%s: %w", tenant, conv, err)
	}
	var docs []noteDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: notes of %s/%s: %w", tenant, conv, err)
	}
	out := make([]engine.Note, len(docs))
	for i, d := range docs {
		out[i] = engine.Note{Tenant: tenant, Conv: conv, ID: d.ID,
			Author: engine.Party{Role: engine.Role(d.AuthorRole), ID: d.AuthorID}, Text: d.Text, CreatedAt: d.CreatedAt.UTC()}
	}
	return out, nil
}

// timerDoc's _id is its key (timerID): a timer is written and removed on
// most messages, and a lookup by _id is the one every MongoDB-wire server
// answers from its primary key (FerretDB v1 filters anything else by
// reading the whole collection).
type timerDoc struct {
	ID     string    `bson:"_id"`
	Tenant string    `bson:"tenant"`
	Conv   string    `bson:"conv"`
	Kind   string    `bson:"kind"`
	DueAt  time.Time `bson:"due_at"`
}

func (d *timerDoc) timer() engine.Timer {
	return engine.Timer{Tenant: d.Tenant, Conv: d.Conv, Kind: engine.TimerKind(d.Kind), DueAt: d.DueAt.UTC()}
}

// timerID is a timer's key. Conversation ids and kinds hold no "/", so
// it names one tenant, conversation and kind.
func timerID(tenant, conv string, kind engine.TimerKind) string {
	return tenant + "/" + conv + "/" + string(kind)
}

func timerFilter(tenant, conv string, kind engine.TimerKind) bson.D {
	return bson.D{{Key: "_id", Value: timerID(tenant, conv, kind)}}
}

// SetTimers applies changes to the conversation's timers in order, one
// write each: MongoDB has no transaction across them here, and a failure
// leaves the earlier ones applied. Due times are kept to the millisecond.
// An unknown conversation is engine.ErrNotFound.
func (s *Store) SetTimers(ctx context.Context, tenant, conv string, changes ...engine.TimerChange) error {
	if tenant == "" || conv == "" {
		return errors.New("mongo: set timers: tenant and conversation are required")
	}
	if err := engine.ValidateTimerChanges(changes); err != nil {
		return fmt.Errorf("mongo: set timers: %w", err)
	}
	if len(changes) == 0 {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	s.metrics.Ops[storemetrics.OpSetTimers].Inc()
	if slices.ContainsFunc(changes, func(ch engine.TimerChange) bool { return !ch.DueAt.IsZero() }) {
		if err := s.requireConversation(ctx, tenant, conv); err != nil {
			return fmt.Errorf("mongo: set timers: %w", err)
		}
	}
	return s.applyTimers(ctx, tenant, conv, changes)
}

// applyTimers writes the changes to a conversation's timers, in order, one
// write each, for a conversation known to exist.
func (s *Store) applyTimers(ctx context.Context, tenant, conv string, changes []engine.TimerChange) error {
	for _, ch := range changes {
		filter := timerFilter(tenant, conv, ch.Kind)
		var err error
		if ch.DueAt.IsZero() {
			_, err = s.c.timers.DeleteOne(ctx, filter)
		} else {
			doc := timerDoc{ID: timerID(tenant, conv, ch.Kind), Tenant: tenant, Conv: conv, Kind: string(ch.Kind), DueAt: ch.DueAt}
			err = replaceOrInsert(ctx, s.c.timers, filter, doc)
		}
		if err != nil {
			return fmt.Errorf("mongo: set timer %s/%s %s: %w", tenant, conv, ch.Kind, err)
		}
	}
	return nil
}

// Timers returns the conversation's timers, by kind; none for an unknown
// conversation.
func (s *Store) Timers(ctx context.Context, tenant, conv string) ([]engine.Timer, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	// timers_by_kind.
	return s.findTimers(ctx, msgFilter(tenant, conv), options.Find().SetSort(bson.D{asc("kind")}))
}

// DueTimers returns up to limit timers of every tenant due at or before now
// (to the millisecond), earliest first. A limit <= 0 returns none.
func (s *Store) DueTimers(ctx context.Context, now time.Time, limit int) ([]engine.Timer, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	if limit <= 0 {
		return nil, nil
	}
	// timers_by_due.
	return s.findTimers(ctx, bson.D{{Key: "due_at", Value: bson.D{{Key: "$lte", Value: now}}}},
		options.Find().SetSort(bson.D{asc("due_at"), asc("tenant"), asc("conv"), asc("kind")}).SetLimit(int64(limit)))
}

func (s *Store) findTimers(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder) ([]engine.Timer, error) {
	cur, err := s.c.timers.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: timers: %w", err)
	}
	var docs []timerDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: timers: %w", err)
	}
	out := make([]engine.Timer, len(docs))
	for i := range docs {
		out[i] = docs[i].timer()
	}
	return out, nil
}

// migrateTimerIDs gives the timers an older build stored under an
// ObjectID their key as _id; only those are read. Each is removed, then stored again (both
// would hold the same timers_by_kind key); a crash in between loses that
// timer, as a crash just before its write would have. Run at open, before
// any write, on a store every member of a cluster upgrades together.
func migrateTimerIDs(ctx context.Context, timers *mongo.Collection) error {
	cur, err := timers.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$type", Value: "objectId"}}}})
	if err != nil {
		return fmt.Errorf("mongo: migrate timers: %w", err)
	}
	var docs []bson.Raw
	if err := cur.All(ctx, &docs); err != nil {
		return fmt.Errorf("mongo: migrate timers: %w", err)
	}
	for _, raw := range docs {
		var old struct {
			Tenant string    `bson:"tenant"`
			Conv   string    `bson:"conv"`
			Kind   string    `bson:"kind"`
			DueAt  time.Time `bson:"due_at"`
		}
		if err := bson.Unmarshal(raw, &old); err != nil {
			return fmt.Errorf("mongo: migrate timers: %w", err)
		}
		d := timerDoc{Tenant: old.Tenant, Conv: old.Conv, Kind: old.Kind, DueAt: old.DueAt}
		if _, err := timers.DeleteOne(ctx, bson.D{{Key: "_id", Value: raw.Lookup("_id")}}); err != nil {
			return fmt.Errorf("mongo: migrate timer %s/%s %s: %w", d.Tenant, d.Conv, d.Kind, err)
		}
		d.ID = timerID(d.Tenant, d.Conv, engine.TimerKind(d.Kind))
		if err := replaceOrInsert(ctx, timers, bson.D{{Key: "_id", Value: d.ID}}, d); err != nil {
			return fmt.Errorf("mongo: migrate timer %s: %w", d.ID, err)
		}
	}
	return nil
}
