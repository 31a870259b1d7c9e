package storemetrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Op names a kind of store write, the label of kefu_store_ops_total.
type Op uint8

// Kinds of writes.
const (
	OpAppend Op = iota
	OpCreateConversation
	OpSetReadPointer
	OpCreateTenant
	OpCreateStaff
	OpPutSetting
	OpUpdateConversation
	OpPutFAQ
	OpDeleteFAQ
	OpPutAgentProfile
	OpPutGroup
	OpDeleteGroup
	OpPutTenantSettings
	OpPutCustomer
	OpAddNote
	OpSetTimers
	OpUpdateStaff
	OpPutSession
	OpPutLoginState
	OpPutTenantCredentials
	OpAppendAudit
	OpCreateDataKey
	OpRewrapDataKey
	OpPutCanned
	OpDeleteCanned
	NumOps
)

var opNames = [NumOps]string{
	"append", "create_conversation", "set_read_pointer", "create_tenant", "create_staff", "put_setting",
	"update_conversation", "put_faq", "delete_faq",
	"put_agent_profile", "put_group", "delete_group", "put_tenant_settings", "put_customer", "add_note",
	"set_timers", "update_staff", "put_session", "put_login_state",
	"put_tenant_credentials", "append_audit", "create_data_key", "rewrap_data_key", "put_canned", "delete_canned",
}

func (o Op) String() string { return opNames[o] }

// Metrics are a store's collectors.
type Metrics struct {
	// CommitSeconds is the time of one group commit; what a commit is
	// depends on the store (commitHelp of New says).
	CommitSeconds prometheus.Histogram
	// BatchOps is the number of writes committed together.
	BatchOps prometheus.Histogram
	// Ops counts writes by kind, whatever their outcome.
	Ops [NumOps]prometheus.Counter
}

// New creates the collectors and registers them with reg (nil: kept, not
// exported). A collector already registered under the same name is reused,
// so a store reopened in the same process keeps counting on the same
// series. commitHelp describes one commit of this store.
func New(reg prometheus.Registerer, commitHelp string) (*Metrics, error) {
	commit := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "kefu_store_commit_seconds",
		Help: commitHelp,
		// 100µs (a tiny batch on a fast disk) to 1s (a stalled disk).
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
		if commit, err = Register(reg, commit); err != nil {
			return nil, err
		}
		if batch, err = Register(reg, batch); err != nil {
			return nil, err
		}
		if ops, err = Register(reg, ops); err != nil {
			return nil, err
		}
	}
	m := &Metrics{CommitSeconds: commit, BatchOps: batch}
	for o := range NumOps {
		m.Ops[o] = ops.WithLabelValues(o.String())
	}
	return m, nil
}

// Register registers c with reg, or returns the collector already registered
// under the same name, so a store reopened in the same process keeps
// counting on the same series.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
