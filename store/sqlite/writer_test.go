package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// pauser holds the writer inside a batch's transaction while armed, so a
// test can queue ops behind it and know they will form the next batch.
type pauser struct {
	armed   atomic.Bool
	paused  chan struct{}
	resume  chan struct{}
	mu      sync.Mutex
	batches []int                              // length of every batch, in order
	inTx    func(conn *sql.Conn, batchLen int) // optional extra hook
}

func newPauser() *pauser {
	return &pauser{paused: make(chan struct{}), resume: make(chan struct{})}
}

func (p *pauser) hooks() testHooks {
	return testHooks{inTx: func(conn *sql.Conn, n int) {
		p.mu.Lock()
		p.batches = append(p.batches, n)
		extra := p.inTx
		p.mu.Unlock()
		if extra != nil {
			extra(conn, n)
		}
		if p.armed.CompareAndSwap(true, false) {
			p.paused <- struct{}{}
			<-p.resume
		}
	}}
}

// hold makes the writer stop in the transaction of the next batch, which
// starts with a throwaway op, and returns once it has.
func (p *pauser) hold(t *testing.T, s *Store) {
	t.Helper()
	p.armed.Store(true)
	go s.PutSettingIfAbsent(context.Background(), "pause", "x") //nolint:errcheck // only a carrier
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

// TestBatchOpFailureIsolated: ops that fail inside a group commit roll back
// alone; the others of the same batch commit.
func TestBatchOpFailureIsolated(t *testing.T) {
	p := newPauser()
	s := openTestHooks(t, Config{}, p.hooks())
	ctx := context.Background()
	seed(t, s, "t1", "c1", "c2")
	appendAll(t, s, msgs("t1", "c1", 1, 2))

	p.hold(t, s)
	type res struct {
		n   int
		err error
	}
	results := make([]res, 6)
	calls := []func() (int, error){
		func() (int, error) { return s.Append(ctx, msgs("t1", "c1", 3, 4)) },           // ok
		func() (int, error) { return 0, s.CreateTenant(ctx, engine.Tenant{ID: "t1"}) }, // exists
		func() (int, error) { return s.Append(ctx, msgs("t1", "c2", 1, 1)) },           // ok
		func() (int, error) {
			dup := msgs("t1", "c1", 5, 6)
			dup[1].ClientMsgID = "c1-1"
			return s.Append(ctx, dup) // 5 stored, then a duplicate
		},
		func() (int, error) { return 0, s.CreateTenant(ctx, engine.Tenant{ID: "t2"}) }, // ok
		func() (int, error) { return s.Append(ctx, msgs("t1", "nope", 1, 1)) },         // unknown conversation
	}
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() {
			n, err := call()
			results[i] = res{n, err}
		})
		queued(t, s, i+1) // keep the order of the batch fixed
	}
	close(p.resume) // the held batch commits; the next takes all six
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
	check(1, 0, engine.ErrExists)
	check(2, 1, nil)
	var dup *engine.DuplicateError
	if r := results[3]; r.n != 1 || !errors.As(r.err, &dup) || dup.Seq != 1 {
		t.Errorf("op 3 = (%d, %v), want (1, duplicate of seq 1)", r.n, r.err)
	}
	check(4, 0, nil)
	check(5, 0, engine.ErrNotFound)

	if last, _ := s.LastSeq(ctx, "t1", "c1"); last != 5 {
		t.Errorf("c1 LastSeq = %d, want 5", last)
	}
	if last, _ := s.LastSeq(ctx, "t1", "c2"); last != 1 {
		t.Errorf("c2 LastSeq = %d, want 1", last)
	}
	if _, err := s.Tenant(ctx, "t2"); err != nil {
		t.Errorf("tenant t2 of the same batch: %v", err)
	}
}

// TestCommitFailureFailsBatch: when COMMIT fails, every op of the batch gets
// the error, nothing of it is stored, and the writer goes on.
func TestCommitFailureFailsBatch(t *testing.T) {
	p := newPauser()
	var breakCommit atomic.Bool
	p.inTx = func(conn *sql.Conn, _ int) {
		if breakCommit.CompareAndSwap(true, false) {
			// Foreign keys are then checked at COMMIT: the append to an
			// unknown conversation below makes the COMMIT itself fail.
			if _, err := conn.ExecContext(context.Background(), "PRAGMA defer_foreign_keys = ON"); err != nil {
				panic(err)
			}
		}
	}
	s := openTestHooks(t, Config{}, p.hooks())
	ctx := context.Background()
	seed(t, s, "t1", "c1")

	p.hold(t, s)
	errs := make([]error, 3)
	ns := make([]int, 3)
	var wg sync.WaitGroup
	wg.Go(func() { ns[0], errs[0] = s.Append(ctx, msgs("t1", "c1", 1, 2)) })
	queued(t, s, 1)
	wg.Go(func() { ns[1], errs[1] = s.Append(ctx, msgs("t1", "ghost", 1, 1)) })
	queued(t, s, 2)
	wg.Go(func() { errs[2] = s.CreateTenant(ctx, engine.Tenant{ID: "t2"}) })
	queued(t, s, 3)
	breakCommit.Store(true)
	close(p.resume)
	wg.Wait()

	for i, err := range errs {
		t.Logf("op %d: %v", i, err)
		if err == nil || ns[i] != 0 || !strings.Contains(err.Error(), "commit") {
			t.Errorf("op %d = (%d, %v), want (0, the commit's error)", i, ns[i], err)
		}
	}
	if last, _ := s.LastSeq(ctx, "t1", "c1"); last != 0 {
		t.Errorf("LastSeq = %d after a failed commit, want 0", last)
	}
	if _, err := s.Tenant(ctx, "t2"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("tenant of a failed commit: %v, want ErrNotFound", err)
	}
	// The writer recovered.
	appendAll(t, s, msgs("t1", "c1", 1, 2))
}

// TestCloseFlushesPending: ops queued when Close is called are committed,
// calls after it get ErrClosed, and the data is there on reopen.
func TestCloseFlushesPending(t *testing.T) {
	p := newPauser()
	dir := t.TempDir()
	cfg := Config{Path: dir + "/kefu.db"}
	s, err := open(context.Background(), cfg, p.hooks())
	mustOK(t, "open", err)
	ctx := context.Background()
	seed(t, s, "t1", "c1", "c2")

	p.hold(t, s)
	const pending = 20
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
	checkFor(t, 5*time.Second, "Close to stop accepting", s.isClosed.Load)
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

	s2 := openTest(t, cfg)
	for _, c := range []string{"c1", "c2"} {
		got, err := s2.Messages(ctx, "t1", c, 0, 100)
		mustOK(t, "messages after reopen", err)
		wantMessages(t, c, got, msgs("t1", c, 1, pending/2))
	}
}

// TestContextEndsWhileQueued: a caller that gives up while its op is queued
// gets its ctx error, and the writer skips the op.
func TestContextEndsWhileQueued(t *testing.T) {
	p := newPauser()
	s := openTestHooks(t, Config{}, p.hooks())
	seed(t, s, "t1", "c1")

	p.hold(t, s)
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

	// A later write commits after the skipped op's batch.
	mustOK(t, "later write", s.CreateTenant(context.Background(), engine.Tenant{ID: "t2"}))
	if last, _ := s.LastSeq(context.Background(), "t1", "c1"); last != 0 {
		t.Fatalf("the abandoned append was stored (LastSeq %d)", last)
	}

	_, err := s.Append(ctx, msgs("t1", "c1", 1, 1))
	wantErrIs(t, "append with an ended ctx", err, context.Canceled)
}

// TestMaxBatch: a batch never holds more than Config.MaxBatch ops.
func TestMaxBatch(t *testing.T) {
	p := newPauser()
	s := openTestHooks(t, Config{MaxBatch: 3}, p.hooks())
	ctx := context.Background()
	seed(t, s, "t1")

	p.hold(t, s)
	var wg sync.WaitGroup
	put := func(i int) {
		if _, err := s.PutSettingIfAbsent(ctx, fmt.Sprint(i), "v"); err != nil {
			t.Error(err)
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
}
