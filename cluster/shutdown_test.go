package cluster_test

import (
	"context"
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

// TestShutdownWaitsForActivations: Shutdown returns only once every
// activation has finished stopping, even when that takes longer than the
// 10 s protoactor's own shutdown waits for it; a second call does nothing.
func TestShutdownWaitsForActivations(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 11 s: the wait must outlast protoactor's 10 s")
	}
	s := &slowStopper{entered: make(chan struct{}), release: make(chan struct{}), finished: make(chan struct{})}
	kind := protocluster.NewKind("slow", actor.PropsFromProducer(func() actor.Actor { return s }))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := cluster.Start(ctx, cluster.Config{}, kind)
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
	select {
	case <-done:
		t.Fatal("Shutdown returned while an activation was still stopping")
	case <-time.After(11 * time.Second): // a bounded look for something that must not happen
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
	n.Shutdown() // the second call returns at once
}
