// Package cluster starts and stops the Proto.Actor cluster member that hosts
// Kefu's virtual actors: the actor system, the remote, the membership
// provider and the identity lookup (disthash).
//
// Without etcd endpoints the member is alone: an in-process provider whose
// only member is this process, so nothing outside the binary is needed.
// With them, members register in etcd on a lease they renew, and every
// member and client watches the records (etcd.go says why this is Kefu's
// own provider, and how its timing was chosen). A client member (the
// edge's shape) hosts no kinds and keeps no record: it only sends.
//
// A Node is created by New (or Start, which also joins) and owned by its
// caller, who calls Join once and Shutdown at the end. Shutdown leaves the
// cluster first, so the others stop routing to this member at once, and
// returns once every activation has stopped, so the caller may then close
// the store the actors write to. The
// provider's watch and keep-alive goroutines own the membership they read;
// Node.Members is a copy of what they last published, safe to read from
// any goroutine. The protoactor objects the Node wraps own their
// goroutines.
package cluster
