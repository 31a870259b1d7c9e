package mongo

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kefu-dev/kefu/store/storemetrics"
)

// metrics are the store's collectors (storemetrics). The histograms are
// updated by the writer goroutine only; the counters by every writing call.
type metrics = storemetrics.Metrics

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	return storemetrics.New(reg, "Time of one group commit of the store writer: for MongoDB, one unordered InsertMany with its write concern, and any clean-up after refused messages.")
}

// opKind names a kind of write, for the ops_total metric.
type opKind = storemetrics.Op

const (
	opAppend             = storemetrics.OpAppend
	opCreateConversation = storemetrics.OpCreateConversation
	opSetReadPointer     = storemetrics.OpSetReadPointer
	opCreateTenant       = storemetrics.OpCreateTenant
	opCreateStaff        = storemetrics.OpCreateStaff
	opPutSetting         = storemetrics.OpPutSetting
	opUpdateConversation = storemetrics.OpUpdateConversation
	opPutFAQ             = storemetrics.OpPutFAQ
	opDeleteFAQ          = storemetrics.OpDeleteFAQ
	numOpKinds           = storemetrics.NumOps
)
