package cluster_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/kefu-dev/kefu/cluster"
)

// slowStopper is an activation whose *actor.Stopping takes until release
// is closed, as a conversation's does while it stores what it still holds.
type slowStopper struct{ entered, release, finished chan struct{} }

func (s *slowStopper) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Stopping:
		close(s.entered)
		<-s.release
		close(s.finished)
	case string:
		ctx.Respond("ok")
	}
}

// logSeen is a slog handler that closes seen at the first record whose
// message is msg.
type logSeen struct {
	msg  string
	seen chan struct{}
	once sync.Once
}

func (h *logSeen) Enabled(context.Context, slog.Level) bool { return true }
func (h *logSeen) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logSeen) WithGroup(string) slog.Handler            { return h }
func (h *logSeen) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.seen) })
	}
	return nil
}

// TestShutdownWaitsForActivations: Shutdown returns only once every
// activation has finished stopping, even when that takes longer than the
// 10 s protoactor's own shutdown waits for it; meanwhile the member starts
// no new activation, which nobody would stop; a second call does nothing.
func TestShutdownWaitsForActivations(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 11 s: the wait must outlast protoactor's 10 s")
	}
	s := &slowStopper{entered: make(chan struct{}), release: make(chan struct{}), finished: make(chan struct{})}
	slow := protocluster.NewKind("slow", actor.PropsFromProducer(func() actor.Actor { return s }))
	lateStarted := make(chan struct{}, 1)
	late := protocluster.NewKind("late", actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started:
			lateStarted <- struct{}{}
		case string:
			ctx.Respond("ok")
		}
	}))
	refusals := &logSeen{msg: "cluster: refusing an activation; the member is stopping", seen: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := cluster.Start(ctx, cluster.Config{Logger: slog.New(refusals)}, slow, late)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := n.Cluster.Request("one", "slow", "hello"); err != nil || res != "ok" {
		t.Fatalf("activating: %v %v", res, err)
	}
	done := make(chan struct{})
	go func() {
		n.Shutdown()
		close(done)
	}()
	<-s.entered
	// protoactor's placement actor takes this request once its own wait
	// for the stopping activation is over, 10 s on.
	go func() { _, _ = n.Cluster.Request("two", "late", "hello") }()
	select {
	case <-refusals.seen:
	case <-lateStarted:
		t.Fatal("an activation started on a member that was stopping")
	case <-done:
		t.Fatal("Shutdown returned while an activation was still stopping")
	case <-time.After(30 * time.Second):
		t.Fatal("the request for a new activation was neither refused nor served")
	}
	select {
	case <-done:
		t.Fatal("Shutdown returned while an activation was still stopping")
	case <-time.After(time.Second): // a bounded look for something that must not happen
	}
	close(s.release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the activation stopped")
	}
	select {
	case <-s.finished:
	default:
		t.Fatal("Shutdown returned before the activation finished stopping")
	}
	select {
	case <-lateStarted:
		t.Fatal("an activation started on a member that was stopping")
	default:
	}
	n.Shutdown() // the second call returns at once
}
