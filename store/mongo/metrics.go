package mongo

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kefu-dev/kefu/store/storemetrics"
)

// metrics are the store's collectors (storemetrics). The histograms are
// updated by the writer goroutine only; the counters by every writing call.
type metrics = storemetrics.Metrics

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	return storemetrics.New(reg, "Time of one group commit of the store writer: for MongoDB, the ordered InsertMany rounds of one batch with their write concern.")
}
