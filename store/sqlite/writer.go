package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

// op is one write request queued for the writer goroutine. The caller fills
// in the request, sends it, and reads the result fields only after done is
// closed; the writer touches the op only between receiving it and closing
// done. That channel handoff is the op's only synchronisation.
type op interface {
	header() *opHeader
	// apply runs the op inside the batch transaction, within the op's own
	// savepoint.
	apply(w *writer) error
}

type opHeader struct {
	kind storemetrics.Op
	ctx  context.Context // the caller's; checked before the op runs, never passed to SQLite
	done chan struct{}
	err  error
	// noSavepoint: the op runs without a savepoint of its own. A failed
	// statement is undone by SQLite's statement-level abort, so an op of
	// one statement needs none, and Append keeps the prefix it stored
	// before a constraint error. Any other error fails the whole batch.
	noSavepoint bool
}

func (h *opHeader) header() *opHeader { return h }

func newHeader(ctx context.Context, kind storemetrics.Op) opHeader {
	return opHeader{kind: kind, ctx: ctx, done: make(chan struct{})}
}

// writeStmts are the statements prepared on the writer's connection.
type writeStmts struct {
	begin, commit, rollback          *sql.Stmt
	savepoint, release, rollbackTo   *sql.Stmt
	insertMessage, seqByClientID     *sql.Stmt
	insertConversation, upsertReadPt *sql.Stmt
	insertTenant, insertStaff        *sql.Stmt
	insertSetting, settingValue      *sql.Stmt
	updateConversation, insertEvent  *sql.Stmt
	upsertFAQ, deleteFAQ             *sql.Stmt
	upsertAgentProfile, upsertGroup  *sql.Stmt
	deleteGroup, upsertSettings      *sql.Stmt
	upsertCustomer, insertNote       *sql.Stmt
	upsertTimer, deleteTimer         *sql.Stmt
	updateStaff, upsertSession       *sql.Stmt
	pruneSessions, upsertLoginState  *sql.Stmt
	upsertTenantCredentials          *sql.Stmt
	insertAudit                      *sql.Stmt
	insertDataKey, dataKey           *sql.Stmt
	rewrapDataKey                    *sql.Stmt
	upsertCanned, deleteCanned       *sql.Stmt
}

func prepareWriteStmts(ctx context.Context, conn *sql.Conn) (*writeStmts, error) {
	var s writeStmts
	list := []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.begin, sqlBegin}, {&s.commit, sqlCommit}, {&s.rollback, sqlRollback},
		{&s.savepoint, sqlSavepoint}, {&s.release, sqlRelease}, {&s.rollbackTo, sqlRollbackToS},
		{&s.insertMessage, sqlInsertMessage}, {&s.seqByClientID, sqlSeqByClientID},
		{&s.insertConversation, sqlInsertConversation}, {&s.upsertReadPt, sqlUpsertReadPointer},
		{&s.insertTenant, sqlInsertTenant}, {&s.insertStaff, sqlInsertStaff},
		{&s.insertSetting, sqlInsertSettingIfAbsent}, {&s.settingValue, sqlSettingValue},
		{&s.updateConversation, sqlUpdateConversation}, {&s.insertEvent, sqlInsertEvent},
		{&s.upsertFAQ, sqlUpsertFAQ}, {&s.deleteFAQ, sqlDeleteFAQ},
		{&s.upsertAgentProfile, sqlUpsertAgentProfile}, {&s.upsertGroup, sqlUpsertGroup},
		{&s.deleteGroup, sqlDeleteGroup}, {&s.upsertSettings, sqlUpsertTenantSettings},
		{&s.upsertCustomer, sqlUpsertCustomer}, {&s.insertNote, sqlInsertNote},
		{&s.upsertTimer, sqlUpsertTimer}, {&s.deleteTimer, sqlDeleteTimer},
		{&s.updateStaff, sqlUpdateStaff}, {&s.upsertSession, sqlUpsertSession},
		{&s.pruneSessions, sqlPruneSessions}, {&s.upsertLoginState, sqlUpsertLoginState},
		{&s.upsertTenantCredentials, sqlUpsertTenantCredentials},
		{&s.insertAudit, sqlInsertAudit},
		{&s.insertDataKey, sqlInsertDataKeyIfAbsent}, {&s.dataKey, sqlDataKey},
		{&s.rewrapDataKey, sqlRewrapDataKey},
		{&s.upsertCanned, sqlUpsertCanned}, {&s.deleteCanned, sqlDeleteCanned},
	}
	for _, p := range list {
		st, err := conn.PrepareContext(ctx, p.query)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("sqlite: prepare %q: %w", p.query, err)
		}
		*p.dst = st
	}
	return &s, nil
}

func (s *writeStmts) close() {
	for _, st := range []*sql.Stmt{
		s.begin, s.commit, s.rollback, s.savepoint, s.release, s.rollbackTo,
		s.insertMessage, s.seqByClientID, s.insertConversation, s.upsertReadPt,
		s.insertTenant, s.insertStaff, s.insertSetting, s.settingValue,
		s.updateConversation, s.insertEvent, s.upsertFAQ, s.deleteFAQ,
		s.upsertAgentProfile, s.upsertGroup, s.deleteGroup, s.upsertSettings,
		s.upsertCustomer, s.insertNote, s.upsertTimer, s.deleteTimer,
		s.updateStaff, s.upsertSession, s.pruneSessions, s.upsertLoginState, s.upsertTenantCredentials,
		s.insertAudit,
		s.insertDataKey, s.dataKey, s.rewrapDataKey, s.upsertCanned, s.deleteCanned,
	} {
		if st != nil {
			st.Close()
		}
	}
}

// writer is the single goroutine that owns the write connection. It takes
// ops from a channel and commits them in groups: one transaction and one
// fsync for everything queued, across conversations and tenants.
type writer struct {
	conn     *sql.Conn
	st       *writeStmts
	ops      <-chan op
	maxBatch int
	log      *slog.Logger
	metrics  *metrics
	hooks    testHooks
	done     chan struct{} // closed when run returns
}

// bg is the context of every statement the writer runs. Never a caller's:
// modernc interrupts a statement when its context ends, and an interrupted
// write inside a transaction makes SQLite roll back the whole transaction,
// which would fail every other op of the batch.
var bg = context.Background()

// run is the writer goroutine. It returns when ops is closed and drained, so
// every op queued before Close is committed.
func (w *writer) run() {
	defer close(w.done)
	batch := make([]op, 0, w.maxBatch)
	for {
		first, ok := <-w.ops
		if !ok {
			return
		}
		batch = w.fill(append(batch[:0], first))
		w.commitBatch(batch)
		clear(batch) // let the ops be collected
	}
}

// fill adds whatever is queued to batch, up to maxBatch, without waiting:
// the ops that queued up while the previous batch was committing ride along
// in this one. That is the group commit; a lone caller never waits for
// company. (Yielding once to let just-woken callers queue again grew
// batches from ~98 to ~120 ops under 256 appenders but did not change
// appends/s, since the writer is CPU-bound then; so it does not.)
func (w *writer) fill(batch []op) []op {
	for len(batch) < w.maxBatch {
		select {
		case o, ok := <-w.ops:
			if !ok {
				return batch // run sees the close on its next receive
			}
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// commitBatch runs batch in one transaction and reports each op's result.
func (w *writer) commitBatch(batch []op) {
	start := time.Now()
	err := w.runBatch(batch)
	elapsed := time.Since(start)
	if err != nil {
		w.log.Error("sqlite: group commit failed", "ops", len(batch), "err", err)
		for _, o := range batch {
			o.header().err = err
			if a, ok := o.(*appendOp); ok {
				a.n = 0 // the prefix it stored was rolled back with the rest
			}
		}
	} else {
		w.metrics.CommitSeconds.Observe(elapsed.Seconds())
	}
	w.metrics.BatchOps.Observe(float64(len(batch)))
	for _, o := range batch {
		h := o.header()
		w.metrics.Ops[h.kind].Inc()
		close(h.done)
	}
}

// runBatch applies every op between BEGIN and COMMIT, each within its own
// savepoint so that a failing op (a constraint error) rolls back only itself.
// An error return means nothing of the batch is stored.
func (w *writer) runBatch(batch []op) error {
	if _, err := w.st.begin.ExecContext(bg); err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if w.hooks.inTx != nil {
		w.hooks.inTx(w.conn, len(batch))
	}
	for _, o := range batch {
		h := o.header()
		if err := h.ctx.Err(); err != nil {
			h.err = err // the caller gave up before its turn: skip it
			continue
		}
		if h.noSavepoint {
			// Nothing to roll back: SQLite undoes a failed statement by
			// itself and the op keeps what it stored before. A savepoint
			// would only cost two statements per op, which under load is
			// a good part of the writer's time.
			h.err = o.apply(w)
			if h.err != nil && !isRefusal(h.err) {
				// Not a constraint: SQLite may have rolled back the whole
				// transaction (I/O error, disk full). Fail the batch
				// rather than guess; no caller of it is told "stored".
				return w.abort(fmt.Errorf("sqlite: %w", h.err))
			}
			continue
		}
		if _, err := w.st.savepoint.ExecContext(bg); err != nil {
			return w.abort(fmt.Errorf("sqlite: savepoint: %w", err))
		}
		h.err = o.apply(w)
		if h.err != nil {
			if _, err := w.st.rollbackTo.ExecContext(bg); err != nil {
				// SQLite rolled back the whole transaction (I/O error,
				// disk full): the earlier ops are gone too.
				return w.abort(fmt.Errorf("sqlite: rollback to savepoint after %w: %w", h.err, err))
			}
		}
		if _, err := w.st.release.ExecContext(bg); err != nil {
			return w.abort(fmt.Errorf("sqlite: release savepoint: %w", err))
		}
	}
	if _, err := w.st.commit.ExecContext(bg); err != nil {
		return w.abort(fmt.Errorf("sqlite: commit: %w", err))
	}
	return nil
}

// abort ends a failed transaction so the connection can take the next batch.
func (w *writer) abort(err error) error {
	// This fails harmlessly when SQLite has already rolled back.
	_, _ = w.st.rollback.ExecContext(bg)
	return err
}

// isRefusal reports whether err is an op refused by a constraint, after
// which the transaction goes on: a duplicate, a seq taken, an unknown
// parent.
func isRefusal(err error) bool {
	_, dup := errors.AsType[*engine.DuplicateError](err)
	return dup || errors.Is(err, engine.ErrSeqConflict) || errors.Is(err, engine.ErrNotFound)
}

// sqliteCode returns the extended SQLite result code of err, or 0.
func sqliteCode(err error) int {
	if e, ok := errors.AsType[*sqlite.Error](err); ok {
		return e.Code()
	}
	return 0
}

func isUniqueViolation(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

func isForeignKeyViolation(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// testHooks let tests reach into the writer goroutine. All nil in production.
type testHooks struct {
	// inTx runs on the writer goroutine right after BEGIN of each batch.
	inTx func(conn *sql.Conn, batchLen int)
}
