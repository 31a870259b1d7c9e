package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// OpenFunc opens a fresh, empty store whose clock is clock, and arranges
// for it to be closed when t ends. Store.Close must be safe to call again
// after a test closed the store itself.
type OpenFunc func(t *testing.T, clock engine.Clock) engine.Store

// Run runs the whole suite against the stores open makes, one subtest per
// behaviour.
func Run(t *testing.T, open OpenFunc) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, OpenFunc)
	}{
		{"AppendReadBack", testAppendReadBack},
		{"MessagesPaging", testMessagesPaging},
		{"Recent", testRecent},
		{"LastSeq", testLastSeq},
		{"AppendDuplicate", testAppendDuplicate},
		{"AppendSeqConflict", testAppendSeqConflict},
		{"RacingWriters", testRacingWriters},
		{"RacingWritersReload", testRacingWritersReload},
		{"AppendRejects", testAppendRejects},
		{"ConcurrentAppends", testConcurrentAppends},
		{"ReadPointers", testReadPointers},
		{"TenantIsolation", testTenantIsolation},
		{"CreateConflicts", testCreateConflicts},
		{"Accounts", testAccounts},
		{"PutSettingIfAbsent", testPutSettingIfAbsent},
		{"Conversations", testConversations},
		{"Lifecycle", testLifecycle},
		{"ConversationRouting", testConversationRouting},
		{"KnowledgeBase", testKnowledgeBase},
		{"Staff", testStaff},
		{"AgentProfiles", testAgentProfiles},
		{"Groups", testGroups},
		{"TenantSettings", testTenantSettings},
		{"Customers", testCustomers},
		{"Notes", testNotes},
		{"Timers", testTimers},
		{"AppendTimers", testAppendTimers},
		{"Credentials", testCredentials},
		{"TenantCredentials", testTenantCredentials},
		{"Audit", testAudit},
		{"BodyOptions", testBodyOptions},
		{"DataKeys", testDataKeys},
		{"Ratings", testRatings},
		{"Canned", testCanned},
		{"ClosedStore", testClosedStore},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// FixedClock is an engine.Clock that always tells T.
type FixedClock struct{ T time.Time }

// Now returns c.T.
func (c FixedClock) Now() time.Time { return c.T }

// Epoch is the time of the suite's clock; messages are stamped after it.
var Epoch = time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)

// openDefault opens a store on the suite's clock.
func openDefault(t *testing.T, open OpenFunc) engine.Store {
	t.Helper()
	return open(t, FixedClock{Epoch})
}

// Seed creates tenant and, in it, conversations convs.
func Seed(tb testing.TB, s engine.Store, tenant string, convs ...string) {
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

// Msg builds message seq of tenant/conv with client_msg_id "<conv>-<seq>".
func Msg(tenant, conv string, seq int64) engine.Message {
	return engine.Message{
		Tenant: tenant, Conv: conv, Seq: seq,
		ClientMsgID: fmt.Sprintf("%s-%d", conv, seq),
		From:        engine.Party{Role: engine.RoleUser, ID: "u-" + conv},
		Body:        engine.Body{Type: engine.BodyText, Text: fmt.Sprintf("message %d of %s", seq, conv)},
		CreatedAt:   Epoch.Add(time.Duration(seq) * time.Second),
	}
}

// Msgs builds messages from..to (inclusive) of tenant/conv.
func Msgs(tenant, conv string, from, to int64) []engine.Message {
	var out []engine.Message
	for seq := from; seq <= to; seq++ {
		out = append(out, Msg(tenant, conv, seq))
	}
	return out
}

// AppendAll appends ms and fails tb unless all are stored.
func AppendAll(tb testing.TB, s engine.Store, ms []engine.Message) {
	tb.Helper()
	n, err := s.Append(context.Background(), ms)
	if err != nil || n != len(ms) {
		tb.Fatalf("append %v: n=%d err=%v, want n=%d", SeqsOf(ms), n, err, len(ms))
	}
}

// WantMessages fails tb unless got are want, field by field.
func WantMessages(tb testing.TB, what string, got, want []engine.Message) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: got %d messages %v, want %d", what, len(got), SeqsOf(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Tenant != w.Tenant || g.Conv != w.Conv || g.Seq != w.Seq || g.ClientMsgID != w.ClientMsgID ||
			g.From != w.From || !reflect.DeepEqual(g.Body, w.Body) || !g.CreatedAt.Equal(w.CreatedAt) {
			tb.Fatalf("%s: message %d = %+v, want %+v", what, i, g, w)
		}
	}
}

// SeqsOf returns the seqs of ms.
func SeqsOf(ms []engine.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

// WantErrIs fails tb unless errors.Is(err, target).
func WantErrIs(tb testing.TB, what string, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

// MustOK fails tb on err.
func MustOK(tb testing.TB, what string, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// CheckFor polls cond until it holds, failing tb after d. It yields instead
// of sleeping: the conditions it waits for are other goroutines' progress.
func CheckFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		runtime.Gosched()
	}
}
