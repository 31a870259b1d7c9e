// Package cluster starts and stops the Proto.Actor cluster member that hosts
// Kefu's virtual actors: the actor system, the remote, the membership
// provider and the identity lookup (disthash).
//
// The single-node default uses an in-process provider whose only member is
// this process, so nothing outside the binary is needed. A Node is created
// by Start and owned by its caller, who calls Shutdown, which returns once
// every activation has stopped, before closing the store the actors write
// to; the protoactor objects it wraps own their goroutines.
package cluster
