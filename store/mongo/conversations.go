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

// CreateConversation stores a new conversation: engine.ErrExists if the
// tenant already has one with its id, engine.ErrNotFound if the tenant does
// not exist. A zero CreatedAt is stamped with the store's clock, a zero
// UpdatedAt copies CreatedAt, and an empty State is engine.StateBot.
func (s *Store) CreateConversation(ctx context.Context, c engine.Conversation) error {
	if c.Tenant == "" || c.ID == "" {
		return errors.New("mongo: create conversation: tenant and id are required")
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.clock.Now()
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	if c.State == "" {
		c.State = engine.StateBot
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	s.metrics.Ops[storemetrics.OpCreateConversation].Inc()
	what := "conversation " + c.Tenant + "/" + c.ID
	if err := s.requireTenant(ctx, c.Tenant); err != nil {
		return fmt.Errorf("mongo: create %s: %w", what, err)
	}
	_, err := s.c.conversations.InsertOne(ctx, conversationDoc{
		Tenant: c.Tenant, ID: c.ID, UserID: c.UserID, State: string(c.State), AgentID: c.AgentID,
		Invited: c.Invited, Group: c.Group, Priority: c.Priority, QueuedAt: c.QueuedAt,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Rating: ratingToDoc(c.Rating),
	})
	if err == nil {
		s.known.add(c.Tenant, c.ID)
	}
	return createError(what, err)
}

// createError maps the error of an insert of a new record named what.
func createError(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case mongo.IsDuplicateKeyError(err):
		return fmt.Errorf("mongo: create %s: %w", what, engine.ErrExists)
	default:
		return fmt.Errorf("mongo: create %s: %w", what, err)
	}
}

// Conversation returns one conversation of the tenant (engine.ErrNotFound).
func (s *Store) Conversation(ctx context.Context, tenant, id string) (engine.Conversation, error) {
	if err := s.enter(); err != nil {
		return engine.Conversation{}, err
	}
	defer s.calls.Done()
	// conversations_by_id.
	var d conversationDoc
	err := s.c.conversations.FindOne(ctx, convFilter(tenant, id)).Decode(&d)
	switch {
	case err == nil:
		return d.conversation(), nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return engine.Conversation{}, fmt.Errorf("mongo: conversation %s/%s: %w", tenant, id, engine.ErrNotFound)
	default:
		return engine.Conversation{}, fmt.Errorf("mongo: conversation %s/%s: %w", tenant, id, err)
	}
}

func (d *conversationDoc) conversation() engine.Conversation {
	return engine.Conversation{
		Tenant: d.Tenant, ID: d.ID, UserID: d.UserID, State: engine.ConvState(d.State), AgentID: d.AgentID,
		Invited: d.Invited, Group: d.Group, Priority: d.Priority, QueuedAt: d.QueuedAt.UTC(),
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(), Rating: d.Rating.rating(),
	}
}

// defaultListLimit is ConversationQuery's documented "0 means 50".
const defaultListLimit = 50

// ListConversations returns the tenant's conversations, newest first
// (ties by id, descending). A Limit <= 0 means 50.
func (s *Store) ListConversations(ctx context.Context, tenant string, q engine.ConversationQuery) ([]engine.Conversation, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	// conversations_by_created, _by_user, _by_agent(_state), _by_invited,
	// _by_group(_state) or _by_state, whose keys end in the sort order.
	filter := bson.D{{Key: "tenant", Value: tenant}}
	if q.InvitedID != "" { // an element of the invited array
		filter = append(filter, bson.E{Key: "invited", Value: q.InvitedID})
	}
	if q.UserID != "" {
		filter = append(filter, bson.E{Key: "user_id", Value: q.UserID})
	}
	if q.AgentID != "" {
		filter = append(filter, bson.E{Key: "agent_id", Value: q.AgentID})
	}
	if q.Group != "" {
		filter = append(filter, bson.E{Key: "group_id", Value: q.Group})
	}
	if q.State != "" {
		filter = append(filter, bson.E{Key: "state", Value: string(q.State)})
	}
	if !q.Before.IsZero() {
		filter = append(filter, bson.E{Key: "created_at", Value: bson.D{{Key: "$lt", Value: q.Before}}})
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	cur, err := s.c.conversations.Find(ctx, filter,
		options.Find().SetSort(bson.D{desc("created_at"), desc("id")}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("mongo: list conversations: %w", err)
	}
	var docs []conversationDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: list conversations: %w", err)
	}
	out := make([]engine.Conversation, len(docs))
	for i := range docs {
		out[i] = docs[i].conversation()
	}
	return out, nil
}

// SetReadPointer moves p's read pointer in the conversation forward to seq
// and returns its value afterwards; it never moves backwards, whatever
// calls race, on this node or others. An unknown conversation is
// engine.ErrNotFound.
//
// A pointer is stored as the values it has had: its value is the highest.
// On MongoDB one findAndModify applies $max to the highest of them
// atomically. FerretDB v1 applies an update by reading, modifying and
// writing back without isolation, so a racing update could lower the
// pointer; there the store only inserts documents, which are never
// modified, and reads the highest (setReadPointerByInsert).
func (s *Store) SetReadPointer(ctx context.Context, tenant, conv string, p engine.Party, seq int64) (int64, error) {
	if seq < 0 {
		return 0, fmt.Errorf("mongo: set read pointer: negative seq %d", seq)
	}
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.calls.Done()
	s.metrics.Ops[storemetrics.OpSetReadPointer].Inc()
	if err := s.requireConversation(ctx, tenant, conv); err != nil {
		return 0, fmt.Errorf("mongo: set read pointer: %w", err)
	}
	var v int64
	var err error
	if s.atomicUpdates {
		v, err = s.setReadPointerAtomic(ctx, tenant, conv, p, seq)
	} else {
		v, err = s.setReadPointerByInsert(ctx, tenant, conv, p, seq)
	}
	if err != nil {
		return 0, fmt.Errorf("mongo: set read pointer %s/%s %s: %w", tenant, conv, p, err)
	}
	return v, nil
}

func partyFilter(tenant, conv string, p engine.Party) bson.D {
	return bson.D{{Key: "tenant", Value: tenant}, {Key: "conv", Value: conv},
		{Key: "role", Value: string(p.Role)}, {Key: "party_id", Value: p.ID}}
}

var highestFirst = bson.D{desc("seq")}

// setReadPointerAtomic raises the highest stored value to seq, or inserts
// seq if there is none, in one atomic findAndModify
// (read_pointers_by_party).
func (s *Store) setReadPointerAtomic(ctx context.Context, tenant, conv string, p engine.Party, seq int64) (int64, error) {
	var d readPointerDoc
	var err error
	for range 2 {
		err = s.c.readPointers.FindOneAndUpdate(ctx, partyFilter(tenant, conv, p),
			bson.D{{Key: "$max", Value: bson.D{{Key: "seq", Value: seq}}}},
			options.FindOneAndUpdate().SetUpsert(true).SetSort(highestFirst).SetReturnDocument(options.After),
		).Decode(&d)
		if !mongo.IsDuplicateKeyError(err) {
			break
		}
		// Two first updates raced to insert the same value: the
		// document exists now, and the retry updates it.
	}
	if err != nil {
		return 0, err
	}
	return d.Seq, nil
}

// setReadPointerByInsert needs no atomic update: it inserts seq as a new
// document unless the pointer is already there (a duplicate means the
// value is stored), deletes the values below it, and returns the highest
// value stored. A value is deleted only by a caller that stored a higher
// one, so the highest is never deleted and the pointer never goes down.
func (s *Store) setReadPointerByInsert(ctx context.Context, tenant, conv string, p engine.Party, seq int64) (int64, error) {
	cur, found, err := s.readPointer(ctx, tenant, conv, p)
	if err != nil || (found && cur >= seq) {
		return cur, err
	}
	_, err = s.c.readPointers.InsertOne(ctx, readPointerDoc{Tenant: tenant, Conv: conv, Role: string(p.Role), PartyID: p.ID, Seq: seq})
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return 0, err
	}
	below := append(partyFilter(tenant, conv, p), bson.E{Key: "seq", Value: bson.D{{Key: "$lt", Value: seq}}})
	if _, err := s.c.readPointers.DeleteMany(ctx, below); err != nil {
		// Harmless: the stale values are lower and ignored.
		s.log.Warn("mongo: pruning old read pointer values", "conv", conv, "party", p.String(), "err", err)
	}
	cur, _, err = s.readPointer(ctx, tenant, conv, p)
	return cur, err
}

// readPointer returns the highest stored value of p's pointer
// (read_pointers_by_party).
func (s *Store) readPointer(ctx context.Context, tenant, conv string, p engine.Party) (int64, bool, error) {
	var d readPointerDoc
	err := s.c.readPointers.FindOne(ctx, partyFilter(tenant, conv, p), options.FindOne().SetSort(highestFirst)).Decode(&d)
	switch {
	case err == nil:
		return d.Seq, true, nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return 0, false, nil
	default:
		return 0, false, err
	}
}

// ReadPointers returns every participant's read pointer, ordered by role
// and id. An unknown conversation is engine.ErrNotFound.
func (s *Store) ReadPointers(ctx context.Context, tenant, conv string) ([]engine.ReadPointer, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	if err := s.requireConversation(ctx, tenant, conv); err != nil {
		return nil, err
	}
	// read_pointers_by_party: each participant's highest value first.
	cur, err := s.c.readPointers.Find(ctx, msgFilter(tenant, conv),
		options.Find().SetSort(bson.D{asc("role"), asc("party_id"), desc("seq")}))
	if err != nil {
		return nil, fmt.Errorf("mongo: read pointers %s/%s: %w", tenant, conv, err)
	}
	var docs []readPointerDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: read pointers %s/%s: %w", tenant, conv, err)
	}
	var out []engine.ReadPointer
	for _, d := range docs {
		p := engine.Party{Role: engine.Role(d.Role), ID: d.PartyID}
		if len(out) > 0 && out[len(out)-1].Party == p {
			continue // a lower, older value
		}
		out = append(out, engine.ReadPointer{Party: p, Seq: d.Seq})
	}
	return out, nil
}
