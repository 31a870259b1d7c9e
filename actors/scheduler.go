package actors

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/engine"
)

// Scheduler fires durable timers: it polls the store for timers that fell
// due and sends each to its conversation, which activates wherever the
// cluster places it (after a passivation or on a new node after a crash)
// and decides whether the timer still stands. Every node may run one; a
// timer fired twice runs once.
type Scheduler struct {
	store    engine.Store
	clock    engine.Clock
	cluster  *cluster.Cluster
	interval time.Duration
	log      *slog.Logger
	mu       sync.Mutex
	sent     map[timerKey]time.Time // firings sent recently, by wall time
}

type timerKey struct {
	tenant, conv string
	kind         engine.TimerKind
	dueMs        int64
}

// resendAfter is how long a fired timer whose row is still there waits
// before it is sent again (its conversation may have been unreachable).
const resendAfter = 10 * time.Second

// NewScheduler returns a scheduler for the member c. interval 0 means one
// second: timers fire within about that much of their due time.
func NewScheduler(store engine.Store, clock engine.Clock, c *cluster.Cluster, interval time.Duration, logger *slog.Logger) *Scheduler {
	if clock == nil {
		clock = engine.SystemClock{}
	}
	if interval <= 0 {
		interval = time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{store: store, clock: clock, cluster: c, interval: interval, log: logger, sent: make(map[timerKey]time.Time)}
}

// Run fires due timers every interval until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Tick(ctx)
		}
	}
}

// Tick sends every timer due now once and returns how many it sent.
func (s *Scheduler) Tick(ctx context.Context) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, cancel := context.WithTimeout(ctx, s.interval*5)
	defer cancel()
	due, err := s.store.DueTimers(c, s.clock.Now(), 1000)
	if err != nil {
		s.log.Warn("reading due timers", "err", err)
		return 0
	}
	wall := time.Now()
	for k, at := range s.sent {
		if wall.Sub(at) > resendAfter {
			delete(s.sent, k)
		}
	}
	n := 0
	for _, t := range due {
		k := timerKey{t.Tenant, t.Conv, t.Kind, t.DueAt.UnixMilli()}
		if _, ok := s.sent[k]; ok {
			continue
		}
		identity := ConversationIdentity(t.Tenant, t.Conv)
		pid, err := routesFor(s.cluster).resolve(identity, KindConversation, s.cluster.Config.RequestTimeoutTime)
		if err != nil {
			continue // tried again next tick
		}
		s.sent[k] = wall
		s.cluster.ActorSystem.Root.Send(pid, &actorpb.FireTimer{Kind: string(t.Kind), DueMs: k.dueMs})
		n++
	}
	return n
}
