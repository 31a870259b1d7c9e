package sqlite

import (
	"testing"

	"github.com/kefu-dev/kefu/store/storetest"
)

// BenchmarkAppendGroupCommit: many concurrent appenders, one transaction
// and one fsync per group commit.
func BenchmarkAppendGroupCommit(b *testing.B) {
	s := openTest(b, Config{})
	storetest.BenchAppendGroupCommit(b, s, s.w.metrics.Metrics)
}

// BenchmarkAppendSingle: one transaction and one fsync per call.
func BenchmarkAppendSingle(b *testing.B) {
	storetest.BenchAppendSingle(b, openTest(b, Config{}))
}
