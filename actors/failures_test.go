package actors_test

// Failure paths of the conversation and session actors, provoked through a
// store that fails or holds calls on demand.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/auth"
	"github.com/kefu-dev/kefu/bots"
	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/sqlite"
	"github.com/kefu-dev/kefu/store/storetest"
)

// faultStore wraps the real store to inject failures and hold calls.
type faultStore struct {
	*sqlite.Store

	// appendFail, if set, may fail an Append before it reaches the store.
	appendFail func(msgs []engine.Message) error
	// appendHold: an Append whose first client_msg_id is holdID waits for
	// holdRelease; holdEntered is closed when it arrives.
	holdID      string
	holdPrefix  bool // holdID is a prefix of the client_msg_id
	holdEntered chan struct{}
	holdRelease chan struct{}
	holdOnce    sync.Once

	// appendTimersFail: the next Append stores its messages but not their
	// timer changes, and fails (as MongoDB may, which writes them after).
	appendTimersFail atomic.Bool

	appendCalls struct { // every Append call's messages and timer changes
		sync.Mutex
		calls []appendCall
	}
	setTimersDone atomic.Int32 // SetTimers calls returned

	recentFails atomic.Int32 // fail this many Recent calls
	updateFail  atomic.Bool  // fail every UpdateConversation
	sessionFail atomic.Bool  // fail every PutSession

	faqGate   chan struct{} // if non-nil, FAQEntries waits for it
	faqCalled chan struct{} // if non-nil, gets a value per FAQEntries call

	groupsGate  chan struct{} // if non-nil, Groups waits for it
	groupsCalls atomic.Int32
}

func (f *faultStore) Groups(ctx context.Context, tenant string) ([]engine.SkillGroup, error) {
	f.groupsCalls.Add(1)
	if err := storetest.Pass(ctx, f.groupsGate); err != nil {
		return nil, err
	}
	return f.Store.Groups(ctx, tenant)
}

// appendCall is what one Append was given.
type appendCall struct {
	ids    []string // client_msg_ids
	timers []engine.TimerChange
}

func (f *faultStore) Append(ctx context.Context, msgs []engine.Message, timers ...engine.TimerChange) (int, error) {
	call := appendCall{timers: slices.Clone(timers)}
	for _, m := range msgs {
		call.ids = append(call.ids, m.ClientMsgID)
	}
	f.appendCalls.Lock()
	f.appendCalls.calls = append(f.appendCalls.calls, call)
	f.appendCalls.Unlock()
	if f.holdID != "" && len(msgs) > 0 && (msgs[0].ClientMsgID == f.holdID || f.holdPrefix && strings.HasPrefix(msgs[0].ClientMsgID, f.holdID)) {
		f.holdOnce.Do(func() { close(f.holdEntered) })
		<-f.holdRelease
	}
	if f.appendFail != nil {
		if err := f.appendFail(msgs); err != nil {
			return 0, err
		}
	}
	if f.appendTimersFail.CompareAndSwap(true, false) {
		n, err := f.Store.Append(ctx, msgs)
		if err == nil {
			err = errors.New("injected: the messages are stored, their timers not")
		}
		return n, err
	}
	return f.Store.Append(ctx, msgs, timers...)
}

func (f *faultStore) SetTimers(ctx context.Context, tenant, conv string, changes ...engine.TimerChange) error {
	defer f.setTimersDone.Add(1)
	return f.Store.SetTimers(ctx, tenant, conv, changes...)
}

func (f *faultStore) Recent(ctx context.Context, tenant, conv string, n int) ([]engine.Message, error) {
	if f.recentFails.Add(-1) >= 0 {
		return nil, errors.New("injected: recent failed")
	}
	return f.Store.Recent(ctx, tenant, conv, n)
}

func (f *faultStore) UpdateConversation(ctx context.Context, c engine.Conversation, ev engine.ConvEvent) error {
	if f.updateFail.Load() {
		return errors.New("injected: update failed")
	}
	return f.Store.UpdateConversation(ctx, c, ev)
}

func (f *faultStore) PutSession(ctx context.Context, s engine.StaffSession) error {
	if f.sessionFail.Load() {
		return errors.New("injected: session write failed")
	}
	return f.Store.PutSession(ctx, s)
}

func (f *faultStore) FAQEntries(ctx context.Context, tenant string) ([]engine.FAQEntry, error) {
	if f.faqCalled != nil {
		f.faqCalled <- struct{}{}
	}
	if err := storetest.Pass(ctx, f.faqGate); err != nil {
		return nil, err
	}
	return f.Store.FAQEntries(ctx, tenant)
}

func withFaults(fs *faultStore) func(*actors.Deps) {
	return func(d *actors.Deps) {
		fs.Store = d.Store.(*sqlite.Store)
		fs.recentFails.Store(0)
		d.Store = fs
	}
}

type anyFrame struct {
	Type        string         `json:"type"`
	Code        string         `json:"code"`
	ClientMsgID string         `json:"client_msg_id"`
	Seq         int64          `json:"seq"`
	Dup         bool           `json:"dup"`
	TS          int64          `json:"ts"`
	State       string         `json:"state"`
	Msg         engine.Message `json:"msg"`
	raw         string
}

// waitFrame returns the first frame satisfying pred, or ok=false after d.
func waitFrame(out outbox, d time.Duration, pred func(anyFrame) bool) (anyFrame, bool) {
	deadline := time.After(d)
	for {
		select {
		case b := <-out:
			var f anyFrame
			_ = json.Unmarshal(b, &f)
			f.raw = string(b)
			if pred(f) {
				return f, true
			}
		case <-deadline:
			return anyFrame{}, false
		}
	}
}

// metric returns the value of a gauge or counter of the node, summed over
// its labels.
func metric(t *testing.T, n *testNode, name string) float64 {
	t.Helper()
	mfs, err := n.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}

// waitMetric polls until the metric has value want.
func waitMetric(t *testing.T, n *testNode, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, n, name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, metric(t, n, name), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func resumeAllFrames(t *testing.T, sess *actors.Session, out outbox, conv string) {
	t.Helper()
	last := int64(0)
	sess.Deliver(engine.ClientFrame{Type: engine.FrameResume, Conv: conv, LastSeq: &last})
	if _, ok := waitFrame(out, 5*time.Second, func(f anyFrame) bool { return f.Type == "history" }); !ok {
		t.Fatal("no history page")
	}
}

// Escalate and assist on a conversation that does not exist are answered
// with not_found at once, not left to time out.
func TestAssistUnknownConversationIsNotFound(t *testing.T) {
	n := startNode(t, nil)
	cl := actors.NewClient(n.node.Cluster, 300*time.Millisecond, nil)
	start := time.Now()
	_, _, err := cl.Assist(context.Background(), agent, "no-such-conv", 3)
	if engine.CodeOf(err) != engine.CodeNotFound {
		t.Errorf("Assist on an unknown conversation: code %q after %v (err %v), want not_found", engine.CodeOf(err), time.Since(start).Round(time.Millisecond), err)
	}

	out := make(outbox, 100)
	sess := n.client.StartSession(customer, out)
	defer sess.Stop()
	start = time.Now()
	sess.Deliver(engine.ClientFrame{Type: engine.FrameEscalate, Conv: "no-such-conv-2"})
	f, ok := waitFrame(out, 20*time.Second, func(f anyFrame) bool { return f.Type == "error" })
	if !ok || f.Code != string(engine.CodeNotFound) {
		t.Errorf("escalate on an unknown conversation: %s after %v, want a not_found error", f.raw, time.Since(start).Round(time.Millisecond))
	}
}

// A client_msg_id another participant already used in the conversation is
// refused with invalid_field: never acked as the other's message, never
// stored, and it takes nothing over.
func TestClientMsgIDOfAnotherSenderIsRefused(t *testing.T) {
	n := startNode(t, nil)
	conv := newConv(t, n)
	cout := make(outbox, 100)
	cs := n.client.StartSession(customer, cout)
	defer cs.Stop()
	if ack := sendAndAck(t, cs, cout, conv, "c-1"); ack.Seq != 1 {
		t.Fatalf("customer seq %d", ack.Seq)
	}
	aout := make(outbox, 100)
	as := n.client.StartSession(agent, aout)
	defer as.Stop()
	as.Deliver(engine.ClientFrame{Type: engine.FrameSend, Conv: conv, ClientMsgID: "c-1", Body: &engine.Body{Type: engine.BodyText, Text: "agent"}})
	f, ok := waitFrame(aout, 5*time.Second, func(f anyFrame) bool { return f.Type == "error" || f.Type == "ack" })
	if !ok || f.Type != "error" || !strings.Contains(f.raw, `"invalid_field"`) {
		t.Fatalf("agent's send with the customer's client_msg_id: %s", f.raw)
	}
	msgs, _ := n.store.Messages(context.Background(), "t1", conv, 0, 100)
	page, _ := n.client.History(context.Background(), agent, conv, 0, 10)
	if len(msgs) != 1 || page.State != engine.StateBot {
		t.Fatalf("after the refused send: %d messages stored, state %s; want 1 and BOT", len(msgs), page.State)
	}
	if ack := sendAndAck(t, as, aout, conv, "a-1"); ack.Seq != 2 || ack.Dup {
		t.Fatalf("the agent's next send: %+v", ack)
	}
}

// A send followed at once by leave is still answered: the requests waiting
// on the conversation's lookup run after it even though leave dropped the
// link.
func TestLeaveWhileResolvingAnswersSend(t *testing.T) {
	n := startNode(t, nil)
	out := make(outbox, 1000)
	sess := n.client.StartSession(customer, out)
	defer sess.Stop()
	const k = 20
	for i := range k {
		conv := newConv(t, n)
		sess.Deliver(engine.ClientFrame{Type: engine.FrameSend, Conv: conv, ClientMsgID: fmt.Sprintf("m%d", i), Body: &engine.Body{Type: engine.BodyText, Text: "hi"}})
		sess.Deliver(engine.ClientFrame{Type: engine.FrameLeave, Conv: conv})
	}
	answered := 0
	deadline := time.After(3 * time.Second)
loop:
	for answered < k {
		select {
		case b := <-out:
			if s := string(b); strings.Contains(s, `"type":"ack"`) || strings.Contains(s, `"type":"error"`) {
				answered++
			}
		case <-deadline:
			break loop
		}
	}
	if answered != k {
		t.Errorf("%d of %d sends followed by leave were never answered (no ack, no error)", k-answered, k)
	}
}

// When a conversation activation stops while sessions are subscribed
// (here: every re-read after a failed write fails; likewise a cluster
// rebalance), the sessions subscribe to the next activation and receive
// what is stored there.
func TestSubscriptionSurvivesActivationStop(t *testing.T) {
	fs := &faultStore{}
	fs.appendFail = func(msgs []engine.Message) error {
		if msgs[0].ClientMsgID == "boom" {
			fs.recentFails.Store(6) // and every re-read that follows, until it gives up
			return errors.New("injected: append failed")
		}
		return nil
	}
	n := startNode(t, withFaults(fs))
	conv := newConv(t, n)

	out1 := make(outbox, 100)
	dev1 := n.client.StartSession(customer, out1)
	defer dev1.Stop()
	resumeAllFrames(t, dev1, out1, conv)
	dev1.Deliver(engine.ClientFrame{Type: engine.FrameSend, Conv: conv, ClientMsgID: "boom", Body: &engine.Body{Type: engine.BodyText, Text: "x"}})
	if f, ok := waitFrame(out1, 5*time.Second, func(f anyFrame) bool { return f.Type == "error" || f.Type == "ack" }); !ok || f.Type != "error" {
		t.Fatalf("boom: %s", f.raw)
	}
	// The activation gives up and stops; device 1's session notices and
	// subscribes to a new one, whose load is the first re-read to succeed.
	deadline := time.Now().Add(10 * time.Second)
	for fs.recentFails.Load() >= 0 {
		if time.Now().After(deadline) {
			t.Fatal("no new activation after the old one gave up")
		}
		time.Sleep(10 * time.Millisecond)
	}

	out2 := make(outbox, 100)
	dev2 := n.client.StartSession(customer, out2)
	defer dev2.Stop()
	ack := sendAndAck(t, dev2, out2, conv, "from-dev2")
	if _, ok := waitFrame(out1, 3*time.Second, func(f anyFrame) bool { return f.Type == "message" && f.Msg.Seq == ack.Seq }); !ok {
		t.Errorf("device 1 is still subscribed as far as it knows, but never received seq %d stored from device 2", ack.Seq)
	}
}

// A bot reply already queued (behind a write in flight) when a member of
// staff takes over is dropped: the bot never speaks after the takeover.
func TestQueuedBotReplyDroppedOnTakeover(t *testing.T) {
	fs := &faultStore{holdID: "hold", holdEntered: make(chan struct{}), holdRelease: make(chan struct{}), faqGate: make(chan struct{})}
	n := startNode(t, func(d *actors.Deps) {
		withFaults(fs)(d)
		d.Bot = bots.New(bots.Config{})
	})
	conv := newConv(t, n)
	cout := make(outbox, 100)
	cs := n.client.StartSession(customer, cout)
	defer cs.Stop()
	resumeAllFrames(t, cs, cout, conv)
	sendAndAck(t, cs, cout, conv, "q1") // the bot's turn now waits for the knowledge base
	cs.Deliver(engine.ClientFrame{Type: engine.FrameSend, Conv: conv, ClientMsgID: "hold", Body: &engine.Body{Type: engine.BodyText, Text: "还在吗"}})
	<-fs.holdEntered                              // "hold" is the write in flight
	close(fs.faqGate)                             // the bot answers q1: its reply queues behind "hold"
	waitMetric(t, n, "kefu_bot_replies_total", 1) // counted as it is queued
	aout := make(outbox, 100)
	as := n.client.StartSession(agent, aout)
	defer as.Stop()
	as.Deliver(engine.ClientFrame{Type: engine.FrameSend, Conv: conv, ClientMsgID: "a1", Body: &engine.Body{Type: engine.BodyText, Text: "您好，我是客服"}})
	if _, ok := waitFrame(cout, 5*time.Second, func(f anyFrame) bool { return f.Type == "state" && f.State == "ASSIGNED" }); !ok {
		t.Fatal("no takeover")
	}
	close(fs.holdRelease)
	if _, ok := waitFrame(aout, 5*time.Second, func(f anyFrame) bool { return f.Type == "ack" && f.ClientMsgID == "a1" }); !ok {
		t.Fatal("no ack for a1")
	}
	msgs, _ := n.store.Messages(context.Background(), "t1", conv, 0, 100)
	var order []string
	for _, m := range msgs {
		order = append(order, fmt.Sprintf("%d:%s/%s", m.Seq, m.From.Role, m.ClientMsgID))
	}
	for _, m := range msgs {
		if m.From.Role == engine.RoleBot {
			t.Errorf("the bot's reply was stored after the takeover: %v", order)
		}
	}
}

// A takeover whose state write fails is retried until stored, and the
// conversation stays loaded meanwhile: it never comes back as BOT, and the
// bot never answers.
func TestTakeoverSurvivesStateWriteFailure(t *testing.T) {
	fs := &faultStore{faqCalled: make(chan struct{}, 10)}
	fs.updateFail.Store(true)
	n := startNode(t, func(d *actors.Deps) {
		withFaults(fs)(d)
		d.Bot = bots.New(bots.Config{})
		d.IdleTimeout = 100 * time.Millisecond
	})
	conv := newConv(t, n)
	aout := make(outbox, 100)
	as := n.client.StartSession(agent, aout)
	sendAndAck(t, as, aout, conv, "a1") // takes the conversation over: BOT -> ASSIGNED
	as.Stop()
	cout := make(outbox, 100)
	cs := n.client.StartSession(customer, cout)
	defer cs.Stop()
	sendAndAck(t, cs, cout, conv, "q1") // still loaded, still ASSIGNED: no bot turn
	fs.updateFail.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, _ := n.store.Conversation(context.Background(), "t1", conv); c.State == engine.StateAssigned {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the state change was never stored")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cs.Stop()
	waitMetric(t, n, "kefu_conversations_active", 0) // now it may unload
	cs2 := n.client.StartSession(customer, cout)
	defer cs2.Stop()
	sendAndAck(t, cs2, cout, conv, "q2") // reloaded as ASSIGNED
	// A bot turn would first build the knowledge index: none may start.
	select {
	case <-fs.faqCalled:
		t.Fatal("the bot answered although a member of staff owns the conversation")
	case <-time.After(500 * time.Millisecond): // a bounded look for something that must not happen
	}
	if msgs, _ := n.store.Messages(context.Background(), "t1", conv, 0, 100); len(msgs) != 3 {
		t.Fatalf("%d messages stored, want a1, q1, q2", len(msgs))
	}
}

// A transient failure of the bot's write does not lose the reply, nor the
// hand-over it announces: bot messages are written again after the re-read.
func TestBotHandOverSurvivesTransientWriteError(t *testing.T) {
	fs := &faultStore{}
	var failed atomic.Bool
	fs.appendFail = func(msgs []engine.Message) error {
		if msgs[0].From.Role == engine.RoleBot && failed.CompareAndSwap(false, true) {
			return errors.New("injected: transient write error")
		}
		return nil
	}
	n := startNode(t, func(d *actors.Deps) {
		withFaults(fs)(d)
		d.Bot = bots.New(bots.Config{})
	})
	conv := newConv(t, n)
	cout := make(outbox, 100)
	cs := n.client.StartSession(customer, cout)
	defer cs.Stop()
	cs.Deliver(engine.ClientFrame{Type: engine.FrameSend, Conv: conv, ClientMsgID: "q1", Body: &engine.Body{Type: engine.BodyText, Text: "转人工"}})
	if _, ok := waitFrame(cout, 5*time.Second, func(f anyFrame) bool { return f.Type == "ack" }); !ok {
		t.Fatal("no ack")
	}
	// (the session is not subscribed; poll the conversation instead)
	deadline := time.Now().Add(3 * time.Second)
	var page actors.HistoryPage
	for time.Now().Before(deadline) {
		page, _ = n.client.History(context.Background(), agent, conv, 0, 10)
		if page.State == engine.StateQueued {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("after '转人工' and one failed bot write: state %s, %d messages (want QUEUED and the hand-over message)", page.State, len(page.Messages))
}

// An ack for a duplicate found by the store (outside the window) carries
// the original's time.
func TestDupAckOutsideWindowHasTS(t *testing.T) {
	n := startNode(t, func(d *actors.Deps) { d.Recent = 2 })
	conv := newConv(t, n)
	out := make(outbox, 1000)
	sess := n.client.StartSession(customer, out)
	defer sess.Stop()
	first := sendAndAck(t, sess, out, conv, "m0")
	for i := 1; i < 6; i++ {
		sendAndAck(t, sess, out, conv, fmt.Sprintf("m%d", i))
	}
	ack := sendAndAck(t, sess, out, conv, "m0")
	if !ack.Dup || ack.TS != first.TS {
		t.Errorf("dup ack %+v, want ts %d like the original ack", ack, first.TS)
	}
}

// lateStore lets one Append time out for its caller and land in the store
// only after the reload that follows has read the store.
type lateStore struct {
	*sqlite.Store
	lateID   string
	afterGet chan struct{}
	once     sync.Once
	landed   chan struct{}
}

func (s *lateStore) Append(ctx context.Context, msgs []engine.Message, timers ...engine.TimerChange) (int, error) {
	if msgs[0].ClientMsgID == s.lateID {
		s.once.Do(func() {
			go func() {
				<-s.afterGet
				_, _ = s.Store.Append(context.Background(), msgs, timers...)
				close(s.landed)
			}()
		})
		if s.landed != nil {
			select {
			case <-s.landed:
				return s.Store.Append(ctx, msgs, timers...)
			default:
			}
		}
		return 0, context.DeadlineExceeded
	}
	return s.Store.Append(ctx, msgs, timers...)
}

func (s *lateStore) Recent(ctx context.Context, tenant, conv string, n int) ([]engine.Message, error) {
	m, err := s.Store.Recent(ctx, tenant, conv, n)
	select {
	case <-s.afterGet:
	default:
		close(s.afterGet)
	}
	return m, err
}

// a write that timed out for the actor but landed after its reload
// is later acked (dup) with seq N while the actor's lastSeq stays N-1: a
// resume or read with last_seq N is refused with seq_ahead.
func TestLateLandingWriteKeepsLastSeq(t *testing.T) {
	ls := &lateStore{lateID: "late", landed: make(chan struct{})}
	n := startNode(t, func(d *actors.Deps) {
		ls.Store = d.Store.(*sqlite.Store)
		d.Store = ls
	})
	conv := newConv(t, n)
	// The activation has loaded (its Recent call happened during load):
	// re-arm afterGet for the reload after the failed write.
	ls.afterGet = make(chan struct{})
	out := make(outbox, 100)
	sess := n.client.StartSession(customer, out)
	defer sess.Stop()
	sess.Deliver(engine.ClientFrame{Type: engine.FrameSend, Conv: conv, ClientMsgID: "late", Body: &engine.Body{Type: engine.BodyText, Text: "x"}})
	if f, ok := waitFrame(out, 5*time.Second, func(f anyFrame) bool { return f.Type == "error" || f.Type == "ack" }); !ok || f.Type != "error" {
		t.Fatalf("first try: %s", f.raw)
	}
	<-ls.landed
	ack := sendAndAck(t, sess, out, conv, "late") // the client resends, as told
	if ack.Seq != 1 {
		t.Fatalf("resend acked %+v", ack)
	}
	last := ack.Seq
	sess.Deliver(engine.ClientFrame{Type: engine.FrameResume, Conv: conv, LastSeq: &last})
	f, _ := waitFrame(out, 5*time.Second, func(f anyFrame) bool { return f.Type == "history" || f.Type == "error" })
	if f.Type != "history" {
		t.Errorf("resume with the acked seq %d: %s", last, f.raw)
	}
}

// signIn gives the agent of these tests a password and signs them in. It
// must come before anything activates the agent's actor, which reads the
// password once.
func signIn(t *testing.T, n *testNode) actors.SignIn {
	t.Helper()
	ctx := context.Background()
	hash, err := auth.HashPassword("a1-password-1")
	if err != nil {
		t.Fatal(err)
	}
	staff, err := n.store.StaffByID(ctx, "t1", agent.Party.ID)
	if err != nil {
		t.Fatal(err)
	}
	staff.PasswordHash = hash
	if err := n.store.UpdateStaff(ctx, staff); err != nil {
		t.Fatal(err)
	}
	in, err := n.client.Login(ctx, "t1", "a1", "a1-password-1", "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// A refresh whose session write fails leaves the old refresh token valid:
// the client never got the new one, so its retry is not a reuse and must
// not revoke the session.
func TestRefreshSurvivesSessionWriteFailure(t *testing.T) {
	fs := &faultStore{}
	n := startNode(t, withFaults(fs))
	ctx := context.Background()
	in := signIn(t, n)
	rt, err := auth.ParseRefreshToken(in.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}

	fs.sessionFail.Store(true)
	if _, err := n.client.Refresh(ctx, "t1", rt.StaffID, rt.Session, rt.Secret, "127.0.0.1"); engine.CodeOf(err) != engine.CodeUnavailable {
		t.Fatalf("refresh with a failing store = %v, want unavailable", err)
	}
	fs.sessionFail.Store(false)
	next, err := n.client.Refresh(ctx, "t1", rt.StaffID, rt.Session, rt.Secret, "127.0.0.1")
	if err != nil {
		t.Fatalf("the retry with the same refresh token was refused: %v", err)
	}
	if next.Session != in.Session {
		t.Errorf("the retry moved to session %s, want %s", next.Session, in.Session)
	}
	if _, err := n.client.CheckSession(ctx, actors.Caller{Tenant: "t1", Party: agent.Party, StaffRole: engine.StaffAgent, Session: in.Session}); err != nil {
		t.Errorf("the session was revoked: %v", err)
	}
}

// A conversation created in this activation times its timers with the
// tenant's settings, as one loaded from the store does: the customer-idle
// warning an agent's reply arms is due after the tenant's delay, not at
// once (which warned and closed new conversations within seconds).
func TestNewConversationTimersUseSettings(t *testing.T) {
	n := startNode(t, nil)
	conv := newConv(t, n)
	aout := make(outbox, 100)
	as := n.client.StartSession(agent, aout)
	defer as.Stop()
	reply := sendAndAck(t, as, aout, conv, "a1") // takes it over: the customer's idle timer starts
	want := time.UnixMilli(reply.TS).Add(engine.TenantSettings{}.WithDefaults().Timers.UserIdleWarn.D())
	due, ok := storedTimer(t, n, conv, engine.TimerUserIdleWarn)
	if !ok {
		t.Fatal("acked, and the idle timer is not stored")
	}
	if d := due.Sub(want); d < -time.Second || d > time.Second {
		t.Fatalf("idle warning due %v, want about %v (the agent's message plus the warning delay)", due, want)
	}
}

// A customer-idle timer whose write a crash lost is armed again when the
// conversation next loads, due from the message that set it.
func TestLostIdleTimerIsRestoredOnLoad(t *testing.T) {
	n := startNode(t, func(d *actors.Deps) { d.IdleTimeout = 100 * time.Millisecond })
	ctx := context.Background()
	conv := newConv(t, n)
	aout := make(outbox, 100)
	as := n.client.StartSession(agent, aout)
	reply := sendAndAck(t, as, aout, conv, "a1") // takes it over: the customer's idle timer starts
	as.Stop()
	if _, ok := storedTimer(t, n, conv, engine.TimerUserIdleWarn); !ok {
		t.Fatal("acked, and the idle timer is not stored")
	}
	waitMetric(t, n, "kefu_conversations_active", 0)
	// The crash: the message is stored, its timer is not.
	if err := n.store.SetTimers(ctx, "t1", conv, engine.TimerChange{Kind: engine.TimerUserIdleWarn}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.History(ctx, agent, conv, 0, 10); err != nil { // loads it again
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if due, ok := storedTimer(t, n, conv, engine.TimerUserIdleWarn); ok {
			want := time.UnixMilli(reply.TS).Add(engine.TenantSettings{}.WithDefaults().Timers.UserIdleWarn.D())
			if d := due.Sub(want); d < -time.Second || d > time.Second {
				t.Fatalf("restored timer due %v, want about %v (the agent's message plus the warning delay)", due, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the lost idle timer was not armed again on load")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A message is stored with the timer changes it makes, in one store call,
// so its ack means they are stored: a node that died between the two would
// leave an answered conversation that never closes, with nobody left to
// notice. The agent's reply ends the first-response clock and starts the
// customer's idle one.
func TestMessageIsStoredWithItsTimers(t *testing.T) {
	fs := &faultStore{}
	n := startNode(t, withFaults(fs))
	conv := newConv(t, n)
	aout := make(outbox, 100)
	as := n.client.StartSession(agent, aout)
	defer as.Stop()
	sendAndAck(t, as, aout, conv, "a1")
	if !hasTimer(t, n, conv, engine.TimerUserIdleWarn) {
		t.Fatal("acked, and the idle timer is not stored")
	}
	fs.appendCalls.Lock()
	defer fs.appendCalls.Unlock()
	for _, call := range fs.appendCalls.calls {
		if !slices.Contains(call.ids, "a1") {
			continue
		}
		set := make(map[engine.TimerKind]bool)
		for _, ch := range call.timers {
			set[ch.Kind] = !ch.DueAt.IsZero()
		}
		if cleared, ok := set[engine.TimerFirstResponse]; !ok || cleared || !set[engine.TimerUserIdleWarn] {
			t.Fatalf("the agent's reply was stored with the timer changes %+v; want the first-response timer removed and the idle one set", call.timers)
		}
		return
	}
	t.Fatalf("no Append stored the agent's reply: %+v", fs.appendCalls.calls)
}

// When the store keeps a batch's messages but not their timer changes
// (MongoDB writes them after the messages), the conversation stores its
// timers again before it acks.
func TestAckWaitsForTimersTheAppendDidNotStore(t *testing.T) {
	fs := &faultStore{}
	n := startNode(t, withFaults(fs))
	conv := newConv(t, n)
	aout := make(outbox, 100)
	as := n.client.StartSession(agent, aout)
	defer as.Stop()
	fs.appendTimersFail.Store(true)
	sendAndAck(t, as, aout, conv, "a1")
	if fs.appendTimersFail.Load() {
		t.Fatal("the injected failure was not reached")
	}
	if !hasTimer(t, n, conv, engine.TimerUserIdleWarn) {
		t.Fatal("acked, and the idle timer is not stored")
	}
	if hasTimer(t, n, conv, engine.TimerFirstResponse) {
		t.Fatal("acked, and the first-response timer the reply ended is still stored")
	}
}

// A message the store refuses (the sender is told to send it again) sets
// no timer: the customer's idle clock keeps running, and the agent owes no
// reply to a message that does not exist.
func TestRefusedCustomerMessageKeepsTheIdleTimer(t *testing.T) {
	r := newRefusal("u1")
	n := startNode(t, withFaults(r.fs))
	conv := newConv(t, n)
	aout := make(outbox, 100)
	as := n.client.StartSession(agent, aout)
	defer as.Stop()
	sendAndAck(t, as, aout, conv, "a1") // takes it over: the customer's idle timer starts
	cout := make(outbox, 100)
	cs := n.client.StartSession(customer, cout)
	defer cs.Stop()
	r.send(t, cs, cout, conv)
	wantStoredTimer(t, n, conv, engine.TimerUserIdleWarn, engine.TimerNoReply)
}

// The same for an agent's reply the store refuses: the agent still owes
// the customer an answer, and the customer's idle clock does not start.
func TestRefusedAgentReplyKeepsTheNoReplyTimer(t *testing.T) {
	r := newRefusal("a2")
	n := startNode(t, withFaults(r.fs))
	conv := newConv(t, n)
	cout := make(outbox, 100)
	cs := n.client.StartSession(customer, cout)
	defer cs.Stop()
	aout := make(outbox, 100)
	as := n.client.StartSession(agent, aout)
	defer as.Stop()
	sendAndAck(t, as, aout, conv, "a1")
	sendAndAck(t, cs, cout, conv, "u1") // the agent owes a reply
	r.send(t, as, aout, conv)
	wantStoredTimer(t, n, conv, engine.TimerNoReply, engine.TimerUserIdleWarn)
}

// refusal is a store that fails the Append of the message with client id
// id once send has started.
type refusal struct {
	fs *faultStore
	on atomic.Bool
	id string
}

func newRefusal(id string) *refusal {
	r := &refusal{id: id}
	r.fs = &faultStore{appendFail: func(msgs []engine.Message) error {
		if r.on.Load() && msgs[0].ClientMsgID == r.id {
			return errors.New("injected: the message is not stored")
		}
		return nil
	}}
	return r
}

// send sends the message the store refuses and returns once its sender
// has the error and the conversation has stored its timers again, as it
// does after a failed write.
func (r *refusal) send(t *testing.T, sess *actors.Session, out outbox, conv string) {
	t.Helper()
	r.on.Store(true)
	writes := r.fs.setTimersDone.Load()
	sess.Deliver(engine.ClientFrame{Type: engine.FrameSend, Conv: conv, ClientMsgID: r.id, Body: &engine.Body{Type: engine.BodyText, Text: "在吗"}})
	if f, ok := waitFrame(out, 10*time.Second, func(f anyFrame) bool { return f.ClientMsgID == r.id }); !ok || f.Type != engine.FrameError {
		t.Fatalf("the refused message was answered %+v, %v; want an error", f, ok)
	}
	pollFor(t, 10*time.Second, "the timers stored again after the refusal", func() bool { return r.fs.setTimersDone.Load() > writes })
}

// wantStoredTimer fails unless the conversation has a stored timer of kind
// want and none of kind not.
func wantStoredTimer(t *testing.T, n *testNode, conv string, want, not engine.TimerKind) {
	t.Helper()
	if !hasTimer(t, n, conv, want) || hasTimer(t, n, conv, not) {
		timers, _ := n.store.Timers(context.Background(), "t1", conv)
		t.Fatalf("the stored timers are %+v; want %s and no %s", timers, want, not)
	}
}

// storedTimer returns when the conversation's stored timer of kind is due,
// if there is one.
func storedTimer(t *testing.T, n *testNode, conv string, kind engine.TimerKind) (time.Time, bool) {
	t.Helper()
	timers, err := n.store.Timers(context.Background(), "t1", conv)
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range timers {
		if tm.Kind == kind {
			return tm.DueAt, true
		}
	}
	return time.Time{}, false
}

// hasTimer reports whether the conversation has a stored timer of kind.
func hasTimer(t *testing.T, n *testNode, conv string, kind engine.TimerKind) bool {
	t.Helper()
	_, ok := storedTimer(t, n, conv, kind)
	return ok
}

// A fired timer's row stays until what it did is stored, so a node that
// dies first leaves it to fire again on the next activation. Here the store
// refuses the idle warning's message for a while: the next timer (the
// close) is stored, the warning's row is still there; once the message is
// stored the row goes, and the warning was sent once.
func TestFiredTimerStaysUntilItsMessageIsStored(t *testing.T) {
	clock := engine.NewManualClock(time.Now())
	var refuse atomic.Bool
	refuse.Store(true)
	fs := &faultStore{appendFail: func(msgs []engine.Message) error {
		if refuse.Load() && strings.HasPrefix(msgs[0].ClientMsgID, "sys idle ") {
			return errors.New("injected: the warning is not stored")
		}
		return nil
	}}
	n := startNode(t, func(d *actors.Deps) {
		withFaults(fs)(d)
		d.Clock = clock
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go actors.NewScheduler(n.store, clock, n.node.Cluster, 10*time.Millisecond, nil).Run(ctx)
	conv := newConv(t, n)
	aout := make(outbox, 100)
	as := n.client.StartSession(agent, aout)
	defer as.Stop()
	sendAndAck(t, as, aout, conv, "a1") // takes it over: the customer's idle timer starts
	clock.Advance(engine.TenantSettings{}.WithDefaults().Timers.UserIdleWarn.D() + time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for !hasTimer(t, n, conv, engine.TimerUserIdleClose) {
		if time.Now().After(deadline) {
			t.Fatal("the close timer was never stored")
		}
		time.Sleep(5 * time.Millisecond) // polling the store, bounded by the deadline
	}
	if !hasTimer(t, n, conv, engine.TimerUserIdleWarn) {
		t.Fatal("the fired warning's row was removed before its message was stored")
	}
	refuse.Store(false)
	for hasTimer(t, n, conv, engine.TimerUserIdleWarn) {
		if time.Now().After(deadline) {
			t.Fatal("the fired warning's row stayed after its message was stored")
		}
		time.Sleep(5 * time.Millisecond)
	}
	msgs, err := n.store.Messages(context.Background(), "t1", conv, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	warnings := 0
	for _, m := range msgs {
		if strings.HasPrefix(m.ClientMsgID, "sys idle ") {
			warnings++
		}
	}
	if warnings != 1 {
		t.Fatalf("%d idle warnings stored, want 1", warnings)
	}
}

// Profile changes that reach a queue while it loads (fifty agents created
// at once) cost one more load after it, not one each: against a slow store
// every extra load is more work it cannot keep up with.
func TestQueueCoalescesLoads(t *testing.T) {
	fs := &faultStore{groupsGate: make(chan struct{})}
	n := startNode(t, withFaults(fs))
	loaded := make(chan error, 1)
	go func() { // activates the queue; answered once it has loaded
		_, err := n.client.Queue(context.Background(), agent, "default")
		loaded <- err
	}()
	pollFor(t, 5*time.Second, "the queue's first load", func() bool { return fs.groupsCalls.Load() == 1 })
	for range 20 {
		if err := actors.TellQueue(n.client, agent.Tenant, "default", &actorpb.ProfileChanged{}); err != nil {
			t.Fatal(err)
		}
	}
	close(fs.groupsGate)
	if err := <-loaded; err != nil {
		t.Fatal(err)
	}
	pollFor(t, 5*time.Second, "the load the profile changes asked for", func() bool { return fs.groupsCalls.Load() >= 2 })
	if _, err := n.client.Queue(context.Background(), agent, "default"); err != nil {
		t.Fatal(err)
	}
	if got := fs.groupsCalls.Load(); got != 2 {
		t.Errorf("the queue loaded %d times for 20 profile changes during its first load, want 2", got)
	}
}
