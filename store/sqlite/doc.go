// Package sqlite is Kefu's embedded store: engine.Store on one SQLite file
// (pure Go, modernc.org/sqlite), for a single node with no setup.
//
// # Durability and ordering
//
// The file runs in WAL mode with synchronous=FULL: a write call returns only
// after its transaction is fsynced, so the conversation actor may ack a
// message as soon as Append returns (DESIGN.md §4). Unique keys enforce the
// other message invariants: (tenant, conv, seq) gives one total order per
// conversation and (tenant, conv, client_msg_id) makes a resend a
// *engine.DuplicateError carrying the original seq. Foreign keys tie
// messages, read pointers, notes and timers to their conversation, and
// conversations, staff and the other per-tenant records to their tenant, so
// writing under an unknown parent is engine.ErrNotFound. Every table is keyed by tenant first and every query
// filters by it.
//
// The audit log (table audit_log) is append-only in the database itself:
// triggers abort any UPDATE or DELETE of it, and an INSERT OR REPLACE of an
// existing entry, whoever runs it. Only dropping the triggers (which needs
// write access to the file) gets past them.
//
// # Concurrency contract
//
// Store's methods are safe for concurrent use. Inside, state is owned as
// follows:
//
//   - The writer goroutine (started by Open, ended by Close) owns the one
//     write connection, its prepared statements and the metrics. Every write
//     method builds an op, sends it on a buffered channel and blocks until
//     the writer reports the op committed, or until the caller's ctx ends.
//   - The writer commits in groups: it takes the first queued op, drains
//     whatever else is queued (up to Config.MaxBatch) and runs them all in
//     one transaction, so one fsync serves every caller of the batch, across
//     conversations. Each op runs inside its own SAVEPOINT: a failing op
//     (a constraint error) rolls back only itself. Appends skip the
//     savepoint: a failed INSERT is undone by SQLite alone and the rows
//     stored before it are kept, which is Append's contract; an append
//     failing otherwise than on a constraint fails the whole batch. If
//     COMMIT fails, every op of the batch gets the error and nothing of it
//     is stored.
//   - The writer never passes a caller's ctx to SQLite: interrupting one
//     statement would roll back the whole shared transaction. It checks the
//     ctx before the op's turn instead and skips the op if it has ended. A
//     caller whose ctx ends after its op started gets ctx.Err() and an
//     unknown outcome; resending an Append then reports a duplicate.
//   - Reads go to a separate pool of query_only connections
//     (Config.ReadConns). WAL lets them run concurrently with each other and
//     with the writer; each read sees the last committed state, which
//     includes every write whose call has returned.
//   - The checkpointer goroutine (started by Open, stopped by Close before
//     the databases close) owns a third connection and runs a PASSIVE WAL
//     checkpoint every 100 ms, so commits do not copy the WAL into the
//     database themselves (that stalled a commit for up to 240 ms). A
//     PASSIVE checkpoint blocks neither the writer nor the readers.
//   - Store.mu orders senders against Close: senders hold it shared while
//     they check for closure and send, Close holds it exclusively while it
//     marks the store closed and closes the channel. The writer then drains
//     the channel, commits everything that was queued and exits before Close
//     closes the databases. After Close every method returns
//     engine.ErrClosed.
package sqlite
