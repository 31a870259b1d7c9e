// Package actors holds Kefu's Proto.Actor actors and the narrow client the
// edge uses to reach them.
//
//   - conversation (virtual, identity "<tenant>/<conv>"): the single writer of
//     one conversation. It owns the conversation's header (its rating
//     included), next seq, recent
//     messages, dedupe window, read pointers and subscribed sessions. Writes go
//     to the store from goroutines it starts, never inside Receive; their
//     results come back to it as messages, so its state is touched only by
//     its own mailbox. The one exception is stopping: the state and timer
//     writes still queued are stored in *actor.Stopping (writes.go).
//   - tenant (virtual, identity "<tenant>"): staff login, conversation
//     listing, knowledge-base search, and the single writer of the
//     knowledge base, the routing configuration, the canned responses and
//     the audit log; store calls run off the mailbox
//     likewise, and audit entries that arrive while one audit write is in
//     flight are batched into the next.
//   - agent (virtual, identity "<tenant>/<staff id>"): the single writer of
//     one agent's load. Every assignment reserves capacity here first, so no
//     agent exceeds their capacity however many queues and conversations
//     act at once.
//   - queue (virtual, identity "<tenant>/<group>"): one skill group's waiting
//     conversations, dispatched by priority, waiting time and the group's
//     policy to agents with free capacity.
//   - Scheduler (not an actor): fires durable timers that fell due by
//     sending them to their conversations, wherever those activate.
//   - session (local, one per WebSocket): owns what one connected client is
//     subscribed to, how far each subscription has been delivered and the
//     requests waiting for an answer; it watches the activations they went
//     to. It
//     talks to the socket only through an Outbox, which never blocks.
//   - routes (not an actor, one per member, shared under a mutex): the
//     cluster's topology and the members whose connection broke, so that
//     lookups skip a dead owner and requests to a member that left end at
//     once; written only by the actor system's event stream.
//
// Messages that may cross nodes are the protobuf types of actorpb; messages
// an actor sends to itself or that the edge hands to its local session are
// plain Go values.
package actors
