package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/kefu-dev/kefu/engine"
)

func testAppendReadBack(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "t1", "c1")

	ms := Msgs("t1", "c1", 1, 3)
	ms[1].Body.Text = "你好, \"quoted\" \\ and emoji 🙂 {\"$gt\": 1}"
	ms[2].From = engine.Party{Role: engine.RoleAgent, ID: "agent-7"}
	AppendAll(t, s, ms)

	got, err := s.Messages(ctx, "t1", "c1", 0, 10)
	MustOK(t, "messages", err)
	WantMessages(t, "messages", got, ms)

	m, err := s.MessageByClientID(ctx, "t1", "c1", ms[1].ClientMsgID)
	MustOK(t, "by client id", err)
	WantMessages(t, "by client id", []engine.Message{m}, ms[1:2])

	_, err = s.MessageByClientID(ctx, "t1", "c1", "nope")
	WantErrIs(t, "unknown client id", err, engine.ErrNotFound)

	last, err := s.LastSeq(ctx, "t1", "c1")
	MustOK(t, "last seq", err)
	if last != 3 {
		t.Fatalf("LastSeq = %d, want 3", last)
	}
}

func testMessagesPaging(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	Seed(t, s, "t1", "c1")
	all := Msgs("t1", "c1", 1, 25)
	AppendAll(t, s, all[:10])
	AppendAll(t, s, all[10:])

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
			MustOK(t, "messages", err)
			var want []engine.Message
			if tt.from <= tt.to {
				want = all[tt.from-1 : tt.to]
			}
			WantMessages(t, "page", got, want)
		})
	}
}

func testRecent(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "t1", "c1", "empty")
	all := Msgs("t1", "c1", 1, 12)
	AppendAll(t, s, all)

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
		MustOK(t, "recent", err)
		WantMessages(t, fmt.Sprintf("Recent(%d)", tt.n), got, tt.want)
	}

	got, err := s.Recent(ctx, "t1", "empty", 5)
	MustOK(t, "recent of empty conversation", err)
	WantMessages(t, "recent of empty conversation", got, nil)

	_, err = s.Recent(ctx, "t1", "nope", 5)
	WantErrIs(t, "recent of unknown conversation", err, engine.ErrNotFound)
	_, err = s.Recent(ctx, "t1", "nope", 0)
	WantErrIs(t, "recent of unknown conversation, n 0", err, engine.ErrNotFound)
}

func testLastSeq(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "t1", "c1")

	last, err := s.LastSeq(ctx, "t1", "c1")
	MustOK(t, "last seq of empty conversation", err)
	if last != 0 {
		t.Fatalf("LastSeq of empty conversation = %d, want 0", last)
	}
	AppendAll(t, s, Msgs("t1", "c1", 1, 4))
	if last, _ = s.LastSeq(ctx, "t1", "c1"); last != 4 {
		t.Fatalf("LastSeq = %d, want 4", last)
	}
	_, err = s.LastSeq(ctx, "t1", "nope")
	WantErrIs(t, "last seq of unknown conversation", err, engine.ErrNotFound)
	_, err = s.Messages(ctx, "t1", "nope", 0, 10)
	WantErrIs(t, "messages of unknown conversation", err, engine.ErrNotFound)
	_, err = s.Messages(ctx, "t1", "nope", 0, 0)
	WantErrIs(t, "messages of unknown conversation, limit 0", err, engine.ErrNotFound)
}

func testAppendDuplicate(t *testing.T, open OpenFunc) {
	ctx := context.Background()

	t.Run("stored earlier: prefix kept, rest not stored", func(t *testing.T) {
		s := openDefault(t, open)
		Seed(t, s, "t1", "c1")
		AppendAll(t, s, Msgs("t1", "c1", 1, 3)) // client ids c1-1 .. c1-3

		batch := Msgs("t1", "c1", 4, 6)
		batch[1].ClientMsgID = "c1-2" // a resend of seq 2
		n, err := s.Append(ctx, batch)
		var dup *engine.DuplicateError
		if n != 1 || !errors.As(err, &dup) {
			t.Fatalf("Append = (%d, %v), want (1, *DuplicateError)", n, err)
		}
		orig := Msg("t1", "c1", 2)
		if dup.ClientMsgID != "c1-2" || dup.Seq != 2 || dup.From != orig.From || !dup.CreatedAt.Equal(orig.CreatedAt) {
			t.Fatalf("DuplicateError = %+v, want the original's seq 2, sender %v and time %v", *dup, orig.From, orig.CreatedAt)
		}
		got, err := s.Messages(ctx, "t1", "c1", 0, 10)
		MustOK(t, "messages", err)
		WantMessages(t, "after duplicate", got, append(Msgs("t1", "c1", 1, 3), batch[0]))
		_, err = s.MessageByClientID(ctx, "t1", "c1", batch[2].ClientMsgID)
		WantErrIs(t, "message after the duplicate", err, engine.ErrNotFound)
	})

	t.Run("within one call", func(t *testing.T) {
		s := openDefault(t, open)
		Seed(t, s, "t1", "c1")
		batch := Msgs("t1", "c1", 1, 3)
		batch[2].ClientMsgID = batch[0].ClientMsgID
		n, err := s.Append(ctx, batch)
		var dup *engine.DuplicateError
		if n != 2 || !errors.As(err, &dup) || dup.Seq != 1 {
			t.Fatalf("Append = (%d, %v), want (2, duplicate of seq 1)", n, err)
		}
		if last, _ := s.LastSeq(ctx, "t1", "c1"); last != 2 {
			t.Fatalf("LastSeq = %d, want 2", last)
		}
	})

	t.Run("first of a call", func(t *testing.T) {
		// The messages after the duplicate are new; none may be stored.
		s := openDefault(t, open)
		Seed(t, s, "t1", "c1")
		AppendAll(t, s, Msgs("t1", "c1", 1, 1))
		batch := Msgs("t1", "c1", 2, 5)
		batch[0].ClientMsgID = "c1-1"
		n, err := s.Append(ctx, batch)
		var dup *engine.DuplicateError
		if n != 0 || !errors.As(err, &dup) || dup.Seq != 1 {
			t.Fatalf("Append = (%d, %v), want (0, duplicate of seq 1)", n, err)
		}
		if last, _ := s.LastSeq(ctx, "t1", "c1"); last != 1 {
			t.Fatalf("messages after the duplicate were stored: LastSeq = %d, want 1", last)
		}
		// Renumbered, the rest goes through whole.
		rest := Msgs("t1", "c1", 2, 4)
		AppendAll(t, s, rest)
	})

	t.Run("checked before the seq conflict", func(t *testing.T) {
		// A racing activation stored this very message under seq 3; the
		// resend reuses seq 2, which is taken too. The caller must learn
		// it is a duplicate of 3, not retry it under a new seq.
		s := openDefault(t, open)
		Seed(t, s, "t1", "c1")
		AppendAll(t, s, Msgs("t1", "c1", 1, 3))
		resend := Msg("t1", "c1", 2)
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
		s := openDefault(t, open)
		Seed(t, s, "t1", "c1")
		batch := Msgs("t1", "c1", 1, 3)
		for i := range batch {
			batch[i].ClientMsgID = "" // bot and system messages
			batch[i].From = engine.Party{Role: engine.RoleBot, ID: "bot"}
		}
		AppendAll(t, s, batch)
		// A client id that spells a seq is still just a client id.
		withID := Msg("t1", "c1", 4)
		withID.ClientMsgID = "2"
		AppendAll(t, s, []engine.Message{withID})
		got, err := s.Messages(ctx, "t1", "c1", 0, 10)
		MustOK(t, "messages", err)
		WantMessages(t, "without client ids", got, append(batch, withID))
		_, err = s.MessageByClientID(ctx, "t1", "c1", "")
		WantErrIs(t, "empty client id lookup", err, engine.ErrNotFound)
		m, err := s.MessageByClientID(ctx, "t1", "c1", "2")
		if err != nil || m.Seq != 4 {
			t.Fatalf("MessageByClientID(\"2\") = seq %d, %v; want seq 4", m.Seq, err)
		}
		// Two messages without a client id racing for one seq conflict.
		again := batch[0]
		again.Seq = 4
		n, err := s.Append(ctx, []engine.Message{again})
		if n != 0 || !errors.Is(err, engine.ErrSeqConflict) {
			t.Fatalf("Append = (%d, %v), want (0, ErrSeqConflict)", n, err)
		}
	})
}

func testAppendSeqConflict(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := openDefault(t, open)
	Seed(t, s, "t1", "c1")
	AppendAll(t, s, Msgs("t1", "c1", 1, 3))
	racer := Msg("t1", "c1", 4) // another activation stored seq 4
	racer.ClientMsgID = "racer-4"
	AppendAll(t, s, []engine.Message{racer})
	batch := Msgs("t1", "c1", 4, 6)
	// Seq 4 is taken: nothing of this call is stored.
	n, err := s.Append(ctx, batch)
	if n != 0 || !errors.Is(err, engine.ErrSeqConflict) {
		t.Fatalf("Append = (%d, %v), want (0, ErrSeqConflict)", n, err)
	}
	if last, _ := s.LastSeq(ctx, "t1", "c1"); last != 4 {
		t.Fatalf("messages after the conflict were stored: LastSeq = %d, want 4", last)
	}
	// Renumbered after the conflict, it goes through whole.
	for i := range batch {
		batch[i].Seq = int64(5 + i)
	}
	AppendAll(t, s, batch)

	// A conflict in the middle keeps the leading messages.
	AppendAll(t, s, []engine.Message{{Tenant: "t1", Conv: "c1", Seq: 10, ClientMsgID: "squatter",
		From: engine.Party{Role: engine.RoleSystem, ID: "kefu"}, Body: engine.Body{Type: engine.BodySystem, Text: "x"}, CreatedAt: Epoch}})
	mid := Msgs("t1", "c1", 8, 12)
	n, err = s.Append(ctx, mid)
	if n != 2 || !errors.Is(err, engine.ErrSeqConflict) {
		t.Fatalf("Append = (%d, %v), want (2, ErrSeqConflict)", n, err)
	}
	for _, m := range mid[3:] {
		if _, err := s.MessageByClientID(ctx, "t1", "c1", m.ClientMsgID); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("message %d after the conflict was stored (err %v)", m.Seq, err)
		}
	}
	last, _ := s.LastSeq(ctx, "t1", "c1")
	if last != 10 {
		t.Fatalf("LastSeq = %d, want 10", last)
	}
	got, err := s.Messages(ctx, "t1", "c1", 0, 100)
	MustOK(t, "messages", err)
	if want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(SeqsOf(got), want) {
		t.Fatalf("stored seqs %v, want %v", SeqsOf(got), want)
	}
}

// testRacingWriters: two writers append the same seq to one conversation
// at once, round after round. Exactly one wins each seq; the loser sees
// ErrSeqConflict, and the stored seqs are gapless.
func testRacingWriters(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := openDefault(t, open)
	Seed(t, s, "t1", "c1")
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
				m := Msg("t1", "c1", seq)
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
	MustOK(t, "messages", err)
	for i, m := range got {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d has seq %d: not gapless", i, m.Seq)
		}
	}
	if len(got) != rounds {
		t.Fatalf("%d messages stored, want %d", len(got), rounds)
	}
}

// testRacingWritersReload: two activations of one conversation each store
// their own messages, in calls of up to three, numbering from the last seq
// they read. A loser takes the seq-conflict path: it reloads the last seq
// and renumbers what was not stored. In the end every message is stored
// exactly once, the seqs are gapless, and each writer's messages keep
// their order. A resend after an unknown outcome would be a duplicate; the
// suite expects none, since every call gets a definite answer.
func testRacingWritersReload(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := openDefault(t, open)
	Seed(t, s, "t1", "c1")
	const perWriter = 30
	conflicts := make([]int, 2)
	errs := make(chan error, 2)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			<-start
			next := 0 // index of this writer's first unstored message
			for next < perWriter {
				last, err := s.LastSeq(ctx, "t1", "c1") // (re)load
				if err != nil {
					errs <- err
					return
				}
				k := min(1+(next+w)%3, perWriter-next)
				batch := make([]engine.Message, k)
				for i := range batch {
					m := Msg("t1", "c1", last+1+int64(i))
					m.ClientMsgID = fmt.Sprintf("w%d-%02d", w, next+i)
					batch[i] = m
				}
				n, err := s.Append(ctx, batch)
				next += n
				switch {
				case err == nil && n == k:
				case errors.Is(err, engine.ErrSeqConflict) && n < k:
					conflicts[w]++
				default:
					errs <- fmt.Errorf("writer %d: Append(%v) = (%d, %v)", w, SeqsOf(batch), n, err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("seq conflicts taken: writer 0: %d, writer 1: %d", conflicts[0], conflicts[1])

	got, err := s.Messages(ctx, "t1", "c1", 0, 1000)
	MustOK(t, "messages", err)
	if len(got) != 2*perWriter {
		t.Fatalf("%d messages stored, want %d", len(got), 2*perWriter)
	}
	seen := map[string]bool{}
	lastOf := []int{-1, -1}
	for i, m := range got {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d has seq %d: not gapless", i, m.Seq)
		}
		if seen[m.ClientMsgID] {
			t.Fatalf("%s stored twice", m.ClientMsgID)
		}
		seen[m.ClientMsgID] = true
		var w, k int
		if _, err := fmt.Sscanf(m.ClientMsgID, "w%d-%d", &w, &k); err != nil {
			t.Fatalf("unexpected message %q", m.ClientMsgID)
		}
		if k != lastOf[w]+1 {
			t.Fatalf("writer %d: message %d stored after %d", w, k, lastOf[w])
		}
		lastOf[w] = k
	}
}

func testAppendRejects(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "t1", "c1", "c2")

	n, err := s.Append(ctx, nil)
	if n != 0 || err != nil {
		t.Fatalf("Append(nil) = (%d, %v), want (0, nil)", n, err)
	}
	mixed := []engine.Message{Msg("t1", "c1", 1), Msg("t1", "c2", 2)}
	gap := []engine.Message{Msg("t1", "c1", 1), Msg("t1", "c1", 3)}
	zero := []engine.Message{Msg("t1", "c1", 0)}
	noTenant := []engine.Message{Msg("", "c1", 1)}
	for name, ms := range map[string][]engine.Message{"mixed conversations": mixed, "gap": gap, "seq 0": zero, "no tenant": noTenant} {
		if n, err := s.Append(ctx, ms); n != 0 || err == nil {
			t.Errorf("%s: Append = (%d, %v), want an error", name, n, err)
		}
	}
	n, err = s.Append(ctx, []engine.Message{Msg("t1", "nope", 1)})
	if n != 0 || !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("append to unknown conversation: (%d, %v), want ErrNotFound", n, err)
	}
	if last, _ := s.LastSeq(ctx, "t1", "c1"); last != 0 {
		t.Fatalf("a rejected append stored something: LastSeq = %d", last)
	}
}

func testConcurrentAppends(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	const convs, perConv = 20, 10
	names := make([]string, convs)
	for i := range names {
		names[i] = fmt.Sprintf("c%02d", i)
	}
	Seed(t, s, "t1", names...)

	// One goroutine per conversation, as its actor would be, all at once.
	var wg sync.WaitGroup
	errs := make(chan error, convs)
	for _, c := range names {
		wg.Go(func() {
			for seq := int64(1); seq <= perConv; seq++ {
				if n, err := s.Append(ctx, []engine.Message{Msg("t1", c, seq)}); n != 1 || err != nil {
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
		MustOK(t, "messages", err)
		WantMessages(t, c, got, Msgs("t1", c, 1, perConv))
	}
}
