package mongo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

// pauser holds the writer before a batch while armed, so a test can queue
// ops behind it and know they will form the next batch.
type pauser struct {
	armed   atomic.Bool
	paused  chan struct{}
	resume  chan struct{}
	mu      sync.Mutex
	batches []int // length of every batch, in order
}

func newPauser() *pauser {
	return &pauser{paused: make(chan struct{}), resume: make(chan struct{})}
}

func (p *pauser) hooks() testHooks {
	return testHooks{beforeBatch: func(n int) {
		p.mu.Lock()
		p.batches = append(p.batches, n)
		p.mu.Unlock()
		if p.armed.CompareAndSwap(true, false) {
			p.paused <- struct{}{}
			<-p.resume
		}
	}}
}

// hold makes the writer stop before its next batch, which starts with a
// throwaway append to conversation carrier (which must exist), and returns
// once it has.
func (p *pauser) hold(t *testing.T, s *Store, tenant, carrier string) {
	t.Helper()
	p.armed.Store(true)
	go s.Append(context.Background(), []engine.Message{msg(tenant, carrier, 1)}) //nolint:errcheck // only a carrier
	<-p.paused
}

func (p *pauser) lastBatch() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.batches[len(p.batches)-1]
}

// queued waits until n ops are queued behind the held writer.
func queued(t *testing.T, s *Store, n int) {
	t.Helper()
	checkFor(t, 5*time.Second, fmt.Sprintf("%d queued ops", n), func() bool { return len(s.ops) == n })
}

// TestBatchRefusals: in one batch, a refused message fails only its own op;
// that op keeps its prefix, its messages after the refused one are never
// stored, and the other ops' messages after it are stored by the next
// round.
func TestBatchRefusals(t *testing.T) {
	p := newPauser()
	s := openTest(t, Config{}, p.hooks())
	ctx := context.Background()
	seed(t, s, "t1", "c1", "c2", "c3", "c4", "c5", "carrier")
	appendAll(t, s, msgs("t1", "c1", 1, 2))
	squat := msg("t1", "c3", 2)
	squat.ClientMsgID = "squatter"
	appendAll(t, s, []engine.Message{msg("t1", "c3", 1), squat})

	p.hold(t, s, "t1", "carrier")
	type res struct {
		n   int
		err error
	}
	calls := []func() (int, error){
		func() (int, error) { return s.Append(ctx, msgs("t1", "c1", 3, 4)) }, // ok
		func() (int, error) { return s.Append(ctx, msgs("t1", "c2", 1, 1)) }, // ok
		func() (int, error) {
			dup := msgs("t1", "c1", 5, 8)
			dup[1].ClientMsgID = "c1-1"
			return s.Append(ctx, dup) // 5 stored, 6 a duplicate of 1, 7 and 8 removed
		},
		func() (int, error) { return s.Append(ctx, msgs("t1", "nope", 1, 1)) }, // unknown conversation
		func() (int, error) { return s.Append(ctx, msgs("t1", "c3", 2, 4)) },   // seq 2 taken: 3 and 4 removed
		func() (int, error) { return s.Append(ctx, msgs("t1", "c4", 1, 3)) },   // ok
		// Two activations of c5 in one batch: one of them loses seq 1.
		func() (int, error) { return s.Append(ctx, msgs("t1", "c5", 1, 2)) },
		func() (int, error) {
			other := msgs("t1", "c5", 1, 3)
			for i := range other {
				other[i].ClientMsgID = fmt.Sprintf("other-%d", i)
			}
			return s.Append(ctx, other)
		},
	}
	results := make([]res, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() {
			n, err := call()
			results[i] = res{n, err}
		})
		queued(t, s, i+1) // keep the order of the batch fixed
	}
	close(p.resume) // the held batch commits; the next takes all of them
	wg.Wait()
	if got := p.lastBatch(); got != len(calls) {
		t.Fatalf("the ops ran in a batch of %d, want all %d together", got, len(calls))
	}

	check := func(i, n int, target error) {
		t.Helper()
		r := results[i]
		if r.n != n || (target == nil) != (r.err == nil) || (target != nil && !errors.Is(r.err, target)) {
			t.Errorf("op %d = (%d, %v), want (%d, %v)", i, r.n, r.err, n, target)
		}
	}
	check(0, 2, nil)
	check(1, 1, nil)
	var dup *engine.DuplicateError
	if r := results[2]; r.n != 1 || !errors.As(r.err, &dup) || dup.Seq != 1 {
		t.Errorf("op 2 = (%d, %v), want (1, duplicate of seq 1)", r.n, r.err)
	}
	check(3, 0, engine.ErrNotFound)
	check(4, 0, engine.ErrSeqConflict)
	check(5, 3, nil)
	// The first c5 op comes first in the InsertMany, so it wins seq 1 and
	// 2; the other keeps nothing, not even its seq 3.
	check(6, 2, nil)
	check(7, 0, engine.ErrSeqConflict)

	for conv, want := range map[string][]int64{
		"c1": {1, 2, 3, 4, 5}, "c2": {1}, "c3": {1, 2}, "c4": {1, 2, 3}, "c5": {1, 2},
	} {
		got, err := s.Messages(ctx, "t1", conv, 0, 100)
		mustOK(t, "messages", err)
		if fmt.Sprint(storeSeqs(got)) != fmt.Sprint(want) {
			t.Errorf("%s holds seqs %v, want %v", conv, storeSeqs(got), want)
		}
	}
	for _, m := range []struct{ conv, id string }{
		{"c1", "c1-7"}, {"c1", "c1-8"}, {"c3", "c3-3"}, {"c3", "c3-4"}, {"c5", "other-2"},
	} {
		if _, err := s.MessageByClientID(ctx, "t1", m.conv, m.id); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("%s, after a refused message, is stored (%v)", m.id, err)
		}
	}
	// The stored prefix of a refused op and the ops' conversations all
	// go on without a gap.
	appendAll(t, s, msgs("t1", "c1", 6, 7))
	appendAll(t, s, msgs("t1", "c3", 3, 3))
}

func storeSeqs(ms []engine.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

// TestCloseFlushesPending: appends queued when Close is called are
// inserted, calls after it get ErrClosed, and the data is there on reopen.
func TestCloseFlushesPending(t *testing.T) {
	p := newPauser()
	cfg := testConfig(t)
	s, err := open(context.Background(), cfg, p.hooks())
	mustOK(t, "open", err)
	ctx := context.Background()
	seed(t, s, "t1", "c1", "c2", "carrier")

	p.hold(t, s, "t1", "carrier")
	const pending = 10
	errs := make(chan error, pending)
	var wg sync.WaitGroup
	for i := range pending {
		conv := []string{"c1", "c2"}[i%2]
		seq := int64(i/2 + 1)
		wg.Go(func() {
			if n, err := s.Append(ctx, []engine.Message{msg("t1", conv, seq)}); n != 1 || err != nil {
				errs <- fmt.Errorf("%s seq %d: (%d, %v)", conv, seq, n, err)
			}
		})
		queued(t, s, i+1) // per conversation, seqs queue in order
	}

	closed := make(chan error)
	go func() { closed <- s.Close() }()
	checkFor(t, 5*time.Second, "Close to stop accepting", func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.closed
	})
	if n, err := s.Append(ctx, msgs("t1", "c1", 99, 99)); n != 0 || !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("append after Close = (%d, %v), want ErrClosed", n, err)
	}
	close(p.resume)
	mustOK(t, "close", <-closed)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	s2 := openTest(t, cfg, testHooks{})
	for _, c := range []string{"c1", "c2"} {
		got, err := s2.Messages(ctx, "t1", c, 0, 100)
		mustOK(t, "messages after reopen", err)
		wantMessages(t, c, got, msgs("t1", c, 1, pending/2))
	}
}

// TestContextEndsWhileQueued: a caller that gives up while its append is
// queued gets its ctx error, and the writer skips the append.
func TestContextEndsWhileQueued(t *testing.T) {
	p := newPauser()
	s := openTest(t, Config{}, p.hooks())
	seed(t, s, "t1", "c1", "carrier")

	p.hold(t, s, "t1", "carrier")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := s.Append(ctx, msgs("t1", "c1", 1, 1))
		done <- err
	}()
	queued(t, s, 1)
	cancel()
	wantErrIs(t, "append whose ctx ended", <-done, context.Canceled)
	close(p.resume)

	// A later append is inserted after the skipped op's batch.
	appendAll(t, s, msgs("t1", "carrier", 2, 2))
	if last, _ := s.LastSeq(context.Background(), "t1", "c1"); last != 0 {
		t.Fatalf("the abandoned append was stored (LastSeq %d)", last)
	}
	_, err := s.Append(ctx, msgs("t1", "c1", 1, 1))
	wantErrIs(t, "append with an ended ctx", err, context.Canceled)
}

// TestMaxBatch: a batch never holds more than Config.MaxBatch appends, and
// the ops metrics count each.
func TestMaxBatch(t *testing.T) {
	p := newPauser()
	s := openTest(t, Config{MaxBatch: 3}, p.hooks())
	ctx := context.Background()
	convs := []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6"}
	seed(t, s, "t1", append(convs, "carrier")...)

	p.hold(t, s, "t1", "carrier")
	var wg sync.WaitGroup
	put := func(i int) {
		if n, err := s.Append(ctx, msgs("t1", convs[i], 1, 1)); n != 1 || err != nil {
			t.Error(n, err)
		}
	}
	for i := range 3 { // the channel holds MaxBatch ops
		wg.Go(func() { put(i) })
	}
	queued(t, s, 3)
	for i := 3; i < 7; i++ { // these wait to send
		wg.Go(func() { put(i) })
	}
	close(p.resume)
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	full := false
	for _, n := range p.batches {
		if n > 3 {
			t.Fatalf("batches %v: one exceeds MaxBatch 3", p.batches)
		}
		full = full || n == 3
	}
	if !full { // the three queued behind the held batch go together
		t.Fatalf("batches %v: none took MaxBatch ops", p.batches)
	}
	if got := counterValue(t, s, storemetrics.OpAppend); got != 8 {
		t.Fatalf("ops_total{op=append} = %v, want 8", got)
	}
	if got := counterValue(t, s, storemetrics.OpCreateConversation); got != float64(len(convs)+1) {
		t.Fatalf("ops_total{op=create_conversation} = %v, want %d", got, len(convs)+1)
	}
}
