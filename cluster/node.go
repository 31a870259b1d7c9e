package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
)

// Config says how to start a member.
type Config struct {
	// Name is the cluster name; members with different names never meet.
	// Zero means "kefu".
	Name string
	// Host and Port are where the remote listens. Zero Host means
	// 127.0.0.1; zero Port picks a free port.
	Host string
	Port int
	// RequestTimeout bounds one request to an actor. Zero means 5s.
	RequestTimeout time.Duration
	// Logger receives Proto.Actor's own logs at Level and above. Nil
	// discards them.
	Logger *slog.Logger
	// Level is the lowest level of Proto.Actor's logs that is kept. Its
	// INFO lines are chatty, so the zero value (INFO) is raised to WARN.
	Level slog.Level
	// StopTimeout bounds how long Shutdown waits for the activations to
	// stop (each may finish store writes as it stops). Zero means 1 minute.
	StopTimeout time.Duration
}

// Node is a running cluster member.
type Node struct {
	System  *actor.ActorSystem
	Cluster *cluster.Cluster
	cfg     Config
	logger  *slog.Logger
	stop    sync.Once
}

// ErrStart is returned, wrapped, when a member cannot start.
var ErrStart = errors.New("cluster: cannot start member")

// Start starts a single-node member hosting kinds and returns once it has
// joined. A busy port is an error, not a panic.
func Start(ctx context.Context, cfg Config, kinds ...*cluster.Kind) (*Node, error) {
	if cfg.Name == "" {
		cfg.Name = "kefu"
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = time.Minute
	}
	if cfg.Level < slog.LevelWarn {
		cfg.Level = slog.LevelWarn
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// remote.Start panics when it cannot listen: probe the address first.
	if cfg.Port != 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrStart, err)
		}
		_ = l.Close()
	}
	protoLogger := slog.New(levelHandler{min: cfg.Level, Handler: logger.Handler()}).With("component", "protoactor")
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return protoLogger }))
	remoteCfg := remote.Configure(cfg.Host, cfg.Port)
	clusterCfg := cluster.Configure(cfg.Name, localProvider{}, disthash.New(), remoteCfg,
		cluster.WithKinds(kinds...),
		cluster.WithRequestTimeout(cfg.RequestTimeout),
	)
	c := cluster.New(system, clusterCfg)
	started := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				started <- fmt.Errorf("%w: %v", ErrStart, r)
			}
		}()
		c.StartMember() // returns after protoactor's own one-second settle
		started <- nil
	}()
	select {
	case err := <-started:
		if err != nil {
			return nil, err
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrStart, ctx.Err())
	}
	return &Node{System: system, Cluster: c, cfg: cfg, logger: logger}, nil
}

// Address is the member's remote address.
func (n *Node) Address() string { return n.System.Address() }

// RequestTimeout is the configured bound of one actor request.
func (n *Node) RequestTimeout() time.Duration { return n.cfg.RequestTimeout }

// Shutdown stops every activation and waits until each has stopped (it
// finishes the message it is handling, then what it does on
// *actor.Stopping: a conversation stores the writes it still holds), for
// at most Config.StopTimeout; then it stops the remote. Once it returns no
// activation of this member touches the store any more, so the caller may
// close it. Calls after the first do nothing.
func (n *Node) Shutdown() {
	n.stop.Do(func() {
		// Every activation is a child of the disthash placement actor, which
		// therefore stops only after all of them. The identity lookup's
		// Shutdown poisons it but waits at most 10 s (protoactor's fixed
		// PoisonFuture timeout) and then returns anyway: wait for the
		// placement actor itself.
		stopped := n.watch(actor.NewPID(n.System.Address(), disthash.PartitionActivatorActorName))
		n.Cluster.IdentityLookup.Shutdown()
		timer := time.NewTimer(n.cfg.StopTimeout)
		defer timer.Stop()
		select {
		case <-stopped:
		case <-timer.C:
			n.logger.Error("cluster: activations still stopping; shutting down without them", "waited", n.cfg.StopTimeout)
		}
		n.Cluster.Shutdown(false)
	})
}

// watch returns a channel closed once the local actor pid has stopped (at
// once if it has already). It returns once pid has the watch in its
// mailbox: an actor that is already stopping when a watch reaches it
// answers Terminated at once.
func (n *Node) watch(pid *actor.PID) <-chan struct{} {
	watching, stopped := make(chan struct{}), make(chan struct{})
	n.System.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actor.Started:
			ctx.Watch(pid)
			close(watching)
		case *actor.Terminated:
			if m.Who.Equal(pid) {
				close(stopped)
				ctx.Stop(ctx.Self())
			}
		}
	}))
	<-watching
	return stopped
}

// levelHandler drops records below min before they reach the wrapped handler.
type levelHandler struct {
	min slog.Level
	slog.Handler
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelHandler{min: h.min, Handler: h.Handler.WithAttrs(attrs)}
}

func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{min: h.min, Handler: h.Handler.WithGroup(name)}
}
