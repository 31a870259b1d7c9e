// Package mongotest gives tests a MongoDB-wire server: an in-process
// FerretDB v1 (SQLite backend, temp directory, random loopback port), or the
// server named by KEFU_TEST_MONGO_URI when that is set, for a real MongoDB.
//
// It is imported by tests only. FerretDB must never reach the kefu binary:
// arch_test.go fails any non-test package of the module that depends on it
// other than this one.
package mongotest
