// Package edge is Kefu's front door: the Fiber HTTP server with the user and
// agent WebSocket endpoints, the REST API, authentication, health and
// metrics. It talks to the cluster only through actors.Client and never
// touches a database. NewHealth serves the probes alone, for an actor node
// that serves no clients.
//
// Concurrency: each WebSocket has exactly one reader goroutine and at most
// one writer goroutine at a time, fed by a bounded queue. The reader reads
// the hello in the goroutine fasthttp hijacked the connection in, then
// goes on in a goroutine of its own so that fasthttp can take back its
// buffers (upgrade.go). The writer runs only while there is something to
// write (frames, a ping, the close), so an idle socket holds no writer
// stack; the socket ends only after the writer has exited and no other can
// start. The reader owns the connection's rate limiter and hello state;
// the writer owns all writes. A session actor owns
// what the client is subscribed to and enqueues frames without blocking: a
// full queue disconnects the slow client instead of stalling anyone else.
package edge
