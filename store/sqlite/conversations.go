package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

type createConversationOp struct {
	opHeader
	c engine.Conversation
}

// CreateConversation stores a new conversation: engine.ErrExists if the
// tenant already has one with its id, engine.ErrNotFound if the tenant does
// not exist. A zero CreatedAt is stamped with the store's clock, a zero
// UpdatedAt copies CreatedAt, and an empty State is engine.StateBot.
func (s *Store) CreateConversation(ctx context.Context, c engine.Conversation) error {
	if c.Tenant == "" || c.ID == "" {
		return errors.New("sqlite: create conversation: tenant and id are required")
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
	o := &createConversationOp{opHeader: newHeader(ctx, storemetrics.OpCreateConversation), c: c}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	return o.err
}

func (o *createConversationOp) apply(w *writer) error {
	c := o.c
	score, comment, at := ratingColumns(c.Rating)
	_, err := w.st.insertConversation.ExecContext(bg, c.Tenant, c.ID, c.UserID, string(c.State), c.AgentID,
		invitedJSON(c.Invited), c.Group, c.Priority, queuedAtMS(c.QueuedAt), c.CreatedAt.UnixMilli(), c.UpdatedAt.UnixMilli(),
		score, comment, at)
	return createError("conversation "+c.Tenant+"/"+c.ID, "tenant "+c.Tenant, err)
}

// invitedJSON is the stored form of Conversation.Invited, a JSON array.
func invitedJSON(ids []string) string {
	b, _ := json.Marshal(nonNil(ids)) // a []string always encodes
	return string(b)
}

// queuedAtMS is the stored form of Conversation.QueuedAt: NULL for the zero
// time, which has no sensible millisecond count.
func queuedAtMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// ratingColumns are the stored form of Conversation.Rating: a NULL score
// and time for none.
func ratingColumns(r *engine.Rating) (score any, comment string, at any) {
	if r == nil {
		return nil, "", nil
	}
	return r.Score, r.Comment, r.At.UnixMilli()
}

// createError maps the error of an INSERT of a new record named what whose
// parent is named parent.
func createError(what, parent string, err error) error {
	switch {
	case err == nil:
		return nil
	case isUniqueViolation(err):
		return fmt.Errorf("sqlite: create %s: %w", what, engine.ErrExists)
	case isForeignKeyViolation(err):
		return fmt.Errorf("sqlite: create %s: %s: %w", what, parent, engine.ErrNotFound)
	default:
		return fmt.Errorf("sqlite: create %s: %w", what, err)
	}
}

// Conversation returns one conversation of the tenant (engine.ErrNotFound).
func (s *Store) Conversation(ctx context.Context, tenant, id string) (engine.Conversation, error) {
	if s.isClosed.Load() {
		return engine.Conversation{}, engine.ErrClosed
	}
	c, err := scanConversation(s.rq.conversation.QueryRowContext(ctx, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return engine.Conversation{}, fmt.Errorf("sqlite: conversation %s/%s: %w", tenant, id, engine.ErrNotFound)
	}
	if err != nil {
		return engine.Conversation{}, s.readErr("conversation", err)
	}
	return c, nil
}

// scanConversation scans convColumns. A conversation nobody was invited to
// has nil Invited.
func scanConversation(row interface{ Scan(...any) error }) (engine.Conversation, error) {
	var c engine.Conversation
	var invited, comment string
	var queued, score, rated sql.NullInt64
	var created, updated int64
	if err := row.Scan(&c.Tenant, &c.ID, &c.UserID, &c.State, &c.AgentID, &invited, &c.Group, &c.Priority, &queued,
		&created, &updated, &score, &comment, &rated); err != nil {
		return engine.Conversation{}, err
	}
	if score.Valid {
		c.Rating = &engine.Rating{Score: int(score.Int64), Comment: comment, At: timeOf(rated.Int64)}
	}
	if err := json.Unmarshal([]byte(invited), &c.Invited); err != nil {
		return engine.Conversation{}, fmt.Errorf("conversation %s/%s invited: %w", c.Tenant, c.ID, err)
	}
	if len(c.Invited) == 0 {
		c.Invited = nil
	}
	if queued.Valid {
		c.QueuedAt = timeOf(queued.Int64)
	}
	c.CreatedAt, c.UpdatedAt = timeOf(created), timeOf(updated)
	return c, nil
}

// defaultListLimit is ConversationQuery's documented "0 means 50".
const defaultListLimit = 50

// ListConversations returns the tenant's conversations, newest first
// (ties by id, descending). A Limit <= 0 means 50.
func (s *Store) ListConversations(ctx context.Context, tenant string, q engine.ConversationQuery) ([]engine.Conversation, error) {
	if s.isClosed.Load() {
		return nil, engine.ErrClosed
	}
	var f listFilter
	args := []any{tenant}
	if q.InvitedID != "" {
		f |= listByInvited
		args = append(args, q.InvitedID)
	}
	if q.UserID != "" {
		f |= listByUser
		args = append(args, q.UserID)
	}
	if q.AgentID != "" {
		f |= listByAgent
		args = append(args, q.AgentID)
	}
	if q.Group != "" {
		f |= listByGroup
		args = append(args, q.Group)
	}
	if q.State != "" {
		f |= listByState
		args = append(args, string(q.State))
	}
	if !q.Before.IsZero() {
		f |= listBefore
		args = append(args, q.Before.UnixMilli())
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	args = append(args, limit)

	rows, err := s.rq.list[f].QueryContext(ctx, args...)
	if err != nil {
		return nil, s.readErr("list conversations", err)
	}
	defer rows.Close()
	var out []engine.Conversation
	for rows.Next() {
		c, err := scanConversation(rows)
		if err != nil {
			return nil, s.readErr("list conversations", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("list conversations", err)
	}
	return out, nil
}

type setReadPointerOp struct {
	opHeader
	tenant, conv string
	p            engine.Party
	seq          int64 // in: the requested seq; out: the stored value
}

// SetReadPointer moves p's read pointer in the conversation forward to seq
// and returns its value afterwards; it never moves backwards. An unknown
// conversation is engine.ErrNotFound.
func (s *Store) SetReadPointer(ctx context.Context, tenant, conv string, p engine.Party, seq int64) (int64, error) {
	if seq < 0 {
		return 0, fmt.Errorf("sqlite: set read pointer: negative seq %d", seq)
	}
	o := &setReadPointerOp{opHeader: newHeader(ctx, storemetrics.OpSetReadPointer), tenant: tenant, conv: conv, p: p, seq: seq}
	if err := s.submit(ctx, o); err != nil {
		return 0, err
	}
	if o.err != nil {
		return 0, o.err
	}
	return o.seq, nil
}

func (o *setReadPointerOp) apply(w *writer) error {
	err := w.st.upsertReadPt.QueryRowContext(bg, o.tenant, o.conv, string(o.p.Role), o.p.ID, o.seq).Scan(&o.seq)
	switch {
	case err == nil:
		return nil
	case isForeignKeyViolation(err):
		return fmt.Errorf("sqlite: set read pointer: conversation %s/%s: %w", o.tenant, o.conv, engine.ErrNotFound)
	default:
		return fmt.Errorf("sqlite: set read pointer %s/%s %s: %w", o.tenant, o.conv, o.p, err)
	}
}

// ReadPointers returns every participant's read pointer, ordered by role
// and id. An unknown conversation is engine.ErrNotFound.
func (s *Store) ReadPointers(ctx context.Context, tenant, conv string) ([]engine.ReadPointer, error) {
	if s.isClosed.Load() {
		return nil, engine.ErrClosed
	}
	rows, err := s.rq.readPointers.QueryContext(ctx, tenant, conv)
	if err != nil {
		return nil, s.readErr("read pointers", err)
	}
	defer rows.Close()
	found := false
	var out []engine.ReadPointer
	for rows.Next() {
		found = true
		var role, id sql.NullString
		var seq sql.NullInt64
		if err := rows.Scan(&role, &id, &seq); err != nil {
			return nil, s.readErr("read pointers", err)
		}
		if seq.Valid {
			out = append(out, engine.ReadPointer{Party: engine.Party{Role: engine.Role(role.String), ID: id.String}, Seq: seq.Int64})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("read pointers", err)
	}
	if !found {
		return nil, fmt.Errorf("sqlite: conversation %s/%s: %w", tenant, conv, engine.ErrNotFound)
	}
	return out, nil
}
