// Package mongo is Kefu's production store: engine.Store on MongoDB
// (go.mongodb.org/mongo-driver/v2), required for a multi-node cluster. It
// passes the same conformance suite (store/storetest) as store/sqlite.
//
// # Durability and ordering
//
// Writes use write concern majority with journaling unless the URI or
// Config.WriteConcern says otherwise, and every read goes to the primary,
// so a read sees every write whose call has returned. A replica set is
// needed for majority writes (a one-member set will do).
//
// Unique indexes enforce the message invariants, as in SQLite: (tenant,
// conv, seq) gives one total order per conversation and (tenant, conv,
// client_msg_id) makes a resend a *engine.DuplicateError carrying the
// original seq. A message without a client_msg_id stores its seq, a number,
// in that field: numbers never equal the string ids clients send, so the
// index needs no partial filter (which FerretDB lacks). MongoDB has no
// foreign keys: writes under a conversation or tenant check that it exists
// first. Conversations and tenants are never deleted, so a check once
// passed stays true, and the store remembers the conversations it has seen.
//
// The audit log (collection audit_log) is only ever inserted into and
// read. MongoDB has no triggers to refuse an update or delete as SQLite
// does; a deployment that wants the server to enforce it gives Kefu's
// database user a role whose only actions on audit_log are find, insert
// and createIndex.
//
// The adapter needs no transactions, change streams, $text, TTL indexes,
// atomic $inc or $max, nor more than one accumulator per $group: FerretDB
// v1, which the tests run against, has none of them reliably.
//
// # Concurrency contract
//
// Store's methods are safe for concurrent use. Inside, state is owned as
// follows:
//
//   - The writer goroutine (started by Open, ended by Close) owns the
//     appends. Append sends an op on a buffered channel and blocks until the
//     writer reports it, or until the caller's ctx ends. The writer takes the
//     first queued op, drains whatever else is queued (up to
//     Config.MaxBatch ops) and inserts every message of the batch with one
//     ordered InsertMany: one round trip and one majority wait for all of
//     them, across conversations.
//   - Ordered means the server stops at the first refused message, so
//     nothing after it is stored, not even for a moment: an unordered insert
//     followed by deleting a call's later messages let a racing activation
//     read them and number after them, leaving a gap once they were deleted
//     (the conformance suite's racing writers caught it). The refused op
//     keeps its prefix; the other ops' messages after it go in the next
//     round, so extra rounds happen only when a message is refused. The
//     caller then classifies the refusal off the writer goroutine: if the
//     message's client_msg_id is stored, a *engine.DuplicateError with the
//     original seq, otherwise engine.ErrSeqConflict.
//   - A batch whose outcome is unknown (a network error, a timeout, a write
//     concern error) fails every op of it with n = 0; its messages may be
//     stored. A resend is then recognised as a duplicate and a renumbered
//     message meets a seq conflict, which is how the protocol resolves it.
//   - The writer never passes a caller's ctx to the driver; it checks the
//     ctx before the batch and skips the op if it has ended. The batch runs
//     under Config.BatchTimeout instead.
//   - Every other method runs on its caller's goroutine with the caller's
//     ctx; the driver's connection pool lets them run concurrently.
//   - Store.mu orders calls against Close: a call holds it shared while it
//     checks for closure and registers itself, Close holds it exclusively
//     while it marks the store closed. Close then waits for the registered
//     calls, closes the writer's channel, waits for the writer to insert
//     everything queued, and disconnects. After Close every method returns
//     engine.ErrClosed.
package mongo
