package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

func TestAppendReadBack(t *testing.T) {
	s := openTest(t, Config{})
	ctx := context.Background()
	seed(t, s, "t1", "c1")

	ms := msgs("t1", "c1", 1, 3)
	ms[1].Body.Text = "你好, \"quoted\" \\ and emoji 🙂"
	ms[2].From = engine.Party{Role: engine.RoleAgent, ID: "agent-7"}
	appendAll(t, s, ms)

	got, err := s.Messages(ctx, "t1", "c1", 0, 10)
	mustOK(t, "messages", err)
	wantMessages(t, "messages", got, ms)

	m, err := s.MessageByClientID(ctx, "t1", "c1", ms[1].ClientMsgID)
	mustOK(t, "by client id", err)
	wantMessages(t, "by client id", []engine.Message{m}, ms[1:2])

	_, err = s.MessageByClientID(ctx, "t1", "c1", "nope")
	wantErrIs(t, "unknown client id", err, engine.ErrNotFound)

	last, err := s.LastSeq(ctx, "t1", "c1")
	mustOK(t, "last seq", err)
	if last != 3 {
		t.Fatalf("LastSeq = %d, want 3", last)
	}
}

func TestMessagesPaging(t *testing.T) {
	s := openTest(t, Config{})
	seed(t, s, "t1", "c1")
	all := msgs("t1", "c1", 1, 25)
	appendAll(t, s, all[:10])
	appendAll(t, s, all[10:])

	tests := []struct {
		after    int64
		limit    int
		from, to int64 // expected seqs, inclusive; from > to means none
	}{
		{0, 10, 1, 10},
		{10, 10, 11, 20},
		{20, 10, 21, 25},
		{25, 10, 1, 0},
		{99, 10, 1, 0},
		{0, 100, 1, 25},
		{7, 1, 8, 8},
		{0, 0, 1, 0},
		{0, -1, 1, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("after%d_limit%d", tt.after, tt.limit), func(t *testing.T) {
			got, err := s.Messages(context.Background(), "t1", "c1", tt.after, tt.limit)
			mustOK(t, "messages", err)
			var want []engine.Message
			if tt.from <= tt.to {
				want = all[tt.from-1 : tt.to]
			}
			wantMessages(t, "page", got, want)
		})
	}
}

func TestRecent(t *testing.T) {
	s := openTest(t, Config{})
	ctx := context.Background()
	seed(t, s, "t1", "c1", "empty")
	all := msgs("t1", "c1", 1, 12)
	appendAll(t, s, all)

	for _, tt := range []struct {
		n    int
		want []engine.Message
	}{
		{5, all[7:]},
		{1, all[11:]},
		{12, all},
		{50, all},
		{0, nil},
	} {
		got, err := s.Recent(ctx, "t1", "c1", tt.n)
		mustOK(t, "recent", err)
		wantMessages(t, fmt.Sprintf("Recent(%d)", tt.n), got, tt.want)
	}

	got, err := s.Recent(ctx, "t1", "empty", 5)
	mustOK(t, "recent of empty conversation", err)
	wantMessages(t, "recent of empty conversation", got, nil)

	_, err = s.Recent(ctx, "t1", "nope", 5)
	wantErrIs(t, "recent of unknown conversation", err, engine.ErrNotFound)
}

func TestLastSeq(t *testing.T) {
	s := openTest(t, Config{})
	ctx := context.Background()
	seed(t, s, "t1", "c1")

	last, err := s.LastSeq(ctx, "t1", "c1")
	mustOK(t, "last seq of empty conversation", err)
	if last != 0 {
		t.Fatalf("LastSeq of empty conversation = %d, want 0", last)
	}
	appendAll(t, s, msgs("t1", "c1", 1, 4))
	if last, _ = s.LastSeq(ctx, "t1", "c1"); last != 4 {
		t.Fatalf("LastSeq = %d, want 4", last)
	}
	_, err = s.LastSeq(ctx, "t1", "nope")
	wantErrIs(t, "last seq of unknown conversation", err, engine.ErrNotFound)
	_, err = s.Messages(ctx, "t1", "nope", 0, 10)
	wantErrIs(t, "messages of unknown conversation", err, engine.ErrNotFound)
	_, err = s.Messages(ctx, "t1", "nope", 0, 0)
	wantErrIs(t, "messages of unknown conversation, limit 0", err, engine.ErrNotFound)
}

func TestAppendDuplicate(t *testing.T) {
	ctx := context.Background()

	t.Run("stored earlier: prefix kept, rest not stored", func(t *testing.T) {
		s := openTest(t, Config{})
		seed(t, s, "t1", "c1")
		appendAll(t, s, msgs("t1", "c1", 1, 3)) // client ids c1-1 .. c1-3

		batch := msgs("t1", "c1", 4, 6)
		batch[1].ClientMsgID = "c1-2" // a resend of seq 2
		n, err := s.Append(ctx, batch)
		var dup *engine.DuplicateError
		if n != 1 || !errors.As(err, &dup) {
			t.Fatalf("Append = (%d, %v), want (1, *DuplicateError)", n, err)
		}
		if dup.ClientMsgID != "c1-2" || dup.Seq != 2 {
			t.Fatalf("DuplicateError = %+v, want {c1-2 2}", *dup)
		}
		got, err := s.Messages(ctx, "t1", "c1", 0, 10)
		mustOK(t, "messages", err)
		wantMessages(t, "after duplicate", got, append(msgs("t1", "c1", 1, 3), batch[0]))
		_, err = s.MessageByClientID(ctx, "t1", "c1", batch[2].ClientMsgID)
		wantErrIs(t, "message after the duplicate", err, engine.ErrNotFound)
	})

	t.Run("within one call", func(t *testing.T) {
		s := openTest(t, Config{})
		seed(t, s, "t1", "c1")
		batch := msgs("t1", "c1", 1, 3)
		batch[2].ClientMsgID = batch[0].ClientMsgID
		n, err := s.Append(ctx, batch)
		var dup *engine.DuplicateError
		if n != 2 || !errors.As(err, &dup) || dup.Seq != 1 {
			t.Fatalf("Append = (%d, %v), want (2, duplicate of seq 1)", n, err)
		}
	})

	t.Run("checked before the seq conflict", func(t *testing.T) {
		// A racing activation stored this very message under seq 3; the
		// resend reuses seq 2, which is taken too. The caller must learn
		// it is a duplicate of 3, not retry it under a new seq.
		s := openTest(t, Config{})
		seed(t, s, "t1", "c1")
		appendAll(t, s, msgs("t1", "c1", 1, 3))
		resend := msg("t1", "c1", 2)
		resend.ClientMsgID = "c1-3"
		n, err := s.Append(ctx, []engine.Message{resend})
		var dup *engine.DuplicateError
		if n != 0 || !errors.As(err, &dup) || dup.Seq != 3 {
			t.Fatalf("Append = (%d, %v), want (0, duplicate of seq 3)", n, err)
		}
		if errors.Is(err, engine.ErrSeqConflict) {
			t.Fatalf("a duplicate also reports ErrSeqConflict: %v", err)
		}
	})

	t.Run("empty client_msg_id never duplicates", func(t *testing.T) {
		s := openTest(t, Config{})
		seed(t, s, "t1", "c1")
		batch := msgs("t1", "c1", 1, 3)
		for i := range batch {
			batch[i].ClientMsgID = "" // bot and system messages
			batch[i].From = engine.Party{Role: engine.RoleBot, ID: "bot"}
		}
		appendAll(t, s, batch)
		got, err := s.Messages(ctx, "t1", "c1", 0, 10)
		mustOK(t, "messages", err)
		wantMessages(t, "without client ids", got, batch)
		_, err = s.MessageByClientID(ctx, "t1", "c1", "")
		wantErrIs(t, "empty client id lookup", err, engine.ErrNotFound)
	})
}

func TestAppendSeqConflict(t *testing.T) {
	ctx := context.Background()

	t.Run("prefix kept", func(t *testing.T) {
		s := openTest(t, Config{})
		seed(t, s, "t1", "c1")
		appendAll(t, s, msgs("t1", "c1", 1, 3))
		racer := msg("t1", "c1", 4) // another activation stored seq 4
		racer.ClientMsgID = "racer-4"
		appendAll(t, s, []engine.Message{racer})
		batch := msgs("t1", "c1", 4, 6)
		// Seq 4 is taken: nothing of this call is stored.
		n, err := s.Append(ctx, batch)
		if n != 0 || !errors.Is(err, engine.ErrSeqConflict) {
			t.Fatalf("Append = (%d, %v), want (0, ErrSeqConflict)", n, err)
		}
		// Renumbered after the conflict, it goes through whole.
		for i := range batch {
			batch[i].Seq = int64(5 + i)
		}
		appendAll(t, s, batch)

		// A conflict in the middle keeps the leading messages.
		appendAll(t, s, []engine.Message{{Tenant: "t1", Conv: "c1", Seq: 10, ClientMsgID: "squatter",
			From: engine.Party{Role: engine.RoleSystem, ID: "kefu"}, Body: engine.Body{Type: engine.BodySystem, Text: "x"}}})
		mid := msgs("t1", "c1", 8, 11)
		n, err = s.Append(ctx, mid)
		if n != 2 || !errors.Is(err, engine.ErrSeqConflict) {
			t.Fatalf("Append = (%d, %v), want (2, ErrSeqConflict)", n, err)
		}
		if _, err := s.MessageByClientID(ctx, "t1", "c1", mid[3].ClientMsgID); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("message after the conflict was stored (err %v)", err)
		}
		last, _ := s.LastSeq(ctx, "t1", "c1")
		if last != 10 {
			t.Fatalf("LastSeq = %d, want 10", last)
		}
	})

	t.Run("two writers race for the same seq", func(t *testing.T) {
		s := openTest(t, Config{})
		seed(t, s, "t1", "c1")
		const rounds = 100
		for seq := int64(1); seq <= rounds; seq++ {
			start := make(chan struct{})
			var wg sync.WaitGroup
			type result struct {
				n   int
				err error
			}
			results := make([]result, 2)
			for w := range 2 {
				wg.Go(func() {
					m := msg("t1", "c1", seq)
					m.ClientMsgID = fmt.Sprintf("w%d-%d", w, seq)
					<-start
					n, err := s.Append(ctx, []engine.Message{m})
					results[w] = result{n, err}
				})
			}
			close(start)
			wg.Wait()
			wins := 0
			for w, r := range results {
				switch {
				case r.n == 1 && r.err == nil:
					wins++
				case r.n == 0 && errors.Is(r.err, engine.ErrSeqConflict):
				default:
					t.Fatalf("seq %d writer %d: (%d, %v), want a win or ErrSeqConflict", seq, w, r.n, r.err)
				}
			}
			if wins != 1 {
				t.Fatalf("seq %d: %d winners, want exactly 1", seq, wins)
			}
		}
		got, err := s.Messages(ctx, "t1", "c1", 0, 1000)
		mustOK(t, "messages", err)
		for i, m := range got {
			if m.Seq != int64(i+1) {
				t.Fatalf("message %d has seq %d: not gapless", i, m.Seq)
			}
		}
		if len(got) != rounds {
			t.Fatalf("%d messages stored, want %d", len(got), rounds)
		}
	})
}

func TestAppendRejects(t *testing.T) {
	s := openTest(t, Config{})
	ctx := context.Background()
	seed(t, s, "t1", "c1", "c2")

	n, err := s.Append(ctx, nil)
	if n != 0 || err != nil {
		t.Fatalf("Append(nil) = (%d, %v), want (0, nil)", n, err)
	}
	mixed := []engine.Message{msg("t1", "c1", 1), msg("t1", "c2", 2)}
	gap := []engine.Message{msg("t1", "c1", 1), msg("t1", "c1", 3)}
	zero := []engine.Message{msg("t1", "c1", 0)}
	noTenant := []engine.Message{msg("", "c1", 1)}
	for name, ms := range map[string][]engine.Message{"mixed conversations": mixed, "gap": gap, "seq 0": zero, "no tenant": noTenant} {
		if n, err := s.Append(ctx, ms); n != 0 || err == nil {
			t.Errorf("%s: Append = (%d, %v), want an error", name, n, err)
		}
	}
	n, err = s.Append(ctx, []engine.Message{msg("t1", "nope", 1)})
	if n != 0 || !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("append to unknown conversation: (%d, %v), want ErrNotFound", n, err)
	}
	if last, _ := s.LastSeq(ctx, "t1", "c1"); last != 0 {
		t.Fatalf("a rejected append stored something: LastSeq = %d", last)
	}
}

func TestConcurrentAppends(t *testing.T) {
	s := openTest(t, Config{})
	ctx := context.Background()
	const convs, perConv = 50, 20
	names := make([]string, convs)
	for i := range names {
		names[i] = fmt.Sprintf("c%02d", i)
	}
	seed(t, s, "t1", names...)

	// One goroutine per conversation, as its actor would be, all at once.
	var wg sync.WaitGroup
	errs := make(chan error, convs)
	for _, c := range names {
		wg.Go(func() {
			for seq := int64(1); seq <= perConv; seq++ {
				if n, err := s.Append(ctx, []engine.Message{msg("t1", c, seq)}); n != 1 || err != nil {
					errs <- fmt.Errorf("%s seq %d: n=%d err=%v", c, seq, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, c := range names {
		got, err := s.Messages(ctx, "t1", c, 0, 100)
		mustOK(t, "messages", err)
		wantMessages(t, c, got, msgs("t1", c, 1, perConv))
	}
	if got := counterValue(t, s, "append"); got != convs*perConv {
		t.Fatalf("ops_total{op=append} = %v, want %d", got, convs*perConv)
	}
}

func TestReadPointers(t *testing.T) {
	s := openTest(t, Config{})
	ctx := context.Background()
	seed(t, s, "t1", "c1")
	user := engine.Party{Role: engine.RoleUser, ID: "u1"}
	agent := engine.Party{Role: engine.RoleAgent, ID: "a1"}

	rps, err := s.ReadPointers(ctx, "t1", "c1")
	mustOK(t, "read pointers", err)
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
		mustOK(t, "set read pointer", err)
		if got != step.now {
			t.Fatalf("SetReadPointer(%s, %d) = %d, want %d", step.p, step.seq, got, step.now)
		}
	}
	rps, err = s.ReadPointers(ctx, "t1", "c1")
	mustOK(t, "read pointers", err)
	want := []engine.ReadPointer{{Party: agent, Seq: 2}, {Party: user, Seq: 7}}
	if fmt.Sprint(rps) != fmt.Sprint(want) {
		t.Fatalf("ReadPointers = %v, want %v", rps, want)
	}

	// Concurrent updates in random order: every caller sees a value at
	// least as high as it asked for and as it saw before, and the end is
	// the maximum.
	const workers, each = 10, 30
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

	_, err = s.SetReadPointer(ctx, "t1", "nope", user, 1)
	wantErrIs(t, "set read pointer of unknown conversation", err, engine.ErrNotFound)
	_, err = s.ReadPointers(ctx, "t1", "nope")
	wantErrIs(t, "read pointers of unknown conversation", err, engine.ErrNotFound)
	if _, err := s.SetReadPointer(ctx, "t1", "c1", user, -1); err == nil {
		t.Fatal("SetReadPointer(-1) succeeded")
	}
}

func TestTenantIsolation(t *testing.T) {
	s := openTest(t, Config{})
	ctx := context.Background()
	seed(t, s, "ta", "shared", "only-a")
	seed(t, s, "tb", "shared")

	// The same conversation id and client_msg_ids in two tenants.
	a := msgs("ta", "shared", 1, 1)
	b := msgs("tb", "shared", 1, 2)
	b[0].Body.Text = "tenant b's first message"
	appendAll(t, s, a)
	appendAll(t, s, b)

	got, err := s.Messages(ctx, "ta", "shared", 0, 10)
	mustOK(t, "messages a", err)
	wantMessages(t, "tenant a", got, a)
	got, err = s.Messages(ctx, "tb", "shared", 0, 10)
	mustOK(t, "messages b", err)
	wantMessages(t, "tenant b", got, b)
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
	wantErrIs(t, "conversation of another tenant", err, engine.ErrNotFound)
	_, err = s.Messages(ctx, "tb", "only-a", 0, 10)
	wantErrIs(t, "messages of another tenant", err, engine.ErrNotFound)
	_, err = s.Recent(ctx, "tb", "only-a", 10)
	wantErrIs(t, "recent of another tenant", err, engine.ErrNotFound)
	_, err = s.LastSeq(ctx, "tb", "only-a")
	wantErrIs(t, "last seq of another tenant", err, engine.ErrNotFound)
	_, err = s.ReadPointers(ctx, "tb", "only-a")
	wantErrIs(t, "read pointers of another tenant", err, engine.ErrNotFound)
	_, err = s.SetReadPointer(ctx, "tb", "only-a", engine.Party{Role: engine.RoleUser, ID: "u"}, 1)
	wantErrIs(t, "set read pointer in another tenant", err, engine.ErrNotFound)
	n, err := s.Append(ctx, msgs("tb", "only-a", 1, 1))
	if n != 0 || !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("append into another tenant's conversation: (%d, %v), want ErrNotFound", n, err)
	}

	list, err := s.ListConversations(ctx, "tb", engine.ConversationQuery{})
	mustOK(t, "list b", err)
	if len(list) != 1 || list[0].Tenant != "tb" || list[0].ID != "shared" {
		t.Fatalf("tenant b lists %+v, want only its own", list)
	}

	// Staff: the same username in two tenants, each finds its own.
	for _, tn := range []string{"ta", "tb"} {
		mustOK(t, "create staff", s.CreateStaff(ctx, engine.Staff{Tenant: tn, ID: "s1", Username: "li.lei", DisplayName: "Li Lei " + tn, Role: engine.StaffAgent}))
	}
	st, err := s.StaffByUsername(ctx, "tb", "li.lei")
	if err != nil || st.Tenant != "tb" || st.DisplayName != "Li Lei tb" {
		t.Fatalf("StaffByUsername(tb) = %+v, %v", st, err)
	}
	_, err = s.StaffByUsername(ctx, "tc", "li.lei")
	wantErrIs(t, "staff of unknown tenant", err, engine.ErrNotFound)
}

func TestCreateConflicts(t *testing.T) {
	s := openTest(t, Config{})
	ctx := context.Background()
	seed(t, s, "t1", "c1")

	wantErrIs(t, "duplicate tenant", s.CreateTenant(ctx, engine.Tenant{ID: "t1"}), engine.ErrExists)
	wantErrIs(t, "duplicate conversation", s.CreateConversation(ctx, engine.Conversation{Tenant: "t1", ID: "c1"}), engine.ErrExists)
	wantErrIs(t, "conversation of unknown tenant", s.CreateConversation(ctx, engine.Conversation{Tenant: "nope", ID: "c1"}), engine.ErrNotFound)

	mustOK(t, "staff", s.CreateStaff(ctx, engine.Staff{Tenant: "t1", ID: "s1", Username: "amy", Role: engine.StaffAdmin, PasswordHash: "h"}))
	wantErrIs(t, "duplicate username", s.CreateStaff(ctx, engine.Staff{Tenant: "t1", ID: "s2", Username: "amy"}), engine.ErrExists)
	wantErrIs(t, "duplicate staff id", s.CreateStaff(ctx, engine.Staff{Tenant: "t1", ID: "s1", Username: "bob"}), engine.ErrExists)
	wantErrIs(t, "staff of unknown tenant", s.CreateStaff(ctx, engine.Staff{Tenant: "nope", ID: "s1", Username: "amy"}), engine.ErrNotFound)

	for name, err := range map[string]error{
		"tenant without id":       s.CreateTenant(ctx, engine.Tenant{}),
		"conversation without id": s.CreateConversation(ctx, engine.Conversation{Tenant: "t1"}),
		"staff without username":  s.CreateStaff(ctx, engine.Staff{Tenant: "t1", ID: "s9"}),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAccounts(t *testing.T) {
	clock := fixedClock{testEpoch}
	s := openTest(t, Config{Clock: clock})
	ctx := context.Background()

	if n, err := s.CountTenants(ctx); err != nil || n != 0 {
		t.Fatalf("CountTenants = %d, %v; want 0", n, err)
	}
	created := testEpoch.Add(-time.Hour)
	mustOK(t, "tenant a", s.CreateTenant(ctx, engine.Tenant{ID: "a", Name: "甲商户", AppID: "wx1", CreatedAt: created}))
	mustOK(t, "tenant b", s.CreateTenant(ctx, engine.Tenant{ID: "b", Name: "B"})) // stamped by the clock
	if n, err := s.CountTenants(ctx); err != nil || n != 2 {
		t.Fatalf("CountTenants = %d, %v; want 2", n, err)
	}
	ta, err := s.Tenant(ctx, "a")
	if err != nil || ta.Name != "甲商户" || ta.AppID != "wx1" || !ta.CreatedAt.Equal(created) {
		t.Fatalf("Tenant(a) = %+v, %v", ta, err)
	}
	if tb, _ := s.Tenant(ctx, "b"); !tb.CreatedAt.Equal(testEpoch) {
		t.Fatalf("Tenant(b).CreatedAt = %v, want the clock's %v", tb.CreatedAt, testEpoch)
	}
	_, err = s.Tenant(ctx, "nope")
	wantErrIs(t, "unknown tenant", err, engine.ErrNotFound)

	want := engine.Staff{Tenant: "a", ID: "s1", Username: "amy", DisplayName: "Amy", Role: engine.StaffSupervisor,
		PasswordHash: "$argon2id$...", CreatedAt: created}
	mustOK(t, "staff", s.CreateStaff(ctx, want))
	got, err := s.StaffByUsername(ctx, "a", "amy")
	if err != nil || got != want {
		t.Fatalf("StaffByUsername = %+v, %v; want %+v", got, err, want)
	}
	_, err = s.StaffByUsername(ctx, "a", "nobody")
	wantErrIs(t, "unknown username", err, engine.ErrNotFound)
}

func TestPutSettingIfAbsent(t *testing.T) {
	s := openTest(t, Config{})
	ctx := context.Background()

	if v, err := s.PutSettingIfAbsent(ctx, "jwt_secret", "first"); err != nil || v != "first" {
		t.Fatalf("first put = %q, %v", v, err)
	}
	if v, err := s.PutSettingIfAbsent(ctx, "jwt_secret", "second"); err != nil || v != "first" {
		t.Fatalf("second put = %q, %v; want the first value", v, err)
	}

	// Racing writers all agree on one winner.
	const racers = 20
	got := make([]string, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			v, err := s.PutSettingIfAbsent(ctx, "node_id", fmt.Sprintf("value-%d", i))
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] || got[i] == "" {
			t.Fatalf("racers saw different values: %q", got)
		}
	}
}

func TestConversations(t *testing.T) {
	clock := fixedClock{testEpoch}
	s := openTest(t, Config{Clock: clock})
	ctx := context.Background()
	seed(t, s, "t1")

	// c00..c09, one minute apart; users alternate; c03 and c07 queued.
	var all []engine.Conversation
	for i := range 10 {
		c := engine.Conversation{
			Tenant: "t1", ID: fmt.Sprintf("c%02d", i), UserID: fmt.Sprintf("u%d", i%2),
			State: engine.StateBot, CreatedAt: testEpoch.Add(time.Duration(i) * time.Minute),
		}
		if i == 3 || i == 7 {
			c.State = engine.StateQueued
		}
		mustOK(t, "create", s.CreateConversation(ctx, c))
		c.UpdatedAt = c.CreatedAt
		all = append(all, c)
	}
	// Same created_at as c09: ordered by id, descending.
	tie := engine.Conversation{Tenant: "t1", ID: "c10", UserID: "u0", CreatedAt: all[9].CreatedAt}
	mustOK(t, "create tie", s.CreateConversation(ctx, tie))
	tie.State, tie.UpdatedAt = engine.StateBot, tie.CreatedAt
	all = append(all, tie)

	got, err := s.Conversation(ctx, "t1", "c03")
	if err != nil || got != all[3] {
		t.Fatalf("Conversation(c03) = %+v, %v; want %+v", got, err, all[3])
	}
	_, err = s.Conversation(ctx, "t1", "nope")
	wantErrIs(t, "unknown conversation", err, engine.ErrNotFound)

	ids := func(cs []engine.Conversation) string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return fmt.Sprint(out)
	}
	for _, tt := range []struct {
		name string
		q    engine.ConversationQuery
		want string
	}{
		{"all", engine.ConversationQuery{}, "[c10 c09 c08 c07 c06 c05 c04 c03 c02 c01 c00]"},
		{"limit", engine.ConversationQuery{Limit: 3}, "[c10 c09 c08]"},
		{"user", engine.ConversationQuery{UserID: "u1"}, "[c09 c07 c05 c03 c01]"},
		{"state", engine.ConversationQuery{State: engine.StateQueued}, "[c07 c03]"},
		{"user and state", engine.ConversationQuery{UserID: "u0", State: engine.StateQueued}, "[]"},
		{"before", engine.ConversationQuery{Before: all[5].CreatedAt, Limit: 2}, "[c04 c03]"},
		{"before and user", engine.ConversationQuery{Before: all[5].CreatedAt, UserID: "u0"}, "[c04 c02 c00]"},
		{"before, user, state", engine.ConversationQuery{Before: all[9].CreatedAt, UserID: "u1", State: engine.StateQueued}, "[c07 c03]"},
		{"unknown user", engine.ConversationQuery{UserID: "nobody"}, "[]"},
	} {
		got, err := s.ListConversations(ctx, "t1", tt.q)
		mustOK(t, tt.name, err)
		if ids(got) != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, ids(got), tt.want)
		}
	}
	list, _ := s.ListConversations(ctx, "t1", engine.ConversationQuery{Limit: 11})
	if list[10] != all[0] {
		t.Fatalf("listed %+v, want %+v", list[10], all[0])
	}

	// The default limit is 50.
	for i := range 50 {
		mustOK(t, "create", s.CreateConversation(ctx, engine.Conversation{Tenant: "t1", ID: fmt.Sprintf("more%02d", i)}))
	}
	if list, _ := s.ListConversations(ctx, "t1", engine.ConversationQuery{}); len(list) != 50 {
		t.Fatalf("default limit listed %d, want 50", len(list))
	}
	if c, _ := s.Conversation(ctx, "t1", "more00"); !c.CreatedAt.Equal(testEpoch) || c.State != engine.StateBot {
		t.Fatalf("defaults: %+v, want the clock's time and state BOT", c)
	}
}
