package mongo

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// opKind names a kind of write, for the ops_total metric. The names are
// store/sqlite's: a dashboard reads the same series whichever store runs.
type opKind uint8

const (
	opAppend opKind = iota
	opCreateConversation
	opSetReadPointer
	opCreateTenant
	opCreateStaff
	opPutSetting
	opUpdateConversation
	opPutFAQ
	opDeleteFAQ
	numOpKinds
)

var opKindNames = [numOpKinds]string{
	"append", "create_conversation", "set_read_pointer", "create_tenant", "create_staff", "put_setting",
	"update_conversation", "put_faq", "delete_faq",
}

func (k opKind) String() string { return opKindNames[k] }

// metrics are the store's Prometheus collectors, under the same names and
// labels as store/sqlite's. The histograms are updated by the writer
// goroutine only; the counters by every writing call.
type metrics struct {
	commitSeconds prometheus.Histogram
	batchOps      prometheus.Histogram
	ops           [numOpKinds]prometheus.Counter // ops_total, one child per kind
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	commit := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "kefu_store_commit_seconds",
		Help: "Time of one group commit of the store writer: for MongoDB, one unordered InsertMany with its write concern, and any clean-up after refused messages.",
		// 100µs to 1s, as store/sqlite: the same series whichever store runs.
		Buckets: prometheus.ExponentialBucketsRange(0.0001, 1, 14),
	})
	batch := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kefu_store_batch_ops",
		Help:    "Number of write ops committed together in one group commit.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 .. 2048
	})
	ops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kefu_store_ops_total",
		Help: "Write ops the store has run, by kind, whatever their outcome.",
	}, []string{"op"})

	if reg != nil {
		var err error
		if commit, err = register(reg, commit); err != nil {
			return nil, err
		}
		if batch, err = register(reg, batch); err != nil {
			return nil, err
		}
		if ops, err = register(reg, ops); err != nil {
			return nil, err
		}
	}
	m := &metrics{commitSeconds: commit, batchOps: batch}
	for k := range numOpKinds {
		m.ops[k] = ops.WithLabelValues(k.String())
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same name, so a store reopened in the same process keeps counting on
// the same series.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
