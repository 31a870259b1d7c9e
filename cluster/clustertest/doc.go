// Package clustertest runs real clusters for tests. StartEtcd gives a test
// an etcd of its own (Debian's etcd-server, /usr/bin/etcd, or the binary
// KEFU_TEST_ETCD names) on loopback with free ports. Start runs a whole
// Kefu cluster of OS processes: that etcd, a FerretDB process holding the
// shared store (store/mongo/mongotest/ferretdb), actor nodes and edges
// built from cmd/kefu. Its own tests are the cluster's acceptance tests:
// node kills under load, rolling restarts, edge kills and the timers of
// conversations whose node died.
//
// It is imported by tests only; arch_test.go keeps it out of every other
// package and out of the kefu binary.
package clustertest
