package actors_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/cluster"
	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/sqlite"
)

// testNode is a one-node cluster over a real SQLite store in a temp dir.
type testNode struct {
	store   *sqlite.Store
	client  *actors.Client
	node    *cluster.Node
	metrics *prometheus.Registry
}

func startNode(t testing.TB, tune func(*actors.Deps)) *testNode {
	t.Helper()
	store := openStore(t)
	reg := prometheus.NewRegistry()
	deps := actors.Deps{Store: store, Metrics: actors.NewMetrics(reg)}
	if tune != nil {
		tune(&deps)
	}
	node, err := cluster.Start(context.Background(), cluster.Config{}, actors.Kinds(deps)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Shutdown) // before the store closes
	return &testNode{store: store, client: actors.NewClient(node.Cluster, 5*time.Second, nil), node: node, metrics: reg}
}

// openStore opens a SQLite store in a temp dir, closed when the test ends,
// with tenant t1 and its agent a1.
func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "kefu.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := store.CreateTenant(ctx, engine.Tenant{ID: "t1", Name: "T1", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// The agent of these tests exists: taking a conversation over reserves
	// its capacity with the agent's actor, which refuses unknown staff.
	if err := store.CreateStaff(ctx, engine.Staff{Tenant: "t1", ID: agent.Party.ID, Username: "a1", Role: engine.StaffAgent, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return store
}

var (
	customer = actors.Caller{Tenant: "t1", Party: engine.Party{Role: engine.RoleUser, ID: "u1"}}
	agent    = actors.Caller{Tenant: "t1", Party: engine.Party{Role: engine.RoleAgent, ID: "a1"}, StaffRole: engine.StaffAgent}
)

// outbox collects the frames a session emits.
type outbox chan []byte

// Revoked is recorded as a frame, so a test can wait for it.
func (o outbox) Revoked(reason string) {
	o.Enqueue([]byte(`{"type":"revoked","reason":` + strconv.Quote(reason) + `}`))
}

func (o outbox) Enqueue(b []byte) bool {
	select {
	case o <- b:
		return true
	default:
		return false
	}
}

// storeMessages writes n messages directly, as an earlier activation would have.
func storeMessages(t testing.TB, s engine.Store, conv string, from, n int) {
	t.Helper()
	msgs := make([]engine.Message, n)
	for i := range msgs {
		seq := from + i
		msgs[i] = engine.Message{Tenant: "t1", Conv: conv, Seq: int64(seq), ClientMsgID: fmt.Sprintf("pre-%d", seq),
			From: customer.Party, Body: engine.Body{Type: engine.BodyText, Text: "历史消息"}, CreatedAt: time.Now()}
	}
	if k, err := s.Append(context.Background(), msgs); err != nil || k != n {
		t.Fatalf("seeding: stored %d of %d: %v", k, n, err)
	}
}

func newConv(t testing.TB, n *testNode) string {
	t.Helper()
	conv, err := n.client.CreateConversation(context.Background(), customer)
	if err != nil {
		t.Fatal(err)
	}
	return conv.ID
}

func seqs(t testing.TB, n *testNode, conv string) []int64 {
	t.Helper()
	msgs, err := n.store.Messages(context.Background(), "t1", conv, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func gapless(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}

// sendAndAck sends one text message through a session and waits for its ack.
func sendAndAck(t testing.TB, sess *actors.Session, out outbox, conv, id string) engine.AckFrame {
	t.Helper()
	sess.Deliver(engine.ClientFrame{Type: engine.FrameSend, Conv: conv, ClientMsgID: id, Body: &engine.Body{Type: engine.BodyText, Text: "hello"}})
	deadline := time.After(10 * time.Second)
	for {
		select {
		case b := <-out:
			var ack engine.AckFrame
			if err := json.Unmarshal(b, &ack); err == nil && ack.Type == engine.FrameAck && ack.ClientMsgID == id {
				return ack
			}
			if len(b) > 0 && string(b[:15]) == `{"type":"error"` {
				t.Fatalf("send %s: %s", id, b)
			}
		case <-deadline:
			t.Fatalf("no ack for %s", id)
		}
	}
}

// TestSeqConflictReloadsAndRenumbers: when another activation has stored
// the seq this one was about to use, the loser reloads and renumbers; no
// seq is skipped or reused.
func TestSeqConflictReloadsAndRenumbers(t *testing.T) {
	n := startNode(t, nil)
	conv := newConv(t, n)
	out := make(outbox, 100)
	sess := n.client.StartSession(customer, out)
	defer sess.Stop()
	if ack := sendAndAck(t, sess, out, conv, "m1"); ack.Seq != 1 {
		t.Fatalf("first seq %d", ack.Seq)
	}
	// A racing activation stores seqs 2 and 3 behind this one's back.
	storeMessages(t, n.store, conv, 2, 2)
	if ack := sendAndAck(t, sess, out, conv, "m2"); ack.Seq != 4 {
		t.Fatalf("after the conflict the message got seq %d, want 4", ack.Seq)
	}
	// A resend of a message the other activation stored is a duplicate.
	if ack := sendAndAck(t, sess, out, conv, "pre-3"); ack.Seq != 3 || !ack.Dup {
		t.Fatalf("resend of pre-3 acked %+v", ack)
	}
	if ack := sendAndAck(t, sess, out, conv, "m3"); ack.Seq != 5 {
		t.Fatalf("next seq %d, want 5", ack.Seq)
	}
	if got := seqs(t, n, conv); !slices.Equal(got, gapless(5)) {
		t.Fatalf("stored seqs %v", got)
	}
}

// TestDuplicateOutsideWindow: a resend of a message older than the
// in-memory window is recognised by the store and acked with its seq.
func TestDuplicateOutsideWindow(t *testing.T) {
	n := startNode(t, func(d *actors.Deps) { d.Recent = 10 })
	conv := newConv(t, n)
	out := make(outbox, 1000)
	sess := n.client.StartSession(customer, out)
	defer sess.Stop()
	for i := range 30 {
		sendAndAck(t, sess, out, conv, fmt.Sprintf("m%d", i))
	}
	if ack := sendAndAck(t, sess, out, conv, "m0"); ack.Seq != 1 || !ack.Dup {
		t.Fatalf("resend of m0 acked %+v", ack)
	}
	if ack := sendAndAck(t, sess, out, conv, "m30"); ack.Seq != 31 {
		t.Fatalf("next message got seq %d, want 31", ack.Seq)
	}
	if got := seqs(t, n, conv); !slices.Equal(got, gapless(31)) {
		t.Fatalf("stored seqs %v", got)
	}
}

// TestPassivationAndReactivation: an idle conversation unloads itself and
// the next request loads it again with its sequence intact.
func TestPassivationAndReactivation(t *testing.T) {
	n := startNode(t, func(d *actors.Deps) { d.IdleTimeout = 50 * time.Millisecond })
	conv := newConv(t, n)
	out := make(outbox, 100)
	sess := n.client.StartSession(customer, out)
	sendAndAck(t, sess, out, conv, "m1")
	sendAndAck(t, sess, out, conv, "m2")
	sess.Stop() // nobody subscribed: free to passivate
	active := func() float64 {
		mfs, _ := n.metrics.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "kefu_conversations_active" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}
	deadline := time.Now().Add(10 * time.Second)
	for active() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("conversation did not passivate (active=%v)", active())
		}
		time.Sleep(10 * time.Millisecond)
	}
	page, err := n.client.History(context.Background(), agent, conv, 0, 50)
	if err != nil || len(page.Messages) != 2 || page.LastSeq != 2 {
		t.Fatalf("after reactivation: %+v, %v", page, err)
	}
	sess2 := n.client.StartSession(customer, out)
	defer sess2.Stop()
	if ack := sendAndAck(t, sess2, out, conv, "m3"); ack.Seq != 3 {
		t.Fatalf("after reactivation the next seq is %d", ack.Seq)
	}
}

// TestTenantScoping: a conversation cannot be reached through another
// tenant, and a customer cannot read another customer's conversation.
func TestTenantScoping(t *testing.T) {
	n := startNode(t, nil)
	conv := newConv(t, n)
	ctx := context.Background()
	other := actors.Caller{Tenant: "t2", Party: agent.Party, StaffRole: engine.StaffAdmin}
	if _, err := n.client.History(ctx, other, conv, 0, 10); engine.CodeOf(err) != engine.CodeNotFound {
		t.Fatalf("cross-tenant history: %v", err)
	}
	stranger := actors.Caller{Tenant: "t1", Party: engine.Party{Role: engine.RoleUser, ID: "u2"}}
	if _, err := n.client.History(ctx, stranger, conv, 0, 10); engine.CodeOf(err) != engine.CodeNotFound {
		t.Fatalf("another customer's history: %v", err)
	}
	if _, err := n.client.History(ctx, agent, conv, 0, 10); err != nil {
		t.Fatalf("staff of the tenant: %v", err)
	}
}

// TestListInvited: staff list the conversations they are invited to as
// they list their own, with or without a state; an agent may not list
// another's invitations, a supervisor another's only in their groups.
func TestListInvited(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	sup := supervisor
	sup.Groups = []string{"g1"}
	for i, c := range []engine.Conversation{
		{ID: "c1", AgentID: "a1", Group: "g1", Invited: []string{"a2"}, State: engine.StateAssigned},
		{ID: "c2", AgentID: "a3", Group: "g2", Invited: []string{"a1"}, State: engine.StateAssigned},
		{ID: "c3", AgentID: "a2", Group: "g1", Invited: []string{"a1"}, State: engine.StateOnHold},
		{ID: "c4", AgentID: "a1", Group: "g2", Invited: []string{sup.Party.ID}, State: engine.StateAssigned},
	} {
		c.Tenant, c.UserID, c.CreatedAt = "t1", "u1", time.UnixMilli(int64(i+1)*1000)
		if err := n.store.CreateConversation(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		caller actors.Caller
		q      engine.ConversationQuery
		want   string // the ids listed, or the error code
	}{
		{"an agent's invitations", agent, engine.ConversationQuery{InvitedID: "a1"}, "[c3 c2]"},
		{"an agent's invitations in a state", agent, engine.ConversationQuery{InvitedID: "a1", State: engine.StateAssigned}, "[c2]"},
		{"an agent's invitations from an owner", agent, engine.ConversationQuery{InvitedID: "a1", AgentID: "a3"}, "[c2]"},
		{"owned by and invited to an agent", agent, engine.ConversationQuery{InvitedID: "a1", AgentID: "a1"}, "[]"},
		{"an agent lists another's invitations", agent, engine.ConversationQuery{InvitedID: "a2"}, string(engine.CodeForbidden)},
		{"a supervisor's invitations, outside their groups", sup, engine.ConversationQuery{InvitedID: sup.Party.ID}, "[c4]"},
		{"a supervisor lists another's invitations", sup, engine.ConversationQuery{InvitedID: "a1"}, "[c3]"},
		{"a supervisor lists another's invitations in another group", sup, engine.ConversationQuery{InvitedID: "a1", Group: "g2"}, string(engine.CodeForbidden)},
		{"an admin lists anyone's invitations", admin, engine.ConversationQuery{InvitedID: "a1"}, "[c3 c2]"},
		{"a customer", customer, engine.ConversationQuery{InvitedID: "a1"}, string(engine.CodeForbidden)},
	} {
		convs, err := n.client.ListConversations(ctx, tc.caller, tc.q)
		got := string(engine.CodeOf(err))
		if err == nil {
			ids := []string{}
			for _, c := range convs {
				ids = append(ids, c.ID)
			}
			got = fmt.Sprint(ids)
		}
		if got != tc.want {
			t.Errorf("%s: %s (%v), want %s", tc.name, got, err, tc.want)
		}
	}
}

// BenchmarkActivation measures activating a conversation that has 50
// stored messages, including their reload, up to its first answer.
func BenchmarkActivation(b *testing.B) {
	n := startNode(b, nil)
	ctx := context.Background()
	convs := make([]string, b.N)
	for i := range convs {
		conv := engine.NewID(time.Now())
		if err := n.store.CreateConversation(ctx, engine.Conversation{Tenant: "t1", ID: conv, UserID: "u1", State: engine.StateBot, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
		storeMessages(b, n.store, conv, 1, 50)
		convs[i] = conv
	}
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i, conv := range convs {
		start := time.Now()
		page, err := n.client.History(ctx, customer, conv, 49, 10)
		lat[i] = time.Since(start)
		if err != nil || len(page.Messages) != 1 {
			b.Fatalf("history: %+v %v", page, err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
