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

type eventDoc struct {
	ID     bson.ObjectID `bson:"_id"`
	Tenant string        `bson:"tenant"`
	Conv   string        `bson:"conv"`
	Type   string        `bson:"type"`
	From   string        `bson:"from"`
	To     string        `bson:"to"`
	ByRole string        `bson:"by_role"`
	ByID   string        `bson:"by_id"`
	Reason string        `bson:"reason"`
	// Absent when empty, as in the events written before they existed.
	Agent string    `bson:"agent_id,omitempty"`
	Group string    `bson:"group_id,omitempty"`
	Note  string    `bson:"note,omitempty"`
	Score int       `bson:"score,omitempty"`
	At    time.Time `bson:"at"`
}

// UpdateConversation records ev, then stores c's mutable fields (state,
// agent, invited, group, priority, queued at, UpdatedAt, rating). Without
// transactions these are two writes: the event goes first, so a crash
// between them leaves the event (what reports read) and an older header,
// which the conversation's next change overwrites.
func (s *Store) UpdateConversation(ctx context.Context, c engine.Conversation, ev engine.ConvEvent) error {
	if c.Tenant == "" || c.ID == "" {
		return errors.New("mongo: update conversation: tenant and id are required")
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = s.clock.Now()
	}
	if ev.At.IsZero() {
		ev.At = c.UpdatedAt
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	s.metrics.Ops[storemetrics.OpUpdateConversation].Inc()
	what := c.Tenant + "/" + c.ID
	if err := s.requireConversation(ctx, c.Tenant, c.ID); err != nil {
		return fmt.Errorf("mongo: update conversation %s: %w", what, err)
	}
	_, err := s.c.events.InsertOne(ctx, eventDoc{
		ID: bson.NewObjectID(), Tenant: c.Tenant, Conv: c.ID, Type: string(ev.Type), From: string(ev.From), To: string(ev.To),
		ByRole: string(ev.By.Role), ByID: ev.By.ID, Reason: ev.Reason, Agent: ev.Agent, Group: ev.Group, Note: ev.Note, Score: ev.Score, At: ev.At,
	})
	if err != nil {
		return fmt.Errorf("mongo: record event of %s: %w", what, err)
	}
	// conversations_by_id.
	res, err := s.c.conversations.UpdateOne(ctx, convFilter(c.Tenant, c.ID), conversationUpdate(c))
	if err != nil {
		return fmt.Errorf("mongo: update conversation %s: %w", what, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongo: update conversation %s: %w", what, engine.ErrNotFound)
	}
	return nil
}

// conversationUpdate sets c's mutable fields. No invitees, no queue time
// and no rating are absent fields, as CreateConversation writes them.
func conversationUpdate(c engine.Conversation) bson.D {
	set := bson.D{
		{Key: "state", Value: string(c.State)}, {Key: "agent_id", Value: c.AgentID},
		{Key: "group_id", Value: c.Group}, {Key: "priority", Value: c.Priority}, {Key: "updated_at", Value: c.UpdatedAt},
	}
	var unset bson.D
	if len(c.Invited) > 0 {
		set = append(set, bson.E{Key: "invited", Value: c.Invited})
	} else {
		unset = append(unset, bson.E{Key: "invited", Value: ""})
	}
	if !c.QueuedAt.IsZero() {
		set = append(set, bson.E{Key: "queued_at", Value: c.QueuedAt})
	} else {
		unset = append(unset, bson.E{Key: "queued_at", Value: ""})
	}
	if c.Rating != nil {
		set = append(set, bson.E{Key: "rating", Value: ratingToDoc(c.Rating)})
	} else {
		unset = append(unset, bson.E{Key: "rating", Value: ""})
	}
	update := bson.D{{Key: "$set", Value: set}}
	if len(unset) > 0 {
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	return update
}

// Events returns the conversation's lifecycle events, oldest first; none
// for an unknown conversation.
func (s *Store) Events(ctx context.Context, tenant, conv string) ([]engine.ConvEvent, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	// conv_events_by_conv.
	cur, err := s.c.events.Find(ctx, msgFilter(tenant, conv), options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: events of %s/%s: %w", tenant, conv, err)
	}
	var docs []eventDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: events of %s/%s: %w", tenant, conv, err)
	}
	out := make([]engine.ConvEvent, len(docs))
	for i, d := range docs {
		out[i] = engine.ConvEvent{Tenant: tenant, Conv: conv, Type: engine.EventType(d.Type), From: engine.ConvState(d.From),
			To: engine.ConvState(d.To), By: engine.Party{Role: engine.Role(d.ByRole), ID: d.ByID}, Reason: d.Reason,
			Agent: d.Agent, Group: d.Group, Note: d.Note, Score: d.Score, At: d.At.UTC()}
	}
	return out, nil
}

type faqDoc struct {
	Tenant    string    `bson:"tenant"`
	ID        string    `bson:"id"`
	Category  string    `bson:"category"`
	Question  string    `bson:"question"`
	Similar   []string  `bson:"similar"`
	Answer    string    `bson:"answer"`
	Tags      []string  `bson:"tags"`
	Enabled   bool      `bson:"enabled"`
	UpdatedAt time.Time `bson:"updated_at"`
	Version   int64     `bson:"version"`
}

// PutFAQ creates or replaces entries by id. Entries are written one by one
// (no transactions): a failure part-way leaves the earlier ones written,
// and the caller's retry rewrites them all.
func (s *Store) PutFAQ(ctx context.Context, tenant string, entries []engine.FAQEntry) error {
	if tenant == "" {
		return errors.New("mongo: put faq: tenant is required")
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	s.metrics.Ops[storemetrics.OpPutFAQ].Inc()
	if err := s.requireTenant(ctx, tenant); err != nil {
		return fmt.Errorf("mongo: put faq: %w", err)
	}
	for _, e := range entries {
		doc := faqDoc{Tenant: tenant, ID: e.ID, Category: e.Category, Question: e.Question, Similar: nonNil(e.Similar),
			Answer: e.Answer, Tags: nonNil(e.Tags), Enabled: e.Enabled, UpdatedAt: e.UpdatedAt, Version: e.Version}
		// faq_entries_by_id.
		filter := bson.D{{Key: "tenant", Value: tenant}, {Key: "id", Value: e.ID}}
		if _, err := s.c.faq.ReplaceOne(ctx, filter, doc, options.Replace().SetUpsert(true)); err != nil {
			return fmt.Errorf("mongo: put faq %s/%s: %w", tenant, e.ID, err)
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// DeleteFAQ removes one entry (engine.ErrNotFound if absent).
func (s *Store) DeleteFAQ(ctx context.Context, tenant, id string) error {
	// faq_entries_by_id.
	return s.deleteByID(ctx, storemetrics.OpDeleteFAQ, s.c.faq, "faq", tenant, id)
}

// FAQEntries returns every entry of the tenant, by id.
func (s *Store) FAQEntries(ctx context.Context, tenant string) ([]engine.FAQEntry, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	// faq_entries_by_id.
	cur, err := s.c.faq.Find(ctx, bson.D{{Key: "tenant", Value: tenant}}, options.Find().SetSort(bson.D{{Key: "tenant", Value: 1}, {Key: "id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: faq entries of %s: %w", tenant, err)
	}
	var docs []faqDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: faq entries of %s: %w", tenant, err)
	}
	out := make([]engine.FAQEntry, len(docs))
	for i, d := range docs {
		out[i] = engine.FAQEntry{ID: d.ID, Category: d.Category, Question: d.Question, Similar: d.Similar, Answer: d.Answer,
			Tags: d.Tags, Enabled: d.Enabled, UpdatedAt: d.UpdatedAt.UTC(), Version: d.Version}
	}
	return out, nil
}
