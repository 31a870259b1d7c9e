package mongo

import (
	"testing"

	"github.com/kefu-dev/kefu/store/storetest"
)

// The same two benchmarks as store/sqlite's (storetest). Against the
// in-process FerretDB they measure FerretDB (every query a scan of SQLite)
// more than this adapter; point KEFU_TEST_MONGO_URI at a replica set for
// figures that mean something.

// BenchmarkAppendGroupCommit: many concurrent appenders, one ordered
// InsertMany per batch.
func BenchmarkAppendGroupCommit(b *testing.B) {
	s := openTest(b, Config{}, testHooks{})
	storetest.BenchAppendGroupCommit(b, s, s.metrics)
}

// BenchmarkAppendSingle: one InsertMany round trip per call.
func BenchmarkAppendSingle(b *testing.B) {
	storetest.BenchAppendSingle(b, openTest(b, Config{}, testHooks{}))
}
