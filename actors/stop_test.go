package actors_test

// What actors store when they stop: the node shuts down while writes are
// running and more wait behind them.

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storetest"
)

// logWatch is a slog handler that closes seen at the first record whose
// message is msg.
type logWatch struct {
	msg  string
	seen chan struct{}
	once sync.Once
}

func watchLog(msg string) *logWatch { return &logWatch{msg: msg, seen: make(chan struct{})} }

func (h *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logWatch) WithGroup(string) slog.Handler            { return h }
func (h *logWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.seen) })
	}
	return nil
}

// finishing is what an actor logs as it starts finishing its writes on stop.
const finishing = "finishing store writes before stopping"

// startHeldNode starts a node whose store holds the actors' write-behind
// calls while shut, and whose log tells when an actor starts finishing its
// writes as it stops.
func startHeldNode(t *testing.T) (*testNode, *storetest.Held, *logWatch) {
	held, logs := &storetest.Held{}, watchLog(finishing)
	n := startNode(t, func(d *actors.Deps) {
		held.Store = d.Store
		d.Store = held
		d.Logger = slog.New(logs)
	})
	return n, held, logs
}

// mapped returns f of each of xs.
func mapped[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

// shutdownReleasing shuts the node down while release holds the actors'
// store writes: it opens release once an actor has started finishing its
// writes (seen) or, should none ever start, once Shutdown has returned, and
// then waits for Shutdown.
func shutdownReleasing(t *testing.T, n *testNode, seen <-chan struct{}, release chan struct{}) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		n.node.Shutdown()
		close(done)
	}()
	select {
	case <-seen:
	case <-done:
	}
	close(release)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the node did not shut down")
	}
}

// TestStopFinishesConversationWrites: conversations that stop while their
// first state and timer writes are running, with more changes queued behind
// them, store every change in order before the node's Shutdown returns:
// the events, the final header (a rating included) and the timers as they
// are in memory.
func TestStopFinishesConversationWrites(t *testing.T) {
	n, held, logs := startHeldNode(t)
	ctx := context.Background()
	release := held.Shut()
	type op struct {
		by actors.Caller
		op *actorpb.ConvOp
	}
	accept := op{agent, &actorpb.ConvOp{Op: actors.OpAccept}} // its state and timer writes wait for the gate
	hold, unhold := op{agent, &actorpb.ConvOp{Op: actors.OpHold}}, op{agent, &actorpb.ConvOp{Op: actors.OpUnhold}}
	cases := []struct {
		ops    []op
		events []engine.EventType
		state  engine.ConvState
		rating int // 0: none
		timers []engine.TimerKind
		conv   string
	}{
		{
			ops: []op{accept, hold, unhold, {agent, &actorpb.ConvOp{Op: actors.OpClose, Reason: "resolved"}},
				{customer, &actorpb.ConvOp{Op: actors.OpRate, Score: 4}}},
			events: []engine.EventType{engine.EventTakenOver, engine.EventHeld, engine.EventUnheld, engine.EventClosed, engine.EventRated},
			state:  engine.StateClosed, rating: 4,
		},
		{
			ops:    []op{accept, hold},
			events: []engine.EventType{engine.EventTakenOver, engine.EventHeld},
			state:  engine.StateOnHold, timers: []engine.TimerKind{engine.TimerHoldExpiry},
		},
	}
	for i, tc := range cases {
		cases[i].conv = newConv(t, n)
		for _, o := range tc.ops {
			if _, err := n.client.Op(ctx, o.by, cases[i].conv, o.op); err != nil {
				t.Fatalf("%s: %v", o.op.Op, err)
			}
		}
	}
	shutdownReleasing(t, n, logs.seen, release)

	for _, tc := range cases {
		events, err := n.store.Events(ctx, "t1", tc.conv)
		if types := mapped(events, func(e engine.ConvEvent) engine.EventType { return e.Type }); err != nil || !slices.Equal(types, tc.events) {
			t.Errorf("%s: events stored %v (%v), want %v", tc.conv, types, err, tc.events)
		}
		c, err := n.store.Conversation(ctx, "t1", tc.conv)
		if err != nil {
			t.Fatal(err)
		}
		rating := 0
		if c.Rating != nil {
			rating = c.Rating.Score
		}
		if c.State != tc.state || rating != tc.rating {
			t.Errorf("%s: header stored %s rated %d, want %s rated %d", tc.conv, c.State, rating, tc.state, tc.rating)
		}
		timers, err := n.store.Timers(ctx, "t1", tc.conv)
		if kinds := mapped(timers, func(tm engine.Timer) engine.TimerKind { return tm.Kind }); err != nil || !slices.Equal(kinds, tc.timers) {
			t.Errorf("%s: timers stored %v (%v), want %v", tc.conv, kinds, err, tc.timers)
		}
	}
}

// TestStopFinishesSignInWrites: an agent's actor that stops while a sign-in
// write is running (a logout's revocation), with another queued behind it
// (a failed login's count), stores both before the node's Shutdown returns,
// and answers the logout that waited for its write.
func TestStopFinishesSignInWrites(t *testing.T) {
	n, held, logs := startHeldNode(t)
	ctx := context.Background()
	in := signIn(t, n)
	release := held.Shut()
	caller := actors.Caller{Tenant: "t1", Party: agent.Party, StaffRole: engine.StaffAgent, Session: in.Session}
	loggedOut := make(chan error, 1)
	go func() { loggedOut <- n.client.Logout(ctx, caller, agent.Party.ID, false) }()
	pollFor(t, 10*time.Second, "the session revoked", func() bool {
		_, err := n.client.CheckSession(ctx, caller)
		return engine.CodeOf(err) == engine.CodeUnauthenticated
	})
	if _, err := n.client.Login(ctx, "t1", "a1", "not-the-password", "127.0.0.1", "test"); engine.CodeOf(err) != engine.CodeUnauthenticated {
		t.Fatalf("a wrong password: %v", err)
	}
	shutdownReleasing(t, n, logs.seen, release)

	if err := <-loggedOut; err != nil {
		t.Errorf("the logout was not answered: %v", err)
	}
	sessions, err := n.store.StaffSessions(ctx, "t1", agent.Party.ID)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(sessions, func(s engine.StaffSession) bool { return s.ID == in.Session }); i < 0 || sessions[i].RevokedAt.IsZero() {
		t.Errorf("the revocation was not stored: %+v", sessions)
	}
	if ls, err := n.store.LoginState(ctx, "t1", agent.Party.ID); err != nil || ls.FailedLogins != 1 {
		t.Errorf("login state stored %+v (%v), want one failed login", ls, err)
	}
}

// TestStopFinishesAuditWrites: a tenant actor that stops while an audit
// write is running, with more entries queued behind it, stores them all
// before the node's Shutdown returns.
func TestStopFinishesAuditWrites(t *testing.T) {
	st := &auditStore{entered: make(chan struct{}), release: make(chan struct{})}
	logs := watchLog(finishing)
	n := startNode(t, withAuditStore(st, slog.New(logs)))
	ctx := context.Background()
	const k = 10
	for i := range k {
		if err := n.client.RecordAudit(ctx, "t1", viewedEntry(i)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-st.entered // the first is being written; the others queue
		}
	}
	shutdownReleasing(t, n, logs.seen, st.release)

	got, err := n.store.AuditLog(ctx, "t1", engine.AuditQuery{Limit: engine.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != k {
		t.Errorf("%d audit entries stored, want %d", len(got), k)
	}
	if sizes := st.callSizes(); !slices.Equal(sizes, []int{1, k - 1}) {
		t.Errorf("AppendAudit calls of %v entries, want [1 %d]", sizes, k-1)
	}
}
