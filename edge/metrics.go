package edge

import "github.com/prometheus/client_golang/prometheus"

// metrics are the edge's Prometheus collectors.
type metrics struct {
	connections *prometheus.GaugeVec
	framesIn    *prometheus.CounterVec
	framesOut   prometheus.Counter
	rejected    *prometheus.CounterVec
	closes      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kefu_ws_connections", Help: "Open WebSocket connections by endpoint.",
		}, []string{"endpoint"}),
		framesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kefu_ws_frames_in_total", Help: "Client frames accepted, by type.",
		}, []string{"type"}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kefu_ws_frames_out_total", Help: "Frames written to clients.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kefu_ws_frames_rejected_total", Help: "Client frames answered with an error, by code.",
		}, []string{"code"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kefu_ws_closes_total", Help: "Connections the server closed, by close code.",
		}, []string{"code"}),
	}
	reg.MustRegister(m.connections, m.framesIn, m.framesOut, m.rejected, m.closes)
	return m
}
