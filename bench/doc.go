// Package bench is Kefu's load generator and measuring harness. It drives a
// running Kefu (any node of a cluster, or a single node) from the outside,
// through the same REST API and WebSockets real clients use, and reports
// latencies as HDR histograms, throughput, errors, lost and duplicated
// messages, the server's memory per connection and the CPU the server and
// the harness use per message, next to the latency of a raw WebSocket echo
// over loopback measured in the same run.
//
// Two modes:
//
//   - Run (load): users and agents exchange messages in conversations at a
//     fixed total rate, open loop: every send has a scheduled instant and
//     each latency counts from that instant, so a stalled server or a
//     stalled harness shows up in the figures instead of slowing the load
//     (no coordinated omission). Users also drop their sockets and resume,
//     and escalate conversations still with the bot, which routing assigns
//     to agents who answer and close them.
//     At the end every conversation's history is paged over REST and
//     checked against every ack and every delivery.
//   - Idle: open many authenticated WebSockets that only answer pings, from
//     several 127.0.0.x source addresses, and report connects per second
//     and the server's resident memory per connection.
//
// The harness owns nothing on the server: it needs a staff account (agents
// use its token) and the REST endpoints to create visitors and
// conversations.
//
// Concurrency: a pacer goroutine owns the schedule and hands each event to
// the one client it concerns through that client's bounded channel. Each
// client (one logical user or agent, across reconnections) has one writer
// goroutine, which owns the socket's writes, its reconnections and the
// order of its frames, and one reader goroutine per socket, which owns
// nothing but hands what it reads to the client's state under the client's
// mutex. Histograms and counters are shared and safe for concurrent use.
// Run and Idle return only after every goroutine they started has exited.
package bench
