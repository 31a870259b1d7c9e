package mongo

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/mongo/mongotest"
	"github.com/kefu-dev/kefu/store/storemetrics"
	"github.com/kefu-dev/kefu/store/storetest"
)

// TestMain stops the FerretDB the tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	mongotest.StopShared()
	os.Exit(code)
}

// testConfig is a Config for a fresh database on the shared server; the
// database is dropped when tb ends.
func testConfig(tb testing.TB) Config {
	tb.Helper()
	srv := mongotest.Shared(tb)
	return Config{URI: srv.URI, Database: srv.Database(tb), Registerer: prometheus.NewRegistry()}
}

// openTest opens a store with cfg (testConfig's where empty) and closes it
// when tb ends.
func openTest(tb testing.TB, cfg Config, hooks testHooks) *Store {
	tb.Helper()
	if cfg.URI == "" {
		base := testConfig(tb)
		base.Clock, base.MaxBatch, base.WriteConcern = cfg.Clock, cfg.MaxBatch, cfg.WriteConcern
		cfg = base
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := open(ctx, cfg, hooks)
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

// Shorthands for the conformance suite's helpers.
var (
	msg          = storetest.Msg
	msgs         = storetest.Msgs
	checkFor     = storetest.CheckFor
	wantErrIs    = storetest.WantErrIs
	mustOK       = storetest.MustOK
	wantMessages = storetest.WantMessages
)

func seed(tb testing.TB, s engine.Store, tenant string, convs ...string) {
	tb.Helper()
	storetest.Seed(tb, s, tenant, convs...)
}

func appendAll(tb testing.TB, s engine.Store, ms []engine.Message) {
	tb.Helper()
	storetest.AppendAll(tb, s, ms)
}

// counterValue reads kefu_store_ops_total{op=kind} of s.
func counterValue(tb testing.TB, s *Store, kind storemetrics.Op) float64 {
	tb.Helper()
	var m dto.Metric
	if err := s.metrics.Ops[kind].Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
