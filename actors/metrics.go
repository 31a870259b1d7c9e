package actors

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kefu-dev/kefu/engine"
)

// Metrics are the actors' Prometheus collectors. A nil *Metrics measures
// nothing, so tests need not build one.
type Metrics struct {
	active   prometheus.Gauge
	messages *prometheus.CounterVec
	latency  prometheus.Histogram
	bot      *prometheus.CounterVec
}

// NewMetrics registers the actors' collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kefu_conversations_active", Help: "Conversation actors activated on this node.",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kefu_messages_total", Help: "Messages durably stored, by sender role.",
		}, []string{"role"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kefu_append_seconds",
			Help:    "Time from a message reaching its conversation to its ack, including the durable commit.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	m.bot = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kefu_bot_replies_total", Help: "Bot replies stored, by kind (answer, suggest, fallback, escalate).",
	}, []string{"kind"})
	reg.MustRegister(m.active, m.messages, m.latency, m.bot)
	return m
}

func (m *Metrics) conversationStarted() {
	if m != nil {
		m.active.Inc()
	}
}

func (m *Metrics) conversationStopped() {
	if m != nil {
		m.active.Dec()
	}
}

func (m *Metrics) botReplied(kind string) {
	if m != nil {
		m.bot.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) appended(role engine.Role, d time.Duration) {
	if m != nil {
		m.messages.WithLabelValues(string(role)).Inc()
		m.latency.Observe(d.Seconds())
	}
}
