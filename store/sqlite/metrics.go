package sqlite

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kefu-dev/kefu/store/storemetrics"
)

// metrics are the store's collectors: those every store reports
// (storemetrics), updated only by the writer goroutine, and the
// checkpoint time, updated only by the checkpointer.
type metrics struct {
	*storemetrics.Metrics
	checkpointSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	common, err := storemetrics.New(reg, "Time of one group commit of the SQLite writer, from BEGIN to the end of COMMIT (fsync included).")
	if err != nil {
		return nil, err
	}
	checkpoint := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kefu_store_checkpoint_seconds",
		Help:    "Time of one background WAL checkpoint (copying committed pages into the database file, fsync included).",
		Buckets: prometheus.ExponentialBucketsRange(0.0001, 1, 14),
	})
	if reg != nil {
		if checkpoint, err = storemetrics.Register(reg, checkpoint); err != nil {
			return nil, err
		}
	}
	return &metrics{Metrics: common, checkpointSeconds: checkpoint}, nil
}
