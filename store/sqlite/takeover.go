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

// Agent profiles, skill groups, tenant settings and customers are small and
// always read whole: each is one row holding the engine type as JSON.

// putDocOp creates or replaces one row of a table of JSON documents.
type putDocOp struct {
	opHeader
	stmt   func(*writeStmts) *sql.Stmt
	what   string // the record, for errors
	tenant string
	args   []any // the row's key, then the document
}

func (o *putDocOp) apply(w *writer) error {
	_, err := o.stmt(w.st).ExecContext(bg, o.args...)
	switch {
	case err == nil:
		return nil
	case isForeignKeyViolation(err):
		return fmt.Errorf("sqlite: put %s: tenant %s: %w", o.what, o.tenant, engine.ErrNotFound)
	case isUniqueViolation(err): // an index besides the key the upsert replaces by
		return fmt.Errorf("sqlite: put %s: %w", o.what, engine.ErrExists)
	default:
		return fmt.Errorf("sqlite: put %s: %w", o.what, err)
	}
}

// putDoc stores v as JSON under key with stmt, whose arguments are the key
// and then the document. An unknown tenant is engine.ErrNotFound; a
// document another unique index refuses is engine.ErrExists.
func (s *Store) putDoc(ctx context.Context, kind storemetrics.Op, stmt func(*writeStmts) *sql.Stmt,
	what, tenant string, v any, key ...any) error {
	doc, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("sqlite: put %s: %w", what, err)
	}
	o := &putDocOp{opHeader: newHeader(ctx, kind), stmt: stmt, what: what, tenant: tenant, args: append(key, string(doc))}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	return o.err
}

// readDoc decodes into v the document st finds (engine.ErrNotFound).
func (s *Store) readDoc(ctx context.Context, st *sql.Stmt, what string, v any, args ...any) error {
	if s.isClosed.Load() {
		return engine.ErrClosed
	}
	var doc string
	err := st.QueryRowContext(ctx, args...).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", what, engine.ErrNotFound)
	}
	if err != nil {
		return s.readErr(what, err)
	}
	if err := json.Unmarshal([]byte(doc), v); err != nil {
		return fmt.Errorf("sqlite: decode %s: %w", what, err)
	}
	return nil
}

// readDocs decodes every document st finds, in the query's order.
func readDocs[T any](ctx context.Context, s *Store, st *sql.Stmt, what string, args ...any) ([]T, error) {
	if s.isClosed.Load() {
		return nil, engine.ErrClosed
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, s.readErr(what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, s.readErr(what, err)
		}
		var v T
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			return nil, fmt.Errorf("sqlite: decode %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr(what, err)
	}
	return out, nil
}

// stamped returns t in UTC, or the store's clock's time if t is zero. A
// document keeps its times as given, so they are made UTC first, as every
// other read returns them.
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
		return errors.New("sqlite: put agent profile: tenant and id are required")
	}
	p.UpdatedAt = s.stamped(p.UpdatedAt)
	return s.putDoc(ctx, storemetrics.OpPutAgentProfile, func(w *writeStmts) *sql.Stmt { return w.upsertAgentProfile },
		"agent profile "+p.Tenant+"/"+p.ID, p.Tenant, p, p.Tenant, p.ID)
}

// AgentProfile returns one profile (engine.ErrNotFound).
func (s *Store) AgentProfile(ctx context.Context, tenant, id string) (engine.AgentProfile, error) {
	var p engine.AgentProfile
	if err := s.readDoc(ctx, s.rq.agentProfile, "agent profile "+tenant+"/"+id, &p, tenant, id); err != nil {
		return engine.AgentProfile{}, err
	}
	return p, nil
}

// AgentProfiles returns the tenant's profiles, by id.
func (s *Store) AgentProfiles(ctx context.Context, tenant string) ([]engine.AgentProfile, error) {
	return readDocs[engine.AgentProfile](ctx, s, s.rq.agentProfiles, "agent profiles of "+tenant, tenant)
}

// PutGroup creates or replaces a skill group. A zero UpdatedAt is stamped
// with the store's clock; an unknown tenant is engine.ErrNotFound.
func (s *Store) PutGroup(ctx context.Context, g engine.SkillGroup) error {
	if g.Tenant == "" || g.ID == "" {
		return errors.New("sqlite: put group: tenant and id are required")
	}
	g.UpdatedAt = s.stamped(g.UpdatedAt)
	return s.putDoc(ctx, storemetrics.OpPutGroup, func(w *writeStmts) *sql.Stmt { return w.upsertGroup },
		"group "+g.Tenant+"/"+g.ID, g.Tenant, g, g.Tenant, g.ID)
}

// DeleteGroup removes a group (engine.ErrNotFound if absent).
func (s *Store) DeleteGroup(ctx context.Context, tenant, id string) error {
	return s.deleteRows(ctx, storemetrics.OpDeleteGroup, func(w *writeStmts) *sql.Stmt { return w.deleteGroup },
		"group "+tenant+"/"+id, true, tenant, id)
}

// Groups returns the tenant's groups, by id.
func (s *Store) Groups(ctx context.Context, tenant string) ([]engine.SkillGroup, error) {
	return readDocs[engine.SkillGroup](ctx, s, s.rq.groups, "groups of "+tenant, tenant)
}

// PutTenantSettings creates or replaces the tenant's settings, as given
// (defaults are the reader's business). A zero UpdatedAt is stamped with
// the store's clock; an unknown tenant is engine.ErrNotFound.
func (s *Store) PutTenantSettings(ctx context.Context, ts engine.TenantSettings) error {
	if ts.Tenant == "" {
		return errors.New("sqlite: put tenant settings: tenant is required")
	}
	ts.UpdatedAt = s.stamped(ts.UpdatedAt)
	return s.putDoc(ctx, storemetrics.OpPutTenantSettings, func(w *writeStmts) *sql.Stmt { return w.upsertSettings },
		"settings of "+ts.Tenant, ts.Tenant, ts, ts.Tenant)
}

// TenantSettings returns the tenant's settings as stored (engine.ErrNotFound
// if never set).
func (s *Store) TenantSettings(ctx context.Context, tenant string) (engine.TenantSettings, error) {
	var ts engine.TenantSettings
	if err := s.readDoc(ctx, s.rq.tenantSettings, "settings of "+tenant, &ts, tenant); err != nil {
		return engine.TenantSettings{}, err
	}
	return ts, nil
}

// PutCustomer creates or replaces a customer's profile. A zero UpdatedAt is
// stamped with the store's clock; an unknown tenant is engine.ErrNotFound.
// Tags and Attrs come back as given, nil or empty.
func (s *Store) PutCustomer(ctx context.Context, c engine.Customer) error {
	if c.Tenant == "" || c.ID == "" {
		return errors.New("sqlite: put customer: tenant and id are required")
	}
	c.UpdatedAt, c.LastPurchaseAt = s.stamped(c.UpdatedAt), c.LastPurchaseAt.UTC()
	return s.putDoc(ctx, storemetrics.OpPutCustomer, func(w *writeStmts) *sql.Stmt { return w.upsertCustomer },
		"customer "+c.Tenant+"/"+c.ID, c.Tenant, c, c.Tenant, c.ID)
}

// Customer returns one customer's profile (engine.ErrNotFound).
func (s *Store) Customer(ctx context.Context, tenant, id string) (engine.Customer, error) {
	var c engine.Customer
	if err := s.readDoc(ctx, s.rq.customer, "customer "+tenant+"/"+id, &c, tenant, id); err != nil {
		return engine.Customer{}, err
	}
	return c, nil
}

// deleteOp deletes what its statement matches.
type deleteOp struct {
	opHeader
	stmt      func(*writeStmts) *sql.Stmt
	what      string
	mustExist bool // deleting nothing is engine.ErrNotFound
	args      []any
}

func (o *deleteOp) apply(w *writer) error {
	res, err := o.stmt(w.st).ExecContext(bg, o.args...)
	if err != nil {
		return fmt.Errorf("sqlite: delete %s: %w", o.what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 && o.mustExist {
		return fmt.Errorf("sqlite: delete %s: %w", o.what, engine.ErrNotFound)
	}
	return nil
}

// deleteRows runs a delete statement with args on the writer.
func (s *Store) deleteRows(ctx context.Context, kind storemetrics.Op, stmt func(*writeStmts) *sql.Stmt,
	what string, mustExist bool, args ...any) error {
	o := &deleteOp{opHeader: newHeader(ctx, kind), stmt: stmt, what: what, mustExist: mustExist, args: args}
	o.noSavepoint = true // one statement
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	return o.err
}

type addNoteOp struct {
	opHeader
	n engine.Note
}

// AddNote stores a note: engine.ErrExists if the conversation has a note
// with its id, engine.ErrNotFound if the conversation does not exist. A
// zero CreatedAt is stamped with the store's clock.
func (s *Store) AddNote(ctx context.Context, n engine.Note) error {
	if n.Tenant == "" || n.Conv == "" || n.ID == "" {
		return errors.New("sqlite: add note: tenant, conversation and id are required")
	}
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.clock.Now()
	}
	o := &addNoteOp{opHeader: newHeader(ctx, storemetrics.OpAddNote), n: n}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	return o.err
}

func (o *addNoteOp) apply(w *writer) error {
	n := o.n
	_, err := w.st.insertNote.ExecContext(bg, n.Tenant, n.Conv, n.ID, string(n.Author.Role), n.Author.ID, n.Text,
		n.CreatedAt.UnixMilli())
	return createError("note "+n.Tenant+"/"+n.Conv+"/"+n.ID, "conversation "+n.Tenant+"/"+n.Conv, err)
}

// Notes returns a conversation's notes, oldest first (ties by id); none for
// an unknown conversation.
func (s *Store) Notes(ctx context.Context, tenant, conv string) ([]engine.Note, error) {
	if s.isClosed.Load() {
		return nil, engine.ErrClosed
	}
	rows, err := s.rq.notes.QueryContext(ctx, tenant, conv)
	if err != nil {
		return nil, s.readErr("notes", err)
	}
	defer rows.Close()
	var out []engine.Note
	for rows.Next() {
		n := engine.Note{Tenant: tenant, Conv: conv}
		var created int64
		if err := rows.Scan(&n.ID, &n.Author.Role, &n.Author.ID, &n.Text, &created); err != nil {
			return nil, s.readErr("notes", err)
		}
		n.CreatedAt = timeOf(created)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("notes", err)
	}
	return out, nil
}

type setTimersOp struct {
	opHeader
	tenant, conv string
	changes      []engine.TimerChange
}

// SetTimers applies changes to the conversation's timers in one
// transaction. Due times are kept to the millisecond. An unknown
// conversation is engine.ErrNotFound.
func (s *Store) SetTimers(ctx context.Context, tenant, conv string, changes ...engine.TimerChange) error {
	if tenant == "" || conv == "" {
		return errors.New("sqlite: set timers: tenant and conversation are required")
	}
	if err := engine.ValidateTimerChanges(changes); err != nil {
		return fmt.Errorf("sqlite: set timers: %w", err)
	}
	if len(changes) == 0 {
		return nil
	}
	o := &setTimersOp{opHeader: newHeader(ctx, storemetrics.OpSetTimers), tenant: tenant, conv: conv, changes: changes}
	o.noSavepoint = len(changes) == 1 // one statement
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	return o.err
}

func (o *setTimersOp) apply(w *writer) error { return applyTimers(w, o.tenant, o.conv, o.changes) }

// applyTimers runs the changes to a conversation's timers, in order.
func applyTimers(w *writer, tenant, conv string, changes []engine.TimerChange) error {
	for _, ch := range changes {
		var err error
		if ch.DueAt.IsZero() {
			_, err = w.st.deleteTimer.ExecContext(bg, tenant, conv, string(ch.Kind))
		} else {
			_, err = w.st.upsertTimer.ExecContext(bg, tenant, conv, string(ch.Kind), ch.DueAt.UnixMilli())
		}
		switch {
		case err == nil:
		case isForeignKeyViolation(err):
			return fmt.Errorf("sqlite: set timers: conversation %s/%s: %w", tenant, conv, engine.ErrNotFound)
		default:
			return fmt.Errorf("sqlite: set timer %s/%s %s: %w", tenant, conv, ch.Kind, err)
		}
	}
	return nil
}

// Timers returns the conversation's timers, by kind; none for an unknown
// conversation.
func (s *Store) Timers(ctx context.Context, tenant, conv string) ([]engine.Timer, error) {
	if s.isClosed.Load() {
		return nil, engine.ErrClosed
	}
	rows, err := s.rq.timers.QueryContext(ctx, tenant, conv)
	if err != nil {
		return nil, s.readErr("timers", err)
	}
	defer rows.Close()
	var out []engine.Timer
	for rows.Next() {
		t := engine.Timer{Tenant: tenant, Conv: conv}
		var due int64
		if err := rows.Scan(&t.Kind, &due); err != nil {
			return nil, s.readErr("timers", err)
		}
		t.DueAt = timeOf(due)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("timers", err)
	}
	return out, nil
}

// DueTimers returns up to limit timers of every tenant due at or before now
// (to the millisecond), earliest first. A limit <= 0 returns none.
func (s *Store) DueTimers(ctx context.Context, now time.Time, limit int) ([]engine.Timer, error) {
	if s.isClosed.Load() {
		return nil, engine.ErrClosed
	}
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.rq.dueTimers.QueryContext(ctx, now.UnixMilli(), limit)
	if err != nil {
		return nil, s.readErr("due timers", err)
	}
	defer rows.Close()
	var out []engine.Timer
	for rows.Next() {
		var t engine.Timer
		var due int64
		if err := rows.Scan(&t.Tenant, &t.Conv, &t.Kind, &due); err != nil {
			return nil, s.readErr("due timers", err)
		}
		t.DueAt = timeOf(due)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("due timers", err)
	}
	return out, nil
}
