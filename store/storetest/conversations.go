package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

func testReadPointers(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "t1", "c1")
	user := engine.Party{Role: engine.RoleUser, ID: "u1"}
	agent := engine.Party{Role: engine.RoleAgent, ID: "a1"}

	rps, err := s.ReadPointers(ctx, "t1", "c1")
	MustOK(t, "read pointers", err)
	if len(rps) != 0 {
		t.Fatalf("ReadPointers of a new conversation = %v, want none", rps)
	}
	for _, step := range []struct {
		p        engine.Party
		seq, now int64
	}{
		{user, 5, 5}, {user, 3, 5}, {user, 7, 7}, {user, 0, 7}, {agent, 2, 2}, {user, 7, 7},
	} {
		got, err := s.SetReadPointer(ctx, "t1", "c1", step.p, step.seq)
		MustOK(t, "set read pointer", err)
		if got != step.now {
			t.Fatalf("SetReadPointer(%s, %d) = %d, want %d", step.p, step.seq, got, step.now)
		}
	}
	rps, err = s.ReadPointers(ctx, "t1", "c1")
	MustOK(t, "read pointers", err)
	want := []engine.ReadPointer{{Party: agent, Seq: 2}, {Party: user, Seq: 7}}
	if fmt.Sprint(rps) != fmt.Sprint(want) {
		t.Fatalf("ReadPointers = %v, want %v", rps, want)
	}

	// A pointer at 0 is a pointer.
	other := engine.Party{Role: engine.RoleAgent, ID: "a2"}
	if got, err := s.SetReadPointer(ctx, "t1", "c1", other, 0); err != nil || got != 0 {
		t.Fatalf("SetReadPointer(0) on a new pointer = %d, %v", got, err)
	}

	// Concurrent updates in random order: every caller sees a value at
	// least as high as it asked for and as it saw before, and the end is
	// the maximum.
	const workers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	p := engine.Party{Role: engine.RoleUser, ID: "racer"}
	for w := range workers {
		wg.Go(func() {
			seen := int64(0)
			for _, v := range rand.Perm(each) {
				seq := int64(v*workers + w)
				got, err := s.SetReadPointer(ctx, "t1", "c1", p, seq)
				if err != nil || got < seq || got < seen {
					errs <- fmt.Errorf("set %d: got %d (seen %d), err %v", seq, got, seen, err)
					return
				}
				seen = got
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, _ := s.SetReadPointer(ctx, "t1", "c1", p, 0); got != each*workers-1 {
		t.Fatalf("final pointer = %d, want %d", got, each*workers-1)
	}
	rps, err = s.ReadPointers(ctx, "t1", "c1")
	MustOK(t, "read pointers", err)
	want = []engine.ReadPointer{{Party: agent, Seq: 2}, {Party: other, Seq: 0}, {Party: p, Seq: each*workers - 1}, {Party: user, Seq: 7}}
	if fmt.Sprint(rps) != fmt.Sprint(want) {
		t.Fatalf("ReadPointers = %v, want %v", rps, want)
	}

	_, err = s.SetReadPointer(ctx, "t1", "nope", user, 1)
	WantErrIs(t, "set read pointer of unknown conversation", err, engine.ErrNotFound)
	_, err = s.ReadPointers(ctx, "t1", "nope")
	WantErrIs(t, "read pointers of unknown conversation", err, engine.ErrNotFound)
	if _, err := s.SetReadPointer(ctx, "t1", "c1", user, -1); err == nil {
		t.Fatal("SetReadPointer(-1) succeeded")
	}
}

func testTenantIsolation(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta", "shared", "only-a")
	Seed(t, s, "tb", "shared")

	// The same conversation id and client_msg_ids in two tenants.
	a := Msgs("ta", "shared", 1, 1)
	b := Msgs("tb", "shared", 1, 2)
	b[0].Body.Text = "tenant b's first message"
	AppendAll(t, s, a)
	AppendAll(t, s, b)

	got, err := s.Messages(ctx, "ta", "shared", 0, 10)
	MustOK(t, "messages a", err)
	WantMessages(t, "tenant a", got, a)
	got, err = s.Messages(ctx, "tb", "shared", 0, 10)
	MustOK(t, "messages b", err)
	WantMessages(t, "tenant b", got, b)
	if m, err := s.MessageByClientID(ctx, "tb", "shared", a[0].ClientMsgID); err != nil || !reflect.DeepEqual(m.Body, b[0].Body) {
		t.Fatalf("tenant b's message by client id = %+v, %v; want its own", m, err)
	}
	if rp, err := s.SetReadPointer(ctx, "ta", "shared", engine.Party{Role: engine.RoleUser, ID: "u"}, 9); err != nil || rp != 9 {
		t.Fatalf("set read pointer in a: %d, %v", rp, err)
	}
	if rps, err := s.ReadPointers(ctx, "tb", "shared"); err != nil || len(rps) != 0 {
		t.Fatalf("tenant b sees read pointers %v, %v", rps, err)
	}

	// Tenant b cannot reach tenant a's conversation by id.
	_, err = s.Conversation(ctx, "tb", "only-a")
	WantErrIs(t, "conversation of another tenant", err, engine.ErrNotFound)
	_, err = s.Messages(ctx, "tb", "only-a", 0, 10)
	WantErrIs(t, "messages of another tenant", err, engine.ErrNotFound)
	_, err = s.Recent(ctx, "tb", "only-a", 10)
	WantErrIs(t, "recent of another tenant", err, engine.ErrNotFound)
	_, err = s.LastSeq(ctx, "tb", "only-a")
	WantErrIs(t, "last seq of another tenant", err, engine.ErrNotFound)
	_, err = s.ReadPointers(ctx, "tb", "only-a")
	WantErrIs(t, "read pointers of another tenant", err, engine.ErrNotFound)
	_, err = s.SetReadPointer(ctx, "tb", "only-a", engine.Party{Role: engine.RoleUser, ID: "u"}, 1)
	WantErrIs(t, "set read pointer in another tenant", err, engine.ErrNotFound)
	n, err := s.Append(ctx, Msgs("tb", "only-a", 1, 1))
	if n != 0 || !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("append into another tenant's conversation: (%d, %v), want ErrNotFound", n, err)
	}

	list, err := s.ListConversations(ctx, "tb", engine.ConversationQuery{})
	MustOK(t, "list b", err)
	if len(list) != 1 || list[0].Tenant != "tb" || list[0].ID != "shared" {
		t.Fatalf("tenant b lists %+v, want only its own", list)
	}

	// Staff: the same username in two tenants, each finds its own.
	for _, tn := range []string{"ta", "tb"} {
		MustOK(t, "create staff", s.CreateStaff(ctx, engine.Staff{Tenant: tn, ID: "s1", Username: "li.lei", DisplayName: "Li Lei " + tn, Role: engine.StaffAgent}))
	}
	st, err := s.StaffByUsername(ctx, "tb", "li.lei")
	if err != nil || st.Tenant != "tb" || st.DisplayName != "Li Lei tb" {
		t.Fatalf("StaffByUsername(tb) = %+v, %v", st, err)
	}
	_, err = s.StaffByUsername(ctx, "tc", "li.lei")
	WantErrIs(t, "staff of unknown tenant", err, engine.ErrNotFound)
}

func testConversations(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "t1")

	// c00..c09, one minute apart; users alternate; c03 and c07 queued.
	var all []engine.Conversation
	for i := range 10 {
		c := engine.Conversation{
			Tenant: "t1", ID: fmt.Sprintf("c%02d", i), UserID: fmt.Sprintf("u%d", i%2),
			State: engine.StateBot, CreatedAt: Epoch.Add(time.Duration(i) * time.Minute),
		}
		if i == 3 || i == 7 {
			c.State = engine.StateQueued
		}
		MustOK(t, "create", s.CreateConversation(ctx, c))
		c.UpdatedAt = c.CreatedAt
		all = append(all, c)
	}
	// Same created_at as c09: ordered by id, descending.
	tie := engine.Conversation{Tenant: "t1", ID: "c10", UserID: "u0", CreatedAt: all[9].CreatedAt}
	MustOK(t, "create tie", s.CreateConversation(ctx, tie))
	tie.State, tie.UpdatedAt = engine.StateBot, tie.CreatedAt
	all = append(all, tie)
	// UpdatedAt is kept as given.
	upd := engine.Conversation{Tenant: "t1", ID: "b00", UserID: "u9", State: engine.StateClosed,
		CreatedAt: Epoch.Add(-time.Hour), UpdatedAt: Epoch.Add(-time.Minute)}
	MustOK(t, "create with UpdatedAt", s.CreateConversation(ctx, upd))

	got, err := s.Conversation(ctx, "t1", "c03")
	if err != nil || !SameConversation(got, all[3]) {
		t.Fatalf("Conversation(c03) = %+v, %v; want %+v", got, err, all[3])
	}
	if got, err := s.Conversation(ctx, "t1", "b00"); err != nil || !SameConversation(got, upd) {
		t.Fatalf("Conversation(b00) = %+v, %v; want %+v", got, err, upd)
	}
	_, err = s.Conversation(ctx, "t1", "nope")
	WantErrIs(t, "unknown conversation", err, engine.ErrNotFound)

	for _, tt := range []struct {
		name string
		q    engine.ConversationQuery
		want string
	}{
		{"all", engine.ConversationQuery{}, "[c10 c09 c08 c07 c06 c05 c04 c03 c02 c01 c00 b00]"},
		{"limit", engine.ConversationQuery{Limit: 3}, "[c10 c09 c08]"},
		{"user", engine.ConversationQuery{UserID: "u1"}, "[c09 c07 c05 c03 c01]"},
		{"state", engine.ConversationQuery{State: engine.StateQueued}, "[c07 c03]"},
		{"user and state", engine.ConversationQuery{UserID: "u0", State: engine.StateQueued}, "[]"},
		{"before", engine.ConversationQuery{Before: all[5].CreatedAt, Limit: 2}, "[c04 c03]"},
		{"before and user", engine.ConversationQuery{Before: all[5].CreatedAt, UserID: "u0"}, "[c04 c02 c00]"},
		{"before and state", engine.ConversationQuery{Before: all[5].CreatedAt, State: engine.StateBot}, "[c04 c02 c01 c00]"},
		{"before, user, state", engine.ConversationQuery{Before: all[9].CreatedAt, UserID: "u1", State: engine.StateQueued}, "[c07 c03]"},
		{"unknown user", engine.ConversationQuery{UserID: "nobody"}, "[]"},
	} {
		got, err := s.ListConversations(ctx, "t1", tt.q)
		MustOK(t, tt.name, err)
		if ids(got) != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, ids(got), tt.want)
		}
	}
	list, _ := s.ListConversations(ctx, "t1", engine.ConversationQuery{Limit: 11})
	if !SameConversation(list[10], all[0]) {
		t.Fatalf("listed %+v, want %+v", list[10], all[0])
	}

	// The default limit is 50.
	for i := range 50 {
		MustOK(t, "create", s.CreateConversation(ctx, engine.Conversation{Tenant: "t1", ID: fmt.Sprintf("more%02d", i)}))
	}
	if list, _ := s.ListConversations(ctx, "t1", engine.ConversationQuery{}); len(list) != 50 {
		t.Fatalf("default limit listed %d, want 50", len(list))
	}
	if c, _ := s.Conversation(ctx, "t1", "more00"); !c.CreatedAt.Equal(Epoch) || !c.UpdatedAt.Equal(Epoch) || c.State != engine.StateBot {
		t.Fatalf("defaults: %+v, want the clock's time and state BOT", c)
	}
}

// SameConversation reports whether a and b are the same conversation, field
// by field: times by instant, and no invitees nil or empty alike.
func SameConversation(a, b engine.Conversation) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) || !a.UpdatedAt.Equal(b.UpdatedAt) || !a.QueuedAt.Equal(b.QueuedAt) ||
		!slices.Equal(a.Invited, b.Invited) || (a.Rating == nil) != (b.Rating == nil) {
		return false
	}
	if a.Rating != nil {
		ra, rb := *a.Rating, *b.Rating
		if !ra.At.Equal(rb.At) {
			return false
		}
		ra.At = rb.At
		if ra != rb {
			return false
		}
	}
	a.CreatedAt, a.UpdatedAt, a.QueuedAt, a.Invited, a.Rating = b.CreatedAt, b.UpdatedAt, b.QueuedAt, b.Invited, b.Rating
	return reflect.DeepEqual(a, b)
}
