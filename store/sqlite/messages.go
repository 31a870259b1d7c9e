package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

// msgRow is a message in its stored form, built by the caller's goroutine so
// the writer only binds and inserts.
type msgRow struct {
	seq       int64
	clientID  any // string, or nil for a message without one
	fromRole  string
	fromID    string
	bodyType  string
	body      string // engine.Body as JSON
	createdMS int64
}

type appendOp struct {
	opHeader
	tenant, conv string
	rows         []msgRow
	timers       []engine.TimerChange // applied once every row is stored
	n            int                  // result: leading rows stored
}

// Append stores msgs as documented on engine.MessageStore: all of one
// conversation with consecutive seqs; on the first failure it stops, keeps
// the stored prefix and returns its length with a *engine.DuplicateError,
// an error wrapping engine.ErrSeqConflict, or another error. A message with
// an empty ClientMsgID is stored without one and never counts as a
// duplicate. A zero CreatedAt is stamped with the store's clock. Appending
// to a conversation that does not exist returns engine.ErrNotFound. The
// timer changes are applied in the same transaction, after the messages,
// only if every message is stored.
func (s *Store) Append(ctx context.Context, msgs []engine.Message, timers ...engine.TimerChange) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	o := &appendOp{
		opHeader: newHeader(ctx, storemetrics.OpAppend),
		tenant:   msgs[0].Tenant,
		conv:     msgs[0].Conv,
		rows:     make([]msgRow, len(msgs)),
		timers:   timers,
	}
	o.noSavepoint = true // keeps the prefix stored before a refusal
	if o.tenant == "" || o.conv == "" {
		return 0, errors.New("sqlite: append: message without tenant or conversation")
	}
	if err := engine.ValidateTimerChanges(timers); err != nil {
		return 0, fmt.Errorf("sqlite: append: %w", err)
	}
	now := s.clock.Now()
	for i, m := range msgs {
		if m.Tenant != o.tenant || m.Conv != o.conv {
			return 0, fmt.Errorf("sqlite: append: message %d belongs to %s/%s, not %s/%s", i, m.Tenant, m.Conv, o.tenant, o.conv)
		}
		if m.Seq != msgs[0].Seq+int64(i) || m.Seq < 1 {
			return 0, fmt.Errorf("sqlite: append: message %d has seq %d, want %d (consecutive, from 1)", i, m.Seq, msgs[0].Seq+int64(i))
		}
		body, err := json.Marshal(m.Body)
		if err != nil {
			return 0, fmt.Errorf("sqlite: append: encode body: %w", err)
		}
		r := &o.rows[i]
		*r = msgRow{
			seq: m.Seq, fromRole: string(m.From.Role), fromID: m.From.ID,
			bodyType: string(m.Body.Type), body: string(body), createdMS: msOf(m.CreatedAt, now),
		}
		if m.ClientMsgID != "" {
			r.clientID = m.ClientMsgID
		}
	}
	if err := s.submit(ctx, o); err != nil {
		return 0, err
	}
	return o.n, o.err
}

func (o *appendOp) apply(w *writer) error {
	for i := range o.rows {
		r := &o.rows[i]
		_, err := w.st.insertMessage.ExecContext(bg,
			o.tenant, o.conv, r.seq, r.clientID, r.fromRole, r.fromID, r.bodyType, r.body, r.createdMS)
		if err != nil {
			// SQLite undid the failed INSERT alone; rows 0..i-1 stay.
			return o.insertError(w, r, err)
		}
		o.n++
	}
	// The messages' conversation exists (their foreign key held), so a
	// timer statement fails only as the database does, failing the batch.
	return applyTimers(w, o.tenant, o.conv, o.timers)
}

// insertError explains why r was not stored. A duplicate client_msg_id is
// checked first: when a racing activation stored this very message under
// another seq, both unique keys are hit, and the caller must learn the
// original's seq rather than retry under a new number.
func (o *appendOp) insertError(w *writer, r *msgRow, err error) error {
	switch {
	case isUniqueViolation(err):
		if r.clientID != nil {
			var seq, created int64
			var from engine.Party
			switch qerr := w.st.seqByClientID.QueryRowContext(bg, o.tenant, o.conv, r.clientID).Scan(&seq, &from.Role, &from.ID, &created); {
			case qerr == nil:
				return &engine.DuplicateError{ClientMsgID: r.clientID.(string), Seq: seq, From: from, CreatedAt: timeOf(created)}
			case !errors.Is(qerr, sql.ErrNoRows):
				return fmt.Errorf("sqlite: append %s/%s seq %d: look up client_msg_id: %w", o.tenant, o.conv, r.seq, qerr)
			}
		}
		return fmt.Errorf("sqlite: append %s/%s seq %d: %w", o.tenant, o.conv, r.seq, engine.ErrSeqConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("sqlite: append: conversation %s/%s: %w", o.tenant, o.conv, engine.ErrNotFound)
	default:
		return fmt.Errorf("sqlite: append %s/%s seq %d: %w", o.tenant, o.conv, r.seq, err)
	}
}

// Messages returns up to limit messages with seq > afterSeq, ascending. A
// limit <= 0 returns none. An unknown conversation is engine.ErrNotFound.
func (s *Store) Messages(ctx context.Context, tenant, conv string, afterSeq int64, limit int) ([]engine.Message, error) {
	if s.isClosed.Load() {
		return nil, engine.ErrClosed
	}
	if limit <= 0 {
		// Still answer ErrNotFound for an unknown conversation.
		_, err := s.LastSeq(ctx, tenant, conv)
		return nil, err
	}
	return s.queryMessages(ctx, s.rq.messagesAfter, tenant, conv, afterSeq, tenant, conv, limit)
}

// Recent returns the newest n messages, ascending. An n <= 0 returns none.
// An unknown conversation is engine.ErrNotFound.
func (s *Store) Recent(ctx context.Context, tenant, conv string, n int) ([]engine.Message, error) {
	if s.isClosed.Load() {
		return nil, engine.ErrClosed
	}
	if n <= 0 {
		_, err := s.LastSeq(ctx, tenant, conv)
		return nil, err
	}
	msgs, err := s.queryMessages(ctx, s.rq.messagesRecent, tenant, conv, tenant, conv, n)
	slices.Reverse(msgs) // the query reads newest first
	return msgs, err
}

// queryMessages runs one of the conversation-LEFT-JOIN-messages reads: no
// row means no such conversation, a row of NULLs an empty one.
func (s *Store) queryMessages(ctx context.Context, st *sql.Stmt, tenant, conv string, args ...any) ([]engine.Message, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, s.readErr("messages", err)
	}
	defer rows.Close()
	found := false
	var msgs []engine.Message
	for rows.Next() {
		found = true
		var seq sql.NullInt64
		var m engine.Message
		if err := scanMessage(rows, &seq, &m); err != nil {
			return nil, s.readErr("messages", err)
		}
		if !seq.Valid {
			continue // the conversation exists and has no such messages
		}
		m.Tenant, m.Conv, m.Seq = tenant, conv, seq.Int64
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("messages", err)
	}
	if !found {
		return nil, fmt.Errorf("sqlite: conversation %s/%s: %w", tenant, conv, engine.ErrNotFound)
	}
	return msgs, nil
}

// scanMessage scans msgColumns into m (all but Tenant, Conv and Seq). The
// columns may all be NULL (see queryMessages); then m is left partial.
func scanMessage(row interface{ Scan(...any) error }, seq *sql.NullInt64, m *engine.Message) error {
	var clientID, role, fromID, body sql.NullString
	var created sql.NullInt64
	if err := row.Scan(seq, &clientID, &role, &fromID, &body, &created); err != nil {
		return err
	}
	if !seq.Valid {
		return nil
	}
	m.ClientMsgID = clientID.String
	m.From = engine.Party{Role: engine.Role(role.String), ID: fromID.String}
	m.CreatedAt = timeOf(created.Int64)
	if err := json.Unmarshal([]byte(body.String), &m.Body); err != nil {
		return fmt.Errorf("decode body of seq %d: %w", seq.Int64, err)
	}
	return nil
}

// LastSeq returns the highest stored seq, 0 for an empty conversation and
// engine.ErrNotFound for an unknown one.
func (s *Store) LastSeq(ctx context.Context, tenant, conv string) (int64, error) {
	if s.isClosed.Load() {
		return 0, engine.ErrClosed
	}
	var seq int64
	err := s.rq.lastSeq.QueryRowContext(ctx, tenant, conv).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("sqlite: conversation %s/%s: %w", tenant, conv, engine.ErrNotFound)
	}
	if err != nil {
		return 0, s.readErr("last seq", err)
	}
	return seq, nil
}

// MessageByClientID finds a message by its client_msg_id (engine.ErrNotFound).
func (s *Store) MessageByClientID(ctx context.Context, tenant, conv, clientMsgID string) (engine.Message, error) {
	if s.isClosed.Load() {
		return engine.Message{}, engine.ErrClosed
	}
	var seq sql.NullInt64
	m := engine.Message{Tenant: tenant, Conv: conv}
	err := scanMessage(s.rq.messageByClientID.QueryRowContext(ctx, tenant, conv, clientMsgID), &seq, &m)
	if errors.Is(err, sql.ErrNoRows) {
		return engine.Message{}, fmt.Errorf("sqlite: message %s/%s client_msg_id %q: %w", tenant, conv, clientMsgID, engine.ErrNotFound)
	}
	if err != nil {
		return engine.Message{}, s.readErr("message by client id", err)
	}
	m.Seq = seq.Int64
	return m, nil
}
