package sealed

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/kefu-dev/kefu/engine"
)

// sealedBody is the type of a stored message body: its Text is the sealed
// JSON of the real body, type included.
const sealedBody engine.BodyType = "sealed"

// Store is an engine.Store whose personal fields are sealed on the way in
// and opened on the way out (see doc.go for which). Every other method is
// the wrapped store's own.
type Store struct {
	engine.Store
	keys *Keys
}

var _ engine.Store = (*Store)(nil)

// Wrap returns inner with its personal fields sealed by keys, whose data
// keys inner normally stores too.
func Wrap(inner engine.Store, keys *Keys) *Store { return &Store{Store: inner, keys: keys} }

// Field labels of the additional authenticated data.
const (
	fieldBody        = "message.body"
	fieldNote        = "note.text"
	fieldEventNote   = "event.note"
	fieldRating      = "conversation.rating_comment"
	fieldDisplayName = "customer.display_name"
	fieldAttr        = "customer.attr"
	fieldAppSecret   = "tenant.wechat_app_secret"
	fieldIDSecret    = "tenant.identity_secret"
)

func (s *Store) sealText(ctx context.Context, tenant, text string, field string, ids ...string) (string, error) {
	return s.keys.seal(ctx, tenant, []byte(text), aad(field, append([]string{tenant}, ids...)...))
}

func (s *Store) openText(ctx context.Context, tenant, sealed string, field string, ids ...string) (string, error) {
	b, err := s.keys.open(ctx, tenant, sealed, aad(field, append([]string{tenant}, ids...)...))
	return string(b), err
}

// Append seals every message's body, bound to its tenant, conversation and
// seq, and appends the messages with their timer changes.
func (s *Store) Append(ctx context.Context, msgs []engine.Message, timers ...engine.TimerChange) (int, error) {
	sealed := make([]engine.Message, len(msgs))
	for i, m := range msgs {
		if err := s.sealBody(ctx, &m); err != nil {
			return 0, err
		}
		sealed[i] = m
	}
	return s.Store.Append(ctx, sealed, timers...)
}

func bodyAAD(tenant, conv string, seq int64) []byte {
	return aad(fieldBody, tenant, conv, strconv.FormatInt(seq, 10))
}

// sealBody replaces m's body by its sealed form.
func (s *Store) sealBody(ctx context.Context, m *engine.Message) error {
	plain, err := json.Marshal(m.Body)
	if err != nil {
		return fmt.Errorf("sealed: message %s/%s seq %d: encode body: %w", m.Tenant, m.Conv, m.Seq, err)
	}
	text, err := s.keys.seal(ctx, m.Tenant, plain, bodyAAD(m.Tenant, m.Conv, m.Seq))
	if err != nil {
		return fmt.Errorf("sealed: message %s/%s seq %d: %w", m.Tenant, m.Conv, m.Seq, err)
	}
	m.Body = engine.Body{Type: sealedBody, Text: text}
	return nil
}

// openBody replaces m's sealed body by the body in clear.
func (s *Store) openBody(ctx context.Context, m *engine.Message) error {
	if m.Body.Type != sealedBody || len(m.Body.Options) > 0 {
		return fmt.Errorf("sealed: message %s/%s seq %d: body: %w", m.Tenant, m.Conv, m.Seq, ErrTampered)
	}
	plain, err := s.keys.open(ctx, m.Tenant, m.Body.Text, bodyAAD(m.Tenant, m.Conv, m.Seq))
	if err != nil {
		return fmt.Errorf("sealed: message %s/%s seq %d: body: %w", m.Tenant, m.Conv, m.Seq, err)
	}
	var body engine.Body
	if err := json.Unmarshal(plain, &body); err != nil {
		// Authentic, so written by a build that encoded bodies otherwise.
		return fmt.Errorf("sealed: message %s/%s seq %d: decode body: %w", m.Tenant, m.Conv, m.Seq, err)
	}
	m.Body = body
	return nil
}

// openBodies opens the bodies of msgs in place.
func (s *Store) openBodies(ctx context.Context, msgs []engine.Message) error {
	for i := range msgs {
		if err := s.openBody(ctx, &msgs[i]); err != nil {
			return err
		}
	}
	return nil
}

// Messages returns the messages with their bodies opened.
func (s *Store) Messages(ctx context.Context, tenant, conv string, afterSeq int64, limit int) ([]engine.Message, error) {
	msgs, err := s.Store.Messages(ctx, tenant, conv, afterSeq, limit)
	if err != nil {
		return nil, err
	}
	if err := s.openBodies(ctx, msgs); err != nil {
		return nil, err
	}
	return msgs, nil
}

// Recent returns the newest messages with their bodies opened.
func (s *Store) Recent(ctx context.Context, tenant, conv string, n int) ([]engine.Message, error) {
	msgs, err := s.Store.Recent(ctx, tenant, conv, n)
	if err != nil {
		return nil, err
	}
	if err := s.openBodies(ctx, msgs); err != nil {
		return nil, err
	}
	return msgs, nil
}

// MessageByClientID returns the message with its body opened.
func (s *Store) MessageByClientID(ctx context.Context, tenant, conv, clientMsgID string) (engine.Message, error) {
	m, err := s.Store.MessageByClientID(ctx, tenant, conv, clientMsgID)
	if err != nil {
		return engine.Message{}, err
	}
	if err := s.openBody(ctx, &m); err != nil {
		return engine.Message{}, err
	}
	return m, nil
}

// sealRating replaces c's rating by a copy with its comment sealed, bound
// to the conversation.
func (s *Store) sealRating(ctx context.Context, c *engine.Conversation) error {
	if c.Rating == nil {
		return nil
	}
	r := *c.Rating
	var err error
	if r.Comment, err = s.sealText(ctx, c.Tenant, r.Comment, fieldRating, c.ID); err != nil {
		return err
	}
	c.Rating = &r
	return nil
}

// openRating opens the comment of c's rating in place.
func (s *Store) openRating(ctx context.Context, c *engine.Conversation) error {
	if c.Rating == nil {
		return nil
	}
	var err error
	if c.Rating.Comment, err = s.openText(ctx, c.Tenant, c.Rating.Comment, fieldRating, c.ID); err != nil {
		return fmt.Errorf("sealed: conversation %s/%s: rating comment: %w", c.Tenant, c.ID, err)
	}
	return nil
}

// CreateConversation seals the comment of the conversation's rating, if
// it has one.
func (s *Store) CreateConversation(ctx context.Context, c engine.Conversation) error {
	if err := s.sealRating(ctx, &c); err != nil {
		return fmt.Errorf("sealed: create conversation %s/%s: %w", c.Tenant, c.ID, err)
	}
	return s.Store.CreateConversation(ctx, c)
}

// Conversation returns the conversation with its rating's comment opened.
func (s *Store) Conversation(ctx context.Context, tenant, id string) (engine.Conversation, error) {
	c, err := s.Store.Conversation(ctx, tenant, id)
	if err != nil {
		return engine.Conversation{}, err
	}
	if err := s.openRating(ctx, &c); err != nil {
		return engine.Conversation{}, err
	}
	return c, nil
}

// ListConversations returns the conversations with their ratings'
// comments opened.
func (s *Store) ListConversations(ctx context.Context, tenant string, q engine.ConversationQuery) ([]engine.Conversation, error) {
	convs, err := s.Store.ListConversations(ctx, tenant, q)
	if err != nil {
		return nil, err
	}
	for i := range convs {
		if err := s.openRating(ctx, &convs[i]); err != nil {
			return nil, err
		}
	}
	return convs, nil
}

// UpdateConversation seals the event's note and the comment of the
// conversation's rating, both bound to the conversation.
func (s *Store) UpdateConversation(ctx context.Context, c engine.Conversation, ev engine.ConvEvent) error {
	note, err := s.sealText(ctx, c.Tenant, ev.Note, fieldEventNote, c.ID)
	if err != nil {
		return fmt.Errorf("sealed: update conversation %s/%s: %w", c.Tenant, c.ID, err)
	}
	ev.Note = note
	if err := s.sealRating(ctx, &c); err != nil {
		return fmt.Errorf("sealed: update conversation %s/%s: %w", c.Tenant, c.ID, err)
	}
	return s.Store.UpdateConversation(ctx, c, ev)
}

// Events returns the conversation's events with their notes opened.
func (s *Store) Events(ctx context.Context, tenant, conv string) ([]engine.ConvEvent, error) {
	evs, err := s.Store.Events(ctx, tenant, conv)
	if err != nil {
		return nil, err
	}
	for i := range evs {
		if evs[i].Note, err = s.openText(ctx, tenant, evs[i].Note, fieldEventNote, conv); err != nil {
			return nil, fmt.Errorf("sealed: event %d of %s/%s: note: %w", i+1, tenant, conv, err)
		}
	}
	return evs, nil
}

// AddNote seals the note's text, bound to its conversation and id.
func (s *Store) AddNote(ctx context.Context, n engine.Note) error {
	text, err := s.sealText(ctx, n.Tenant, n.Text, fieldNote, n.Conv, n.ID)
	if err != nil {
		return fmt.Errorf("sealed: add note %s/%s/%s: %w", n.Tenant, n.Conv, n.ID, err)
	}
	n.Text = text
	return s.Store.AddNote(ctx, n)
}

// Notes returns the conversation's notes with their text opened.
func (s *Store) Notes(ctx context.Context, tenant, conv string) ([]engine.Note, error) {
	notes, err := s.Store.Notes(ctx, tenant, conv)
	if err != nil {
		return nil, err
	}
	for i := range notes {
		n := &notes[i]
		if n.Text, err = s.openText(ctx, tenant, n.Text, fieldNote, conv, n.ID); err != nil {
			return nil, fmt.Errorf("sealed: note %s/%s/%s: %w", tenant, conv, n.ID, err)
		}
	}
	return notes, nil
}

// PutCustomer seals the display name and every attribute value, bound to
// the customer (and the value to its attribute's name).
func (s *Store) PutCustomer(ctx context.Context, c engine.Customer) error {
	var err error
	if c.DisplayName, err = s.sealText(ctx, c.Tenant, c.DisplayName, fieldDisplayName, c.ID); err != nil {
		return fmt.Errorf("sealed: put customer %s/%s: %w", c.Tenant, c.ID, err)
	}
	if c.Attrs != nil {
		attrs := make(map[string]string, len(c.Attrs))
		for name, v := range c.Attrs {
			if attrs[name], err = s.sealText(ctx, c.Tenant, v, fieldAttr, c.ID, name); err != nil {
				return fmt.Errorf("sealed: put customer %s/%s: %w", c.Tenant, c.ID, err)
			}
		}
		c.Attrs = attrs
	}
	return s.Store.PutCustomer(ctx, c)
}

// Customer returns the profile with its display name and attribute values
// opened.
func (s *Store) Customer(ctx context.Context, tenant, id string) (engine.Customer, error) {
	c, err := s.Store.Customer(ctx, tenant, id)
	if err != nil {
		return engine.Customer{}, err
	}
	if c.DisplayName, err = s.openText(ctx, tenant, c.DisplayName, fieldDisplayName, id); err != nil {
		return engine.Customer{}, fmt.Errorf("sealed: customer %s/%s: display name: %w", tenant, id, err)
	}
	for name, v := range c.Attrs {
		if c.Attrs[name], err = s.openText(ctx, tenant, v, fieldAttr, id, name); err != nil {
			return engine.Customer{}, fmt.Errorf("sealed: customer %s/%s: attribute %q: %w", tenant, id, name, err)
		}
	}
	return c, nil
}

// PutTenantCredentials seals the tenant's secrets: whoever reads the
// database must not be able to sign identities or call WeChat as the
// tenant.
func (s *Store) PutTenantCredentials(ctx context.Context, tc engine.TenantCredentials) error {
	var err error
	if tc.WeChatAppSecret, err = s.sealText(ctx, tc.Tenant, tc.WeChatAppSecret, fieldAppSecret, tc.Tenant); err != nil {
		return fmt.Errorf("sealed: put credentials of %s: %w", tc.Tenant, err)
	}
	if tc.IdentitySecret, err = s.sealText(ctx, tc.Tenant, tc.IdentitySecret, fieldIDSecret, tc.Tenant); err != nil {
		return fmt.Errorf("sealed: put credentials of %s: %w", tc.Tenant, err)
	}
	return s.Store.PutTenantCredentials(ctx, tc)
}

// TenantCredentials returns the tenant's secrets opened.
func (s *Store) TenantCredentials(ctx context.Context, tenant string) (engine.TenantCredentials, error) {
	tc, err := s.Store.TenantCredentials(ctx, tenant)
	if err != nil {
		return engine.TenantCredentials{}, err
	}
	if tc.WeChatAppSecret, err = s.openText(ctx, tenant, tc.WeChatAppSecret, fieldAppSecret, tenant); err != nil {
		return engine.TenantCredentials{}, fmt.Errorf("sealed: credentials of %s: %w", tenant, err)
	}
	if tc.IdentitySecret, err = s.openText(ctx, tenant, tc.IdentitySecret, fieldIDSecret, tenant); err != nil {
		return engine.TenantCredentials{}, fmt.Errorf("sealed: credentials of %s: %w", tenant, err)
	}
	return tc, nil
}
