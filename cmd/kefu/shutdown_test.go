package main

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/config"
	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storetest"
)

// stopReleasing stops the server while release holds store calls: it opens
// release once an actor has started finishing its writes (finishing) or,
// should none ever start, once the server has stopped, and waits for it.
func (s *testServer) stopReleasing(t testing.TB, finishing <-chan struct{}, release chan struct{}) {
	t.Helper()
	s.cancel()
	s.cancel = nil
	var err error
	stopped := false
	select {
	case <-finishing:
	case err = <-s.done:
		stopped = true
	case <-time.After(60 * time.Second):
		t.Fatal("the server neither stopped nor finished its writes within 60s")
	}
	close(release)
	if !stopped {
		select {
		case err = <-s.done:
		case <-time.After(60 * time.Second):
			t.Fatal("server did not stop within 60s")
		}
	}
	if err != nil {
		t.Errorf("server stopped with error: %v", err)
	}
}

// TestShutdownStoresEveryChange: a graceful stop right after several
// changes of a conversation, while their store writes are held, loses none
// of them: after a restart its events are all there in order, its header
// carries the rating and no timer is left. (On FerretDB such writes queue
// up by themselves: that is how TestRating once lost its second rating.)
func TestShutdownStoresEveryChange(t *testing.T) { forEachStore(t, testShutdownStoresEveryChange) }

func testShutdownStoresEveryChange(t *testing.T, cfg config.Config) {
	held := &storetest.Held{}
	finishing := make(chan struct{})
	var once sync.Once
	s := startServerHooks(t, cfg, serveHooks{wrapStore: func(st engine.Store) engine.Store {
		held.Store = st
		return held
	}}, func(r slog.Record) {
		if r.Message == "finishing store writes before stopping" {
			once.Do(func() { close(finishing) })
		}
	})
	admin, _ := s.staffToken(t)
	alice := s.createAgent(t, admin, "alice", engine.StaffAgent, 3, nil)
	aliceWS := s.online(t, alice)
	cust := s.newCustomer(t)
	conv := cust.conv
	cust.ws.send(map[string]any{"type": "escalate", "conv": conv})
	cust.ws.state(conv, engine.StateAssigned)

	release := held.Shut()
	aliceWS.op("h", map[string]any{"type": engine.FrameHold, "conv": conv})
	aliceWS.op("u", map[string]any{"type": engine.FrameUnhold, "conv": conv})
	aliceWS.op("c", map[string]any{"type": "close", "conv": conv, "reason": "resolved"})
	rating := cust.ws.op("r", map[string]any{"type": "rate", "conv": conv, "score": 5}).Rating
	s.stopReleasing(t, finishing, release)

	var st engine.Store
	s = startServerHooks(t, cfg, serveHooks{wrapStore: func(opened engine.Store) engine.Store {
		st = opened
		return opened
	}}, nil)
	var types []engine.EventType
	for _, e := range s.events(t, admin, conv) {
		types = append(types, e.Type)
	}
	want := []engine.EventType{engine.EventEscalated, engine.EventAssigned, engine.EventHeld, engine.EventUnheld, engine.EventClosed, engine.EventRated}
	if !slices.Equal(types, want) {
		t.Errorf("events after the restart %v, want %v", types, want)
	}
	s.listed(t, admin, "state=CLOSED", conv, ratedAs(rating))
	if timers, err := st.Timers(context.Background(), "demo", conv); err != nil || len(timers) != 0 {
		t.Errorf("timers after the restart %+v (%v), want none", timers, err)
	}
}
