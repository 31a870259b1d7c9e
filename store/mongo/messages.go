package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kefu-dev/kefu/engine"
)

// Append stores msgs as documented on engine.MessageStore: all of one
// conversation with consecutive seqs; on the first failure it stops, keeps
// the stored prefix and returns its length with a *engine.DuplicateError,
// an error wrapping engine.ErrSeqConflict, or another error. A message with
// an empty ClientMsgID is stored without one and never counts as a
// duplicate. A zero CreatedAt is stamped with the store's clock. Appending
// to a conversation that does not exist returns engine.ErrNotFound.
//
// The messages are inserted by the writer goroutine together with every
// other Append queued at the time (doc.go). Once every message is stored
// the timer changes follow, one write each as SetTimers makes them: an
// error then comes with every message stored.
func (s *Store) Append(ctx context.Context, msgs []engine.Message, timers ...engine.TimerChange) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	o := &appendOp{ctx: ctx, tenant: msgs[0].Tenant, conv: msgs[0].Conv, done: make(chan struct{})}
	if o.tenant == "" || o.conv == "" {
		return 0, errors.New("mongo: append: message without tenant or conversation")
	}
	if err := engine.ValidateTimerChanges(timers); err != nil {
		return 0, fmt.Errorf("mongo: append: %w", err)
	}
	now := s.clock.Now()
	o.docs = make([]messageDoc, len(msgs))
	for i, m := range msgs {
		if m.Tenant != o.tenant || m.Conv != o.conv {
			return 0, fmt.Errorf("mongo: append: message %d belongs to %s/%s, not %s/%s", i, m.Tenant, m.Conv, o.tenant, o.conv)
		}
		if m.Seq != msgs[0].Seq+int64(i) || m.Seq < 1 {
			return 0, fmt.Errorf("mongo: append: message %d has seq %d, want %d (consecutive, from 1)", i, m.Seq, msgs[0].Seq+int64(i))
		}
		body, err := json.Marshal(m.Body)
		if err != nil {
			return 0, fmt.Errorf("mongo: append: encode body: %w", err)
		}
		created := m.CreatedAt
		if created.IsZero() {
			created = now
		}
		var clientID any = m.Seq // see doc.go: never equal to a client's string id
		if m.ClientMsgID != "" {
			clientID = m.ClientMsgID
		}
		o.docs[i] = messageDoc{
			ID: bson.NewObjectID(), Tenant: o.tenant, Conv: o.conv, Seq: m.Seq, ClientMsgID: clientID,
			FromRole: string(m.From.Role), FromID: m.From.ID, BodyType: string(m.Body.Type), Body: string(body),
			CreatedAt: created,
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.calls.Done()
	select {
	case s.ops <- o:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case <-o.done:
	case <-ctx.Done():
		// The op may still be inserted: the outcome is unknown, and a
		// resend reports a duplicate.
		return 0, ctx.Err()
	}
	if o.refusedAt >= 0 {
		return o.n, s.refusal(ctx, o, msgs[o.refusedAt])
	}
	if o.err != nil {
		return o.n, o.err
	}
	if err := s.applyTimers(ctx, o.tenant, o.conv, timers); err != nil {
		return o.n, fmt.Errorf("mongo: append: the messages are stored, their timers maybe not: %w", err)
	}
	return o.n, nil
}

// refusal explains why a unique index refused m, after the writer removed
// whatever the op stored after it. A duplicate client_msg_id is checked
// first: when a racing activation stored this very message under another
// seq, both unique keys are hit, and the caller must learn the original's
// seq rather than retry under a new number.
func (s *Store) refusal(ctx context.Context, o *appendOp, m engine.Message) error {
	if m.ClientMsgID != "" {
		orig, err := s.messageByClientID(ctx, o.tenant, o.conv, m.ClientMsgID)
		switch {
		case err == nil:
			return &engine.DuplicateError{ClientMsgID: m.ClientMsgID, Seq: orig.Seq, From: orig.From, CreatedAt: orig.CreatedAt}
		case !errors.Is(err, engine.ErrNotFound):
			return fmt.Errorf("mongo: append %s/%s seq %d: look up client_msg_id: %w", o.tenant, o.conv, m.Seq, err)
		}
	}
	return fmt.Errorf("mongo: append %s/%s seq %d: %w", o.tenant, o.conv, m.Seq, engine.ErrSeqConflict)
}

// Messages returns up to limit messages with seq > afterSeq, ascending. A
// limit <= 0 returns none. An unknown conversation is engine.ErrNotFound.
func (s *Store) Messages(ctx context.Context, tenant, conv string, afterSeq int64, limit int) ([]engine.Message, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	if limit <= 0 {
		return nil, s.requireConversation(ctx, tenant, conv)
	}
	// messages_by_seq.
	filter := append(msgFilter(tenant, conv), bson.E{Key: "seq", Value: bson.D{{Key: "$gt", Value: afterSeq}}})
	return s.findMessages(ctx, tenant, conv, filter, options.Find().SetSort(bson.D{asc("seq")}).SetLimit(int64(limit)))
}

// Recent returns the newest n messages, ascending. An n <= 0 returns none.
// An unknown conversation is engine.ErrNotFound.
func (s *Store) Recent(ctx context.Context, tenant, conv string, n int) ([]engine.Message, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.calls.Done()
	if n <= 0 {
		return nil, s.requireConversation(ctx, tenant, conv)
	}
	// messages_by_seq, backwards; the page is reversed here.
	msgs, err := s.findMessages(ctx, tenant, conv, msgFilter(tenant, conv), options.Find().SetSort(bson.D{desc("seq")}).SetLimit(int64(n)))
	slices.Reverse(msgs)
	return msgs, err
}

// findMessages runs a messages query. No message at all means an unknown
// conversation or one without such messages; the conversation tells which.
func (s *Store) findMessages(ctx context.Context, tenant, conv string, filter bson.D, opts *options.FindOptionsBuilder) ([]engine.Message, error) {
	cur, err := s.c.messages.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: messages %s/%s: %w", tenant, conv, err)
	}
	var docs []messageDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: messages %s/%s: %w", tenant, conv, err)
	}
	if len(docs) == 0 {
		return nil, s.requireConversation(ctx, tenant, conv)
	}
	msgs := make([]engine.Message, len(docs))
	for i := range docs {
		if msgs[i], err = docs[i].message(); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

// message converts a stored message back.
func (d *messageDoc) message() (engine.Message, error) {
	m := engine.Message{
		Tenant: d.Tenant, Conv: d.Conv, Seq: d.Seq,
		From:      engine.Party{Role: engine.Role(d.FromRole), ID: d.FromID},
		CreatedAt: d.CreatedAt.UTC(),
	}
	if id, ok := d.ClientMsgID.(string); ok {
		m.ClientMsgID = id
	}
	if err := json.Unmarshal([]byte(d.Body), &m.Body); err != nil {
		return engine.Message{}, fmt.Errorf("mongo: decode body of %s/%s seq %d: %w", d.Tenant, d.Conv, d.Seq, err)
	}
	return m, nil
}

// LastSeq returns the highest stored seq, 0 for an empty conversation and
// engine.ErrNotFound for an unknown one.
func (s *Store) LastSeq(ctx context.Context, tenant, conv string) (int64, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.calls.Done()
	// messages_by_seq, its last entry for the conversation.
	var d struct {
		Seq int64 `bson:"seq"`
	}
	err := s.c.messages.FindOne(ctx, msgFilter(tenant, conv),
		options.FindOne().SetSort(bson.D{desc("seq")}).SetProjection(bson.D{{Key: "_id", Value: 0}, asc("seq")})).Decode(&d)
	switch {
	case err == nil:
		return d.Seq, nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return 0, s.requireConversation(ctx, tenant, conv)
	default:
		return 0, fmt.Errorf("mongo: last seq %s/%s: %w", tenant, conv, err)
	}
}

// MessageByClientID finds a message by its client_msg_id (engine.ErrNotFound).
func (s *Store) MessageByClientID(ctx context.Context, tenant, conv, clientMsgID string) (engine.Message, error) {
	if err := s.enter(); err != nil {
		return engine.Message{}, err
	}
	defer s.calls.Done()
	return s.messageByClientID(ctx, tenant, conv, clientMsgID)
}

func (s *Store) messageByClientID(ctx context.Context, tenant, conv, clientMsgID string) (engine.Message, error) {
	notFound := fmt.Errorf("mongo: message %s/%s client_msg_id %q: %w", tenant, conv, clientMsgID, engine.ErrNotFound)
	if clientMsgID == "" {
		return engine.Message{}, notFound
	}
	// messages_by_client_id. The value is a string, so it never matches a
	// message stored without a client id.
	var d messageDoc
	err := s.c.messages.FindOne(ctx, append(msgFilter(tenant, conv), bson.E{Key: "client_msg_id", Value: clientMsgID})).Decode(&d)
	switch {
	case err == nil:
		return d.message()
	case errors.Is(err, mongo.ErrNoDocuments):
		return engine.Message{}, notFound
	default:
		return engine.Message{}, fmt.Errorf("mongo: message by client id %s/%s: %w", tenant, conv, err)
	}
}
