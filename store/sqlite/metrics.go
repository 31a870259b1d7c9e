package sqlite

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus collectors. They are updated only by
// the writer goroutine, except checkpointSeconds, which only the
// checkpointer updates.
type metrics struct {
	commitSeconds     prometheus.Histogram
	checkpointSeconds prometheus.Histogram
	batchOps          prometheus.Histogram
	ops               [numOpKinds]prometheus.Counter // ops_total, one child per kind
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	commit := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "kefu_store_commit_seconds",
		Help: "Time of one group commit of the SQLite writer, from BEGIN to the end of COMMIT (fsync included).",
		// 100µs (a tiny batch on a fast disk) to 1s (a stalled disk).
		Buckets: prometheus.ExponentialBucketsRange(0.0001, 1, 14),
	})
	checkpoint := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kefu_store_checkpoint_seconds",
		Help:    "Time of one background WAL checkpoint (copying committed pages into the database file, fsync included).",
		Buckets: prometheus.ExponentialBucketsRange(0.0001, 1, 14),
	})
	batch := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kefu_store_batch_ops",
		Help:    "Number of write ops committed together in one group commit.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 .. 2048
	})
	ops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kefu_store_ops_total",
		Help: "Write ops the SQLite writer has run, by kind, whatever their outcome.",
	}, []string{"op"})

	if reg != nil {
		var err error
		if commit, err = register(reg, commit); err != nil {
			return nil, err
		}
		if checkpoint, err = register(reg, checkpoint); err != nil {
			return nil, err
		}
		if batch, err = register(reg, batch); err != nil {
			return nil, err
		}
		if ops, err = register(reg, ops); err != nil {
			return nil, err
		}
	}
	m := &metrics{commitSeconds: commit, checkpointSeconds: checkpoint, batchOps: batch}
	for k := range numOpKinds {
		m.ops[k] = ops.WithLabelValues(k.String())
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same name, so a store reopened in the same process (a restart in a
// test, a reload) keeps counting on the same series.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
