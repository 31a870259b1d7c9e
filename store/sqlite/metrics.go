package sqlite

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kefu-dev/kefu/store/storemetrics"
)

// metrics are the store's collectors (storemetrics). They are updated only
// by the writer goroutine.
type metrics = storemetrics.Metrics

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	return storemetrics.New(reg, "Time of one group commit of the SQLite writer, from BEGIN to the end of COMMIT (fsync included).")
}
