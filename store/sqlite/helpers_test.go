package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
	"github.com/kefu-dev/kefu/store/storetest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// openTest opens a store in a fresh directory and closes it when tb ends.
func openTest(tb testing.TB, cfg Config) *Store {
	tb.Helper()
	return openTestHooks(tb, cfg, testHooks{})
}

func openTestHooks(tb testing.TB, cfg Config, hooks testHooks) *Store {
	tb.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(tb.TempDir(), "kefu.db")
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	s, err := open(context.Background(), cfg, hooks)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s
}

// Shorthands for the conformance suite's helpers, which the SQLite-specific
// tests share.
var (
	msg          = storetest.Msg
	msgs         = storetest.Msgs
	checkFor     = storetest.CheckFor
	wantErrIs    = storetest.WantErrIs
	mustOK       = storetest.MustOK
	wantMessages = storetest.WantMessages
)

// seed creates tenant and, in it, conversations convs.
func seed(tb testing.TB, s *Store, tenant string, convs ...string) {
	tb.Helper()
	storetest.Seed(tb, s, tenant, convs...)
}

// appendAll appends ms and fails tb unless all are stored.
func appendAll(tb testing.TB, s *Store, ms []engine.Message) {
	tb.Helper()
	storetest.AppendAll(tb, s, ms)
}

// counterValue reads kefu_store_ops_total{op=kind} of s.
func counterValue(tb testing.TB, s *Store, kind string) float64 {
	tb.Helper()
	for k := range storemetrics.NumOps {
		if k.String() != kind {
			continue
		}
		var m dto.Metric
		if err := s.w.metrics.Ops[k].Write(&m); err != nil {
			tb.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	tb.Fatalf("no op kind %q", kind)
	return 0
}
