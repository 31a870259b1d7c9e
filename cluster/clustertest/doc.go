// Package clustertest gives tests a real etcd: the etcd binary (Debian's
// etcd-server, /usr/bin/etcd, or the one KEFU_TEST_ETCD names) started on
// loopback with free ports and a data directory of the test's own, stopped
// when the test ends.
//
// It is imported by tests only; arch_test.go keeps it out of every other
// package and out of the kefu binary.
package clustertest
