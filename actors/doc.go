// Package actors holds Kefu's Proto.Actor actors and the narrow client the
// edge uses to reach them.
//
//   - conversation (virtual, identity "<tenant>/<conv>"): the single writer of
//     one conversation. It owns the conversation's header, next seq, recent
//     messages, dedupe window, read pointers and subscribed sessions. Writes go
//     to the store from goroutines it starts, never inside Receive; their
//     results come back to it as messages, so its state is touched only by
//     its own mailbox.
//   - tenant (virtual, identity "<tenant>"): staff login and conversation
//     listing for one tenant; store calls run off the mailbox likewise.
//   - session (local, one per WebSocket): owns what one connected client is
//     subscribed to and how far each subscription has been delivered. It
//     talks to the socket only through an Outbox, which never blocks.
//
// Messages that may cross nodes are the protobuf types of actorpb; messages
// an actor sends to itself or that the edge hands to its local session are
// plain Go values.
package actors
