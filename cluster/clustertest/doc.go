// Package clustertest runs Kefu clusters of real processes for tests: a
// Debian etcd-server, a FerretDB process holding the shared store (the
// program in store/mongo/mongotest/ferretdb), actor nodes and edges built
// from cmd/kefu, all on loopback. Its own tests are the cluster's
// acceptance tests: node kills under load, rolling restarts, edge kills
// and timers of conversations whose node died. Only tests import it.
package clustertest
