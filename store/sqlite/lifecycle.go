package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

type updateConversationOp struct {
	opHeader
	c  engine.Conversation
	ev engine.ConvEvent
}

// UpdateConversation stores c's mutable fields (state, agent, invited,
// group, priority, queued at, UpdatedAt, rating) and appends ev, in one savepoint
// of the group commit: both land or neither.
func (s *Store) UpdateConversation(ctx context.Context, c engine.Conversation, ev engine.ConvEvent) error {
	if c.Tenant == "" || c.ID == "" {
		return errors.New("sqlite: update conversation: tenant and id are required")
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = s.clock.Now()
	}
	if ev.At.IsZero() {
		ev.At = c.UpdatedAt
	}
	o := &updateConversationOp{opHeader: newHeader(ctx, storemetrics.OpUpdateConversation), c: c, ev: ev}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	return o.err
}

func (o *updateConversationOp) apply(w *writer) error {
	c, ev := o.c, o.ev
	score, comment, at := ratingColumns(c.Rating)
	res, err := w.st.updateConversation.ExecContext(bg, string(c.State), c.AgentID, invitedJSON(c.Invited), c.Group,
		c.Priority, queuedAtMS(c.QueuedAt), c.UpdatedAt.UnixMilli(), score, comment, at, c.Tenant, c.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update conversation %s/%s: %w", c.Tenant, c.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: update conversation %s/%s: %w", c.Tenant, c.ID, engine.ErrNotFound)
	}
	_, err = w.st.insertEvent.ExecContext(bg, c.Tenant, c.ID, string(ev.Type), string(ev.From), string(ev.To),
		string(ev.By.Role), ev.By.ID, ev.Reason, ev.Agent, ev.Group, ev.Note, ev.At.UnixMilli(), ev.Score)
	if err != nil {
		return fmt.Errorf("sqlite: record event of %s/%s: %w", c.Tenant, c.ID, err)
	}
	return nil
}

// Events returns the conversation's lifecycle events, oldest first; none
// for an unknown conversation.
func (s *Store) Events(ctx context.Context, tenant, conv string) ([]engine.ConvEvent, error) {
	if s.isClosed.Load() {
		return nil, engine.ErrClosed
	}
	rows, err := s.rq.events.QueryContext(ctx, tenant, conv)
	if err != nil {
		return nil, s.readErr("events", err)
	}
	defer rows.Close()
	var out []engine.ConvEvent
	for rows.Next() {
		ev := engine.ConvEvent{Tenant: tenant, Conv: conv}
		var at int64
		if err := rows.Scan(&ev.Type, &ev.From, &ev.To, &ev.By.Role, &ev.By.ID, &ev.Reason, &ev.Agent, &ev.Group, &ev.Note, &at, &ev.Score); err != nil {
			return nil, s.readErr("events", err)
		}
		ev.At = timeOf(at)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("events", err)
	}
	return out, nil
}

type putFAQOp struct {
	opHeader
	tenant  string
	entries []engine.FAQEntry
}

// PutFAQ creates or replaces entries by id, all or none.
func (s *Store) PutFAQ(ctx context.Context, tenant string, entries []engine.FAQEntry) error {
	if tenant == "" {
		return errors.New("sqlite: put faq: tenant is required")
	}
	o := &putFAQOp{opHeader: newHeader(ctx, storemetrics.OpPutFAQ), tenant: tenant, entries: entries}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	return o.err
}

func (o *putFAQOp) apply(w *writer) error {
	for _, e := range o.entries {
		similar, _ := json.Marshal(nonNil(e.Similar))
		tags, _ := json.Marshal(nonNil(e.Tags))
		_, err := w.st.upsertFAQ.ExecContext(bg, o.tenant, e.ID, e.Category, e.Question, string(similar),
			e.Answer, string(tags), e.Enabled, e.UpdatedAt.UnixMilli(), e.Version)
		if err != nil {
			if isForeignKeyViolation(err) {
				return fmt.Errorf("sqlite: put faq: tenant %s: %w", o.tenant, engine.ErrNotFound)
			}
			return fmt.Errorf("sqlite: put faq %s/%s: %w", o.tenant, e.ID, err)
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

type deleteFAQOp struct {
	opHeader
	tenant, id string
}

// DeleteFAQ removes one entry (engine.ErrNotFound if absent).
func (s *Store) DeleteFAQ(ctx context.Context, tenant, id string) error {
	o := &deleteFAQOp{opHeader: newHeader(ctx, storemetrics.OpDeleteFAQ), tenant: tenant, id: id}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	return o.err
}

func (o *deleteFAQOp) apply(w *writer) error {
	res, err := w.st.deleteFAQ.ExecContext(bg, o.tenant, o.id)
	if err != nil {
		return fmt.Errorf("sqlite: delete faq %s/%s: %w", o.tenant, o.id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: delete faq %s/%s: %w", o.tenant, o.id, engine.ErrNotFound)
	}
	return nil
}

// FAQEntries returns every entry of the tenant, by id.
func (s *Store) FAQEntries(ctx context.Context, tenant string) ([]engine.FAQEntry, error) {
	if s.isClosed.Load() {
		return nil, engine.ErrClosed
	}
	rows, err := s.rq.faqEntries.QueryContext(ctx, tenant)
	if err != nil {
		return nil, s.readErr("faq entries", err)
	}
	defer rows.Close()
	var out []engine.FAQEntry
	for rows.Next() {
		var e engine.FAQEntry
		var similar, tags string
		var updated int64
		if err := rows.Scan(&e.ID, &e.Category, &e.Question, &similar, &e.Answer, &tags, &e.Enabled, &updated, &e.Version); err != nil {
			return nil, s.readErr("faq entries", err)
		}
		if err := json.Unmarshal([]byte(similar), &e.Similar); err != nil {
			return nil, fmt.Errorf("sqlite: faq %s/%s similar: %w", tenant, e.ID, err)
		}
		if err := json.Unmarshal([]byte(tags), &e.Tags); err != nil {
			return nil, fmt.Errorf("sqlite: faq %s/%s tags: %w", tenant, e.ID, err)
		}
		e.UpdatedAt = timeOf(updated)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("faq entries", err)
	}
	return out, nil
}
