package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fixedClock is an engine.Clock tests control.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var testEpoch = time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)

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

// seed creates tenant and, in it, conversations convs.
func seed(tb testing.TB, s *Store, tenant string, convs ...string) {
	tb.Helper()
	ctx := context.Background()
	if err := s.CreateTenant(ctx, engine.Tenant{ID: tenant, Name: "Tenant " + tenant, AppID: "wx" + tenant}); err != nil {
		tb.Fatalf("create tenant %s: %v", tenant, err)
	}
	for _, c := range convs {
		if err := s.CreateConversation(ctx, engine.Conversation{Tenant: tenant, ID: c, UserID: "u-" + c, State: engine.StateBot}); err != nil {
			tb.Fatalf("create conversation %s/%s: %v", tenant, c, err)
		}
	}
}

// msg builds message seq of tenant/conv with client_msg_id "<conv>-<seq>".
func msg(tenant, conv string, seq int64) engine.Message {
	return engine.Message{
		Tenant: tenant, Conv: conv, Seq: seq,
		ClientMsgID: fmt.Sprintf("%s-%d", conv, seq),
		From:        engine.Party{Role: engine.RoleUser, ID: "u-" + conv},
		Body:        engine.Body{Type: engine.BodyText, Text: fmt.Sprintf("message %d of %s", seq, conv)},
		CreatedAt:   testEpoch.Add(time.Duration(seq) * time.Second),
	}
}

// msgs builds messages from..to (inclusive) of tenant/conv.
func msgs(tenant, conv string, from, to int64) []engine.Message {
	var out []engine.Message
	for seq := from; seq <= to; seq++ {
		out = append(out, msg(tenant, conv, seq))
	}
	return out
}

// checkFor polls cond until it holds, failing tb after d. It yields instead
// of sleeping: the conditions it waits for are other goroutines' progress.
func checkFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		runtime.Gosched()
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// wantErrIs fails tb unless errors.Is(err, target).
func wantErrIs(tb testing.TB, what string, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

// mustOK fails tb on err.
func mustOK(tb testing.TB, what string, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// wantMessages fails tb unless got are want, field by field.
func wantMessages(tb testing.TB, what string, got, want []engine.Message) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: got %d messages %v, want %d", what, len(got), seqsOf(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Tenant != w.Tenant || g.Conv != w.Conv || g.Seq != w.Seq || g.ClientMsgID != w.ClientMsgID ||
			g.From != w.From || !reflect.DeepEqual(g.Body, w.Body) || !g.CreatedAt.Equal(w.CreatedAt) {
			tb.Fatalf("%s: message %d = %+v, want %+v", what, i, g, w)
		}
	}
}

func seqsOf(ms []engine.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

// appendAll appends ms and fails tb unless all are stored.
func appendAll(tb testing.TB, s *Store, ms []engine.Message) {
	tb.Helper()
	n, err := s.Append(context.Background(), ms)
	if err != nil || n != len(ms) {
		tb.Fatalf("append %v: n=%d err=%v, want n=%d", seqsOf(ms), n, err, len(ms))
	}
}

// counterValue reads kefu_store_ops_total{op=kind} of s.
func counterValue(tb testing.TB, s *Store, kind string) float64 {
	tb.Helper()
	for k := range numOpKinds {
		if k.String() != kind {
			continue
		}
		var m dto.Metric
		if err := s.w.metrics.ops[k].Write(&m); err != nil {
			tb.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	tb.Fatalf("no op kind %q", kind)
	return 0
}
