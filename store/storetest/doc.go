// Package storetest is the conformance suite of engine.Store: one set of
// tests that every adapter (store/sqlite, store/mongo) runs against itself,
// so the adapters are proven to behave the same. An adapter's test calls
// Run with a function that opens a fresh, empty store.
//
// It covers appends (prefix semantics, duplicates, seq conflicts, racing
// writers), history reads and paging, conversations and their listing,
// read pointers, ratings, accounts and settings, canned responses, the
// audit log, data keys, tenant isolation and the closed store. A store feature lands in every adapter together
// with its test here. Adapter-specific behaviour (schemas, query plans,
// the writer's internals) stays in the adapter's own tests.
//
// Held is for the store's users' tests: wrapped around a real store, it
// holds the writes actors make behind their mailboxes for as long as a test
// needs.
//
// The package is imported by tests only and imports no adapter.
package storetest
