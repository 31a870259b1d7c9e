package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// AdvertisedHost and AdvertisedPort are the address other members
	// dial. Zero: Host and Port.
	AdvertisedHost string
	AdvertisedPort int
	// Etcd lists the etcd endpoints whose records make the cluster. Empty:
	// a single member in this process, with no etcd.
	Etcd []string
	// Client joins as a cluster client (the edge's shape): it hosts no
	// kinds, keeps no record in etcd and sends requests to the members.
	// It needs Etcd.
	Client bool
	// LeaseTTL is how long etcd keeps the record of a member that stopped
	// renewing it (a dead member). Zero means 2s; see defaultLeaseTTL.
	LeaseTTL time.Duration
	// RequestTimeout bounds one request to an actor. Zero means 5s.
	RequestTimeout time.Duration
	// StopTimeout bounds how long Shutdown waits for the activations to
	// stop (each may finish store writes as it stops). Zero means 1 minute.
	StopTimeout time.Duration
	// Logger receives Kefu's cluster logs (etcd retries, membership
	// changes) and Proto.Actor's own logs at Level and above. Nil
	// discards them.
	Logger *slog.Logger
	// Level is the lowest level of Proto.Actor's logs that is kept. Its
	// INFO lines are chatty, so the zero value (INFO) is raised to WARN.
	Level slog.Level
}

// Node is a cluster member: created by New, in the cluster after Join.
type Node struct {
	System  *actor.ActorSystem
	Cluster *cluster.Cluster
	cfg     Config
	logger  *slog.Logger
	etcd    *etcdProvider // nil: the in-process single member
	joined  bool
	once    sync.Once // Shutdown
	members atomic.Pointer[[]*cluster.Member]
	// stopping is set as Shutdown starts: from then on the member refuses
	// new activations (spawnActivation).
	stopping atomic.Bool
}

// ErrStart is returned, wrapped, when a member cannot start.
var ErrStart = errors.New("cluster: cannot start member")

// Start is New and Join: it returns once the member has joined.
func Start(ctx context.Context, cfg Config, kinds ...*cluster.Kind) (*Node, error) {
	n, err := New(cfg, kinds...)
	if err != nil {
		return nil, err
	}
	if err := n.Join(ctx); err != nil {
		n.Shutdown()
		return nil, err
	}
	return n, nil
}

// New builds a member hosting kinds (none for a client) without starting
// it: its Cluster can be handed to clients, which must not send before
// Join returns.
func New(cfg Config, kinds ...*cluster.Kind) (*Node, error) {
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
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = defaultLeaseTTL
	}
	if cfg.Level < slog.LevelWarn {
		cfg.Level = slog.LevelWarn
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Client && len(cfg.Etcd) == 0 {
		return nil, fmt.Errorf("%w: a client member needs etcd to find the members", ErrStart)
	}
	if cfg.Client && len(kinds) > 0 {
		return nil, fmt.Errorf("%w: a client member hosts no kinds", ErrStart)
	}
	var opts []remote.ConfigOption
	if cfg.AdvertisedHost != "" || cfg.AdvertisedPort != 0 {
		if cfg.Port == 0 {
			// The advertised port defaults to the port, which must then be
			// known before the remote listens.
			port, err := freePort(cfg.Host)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrStart, err)
			}
			cfg.Port = port
		}
		host, port := cmp.Or(cfg.AdvertisedHost, cfg.Host), cmp.Or(cfg.AdvertisedPort, cfg.Port)
		opts = append(opts, remote.WithAdvertisedHost(net.JoinHostPort(host, strconv.Itoa(port))))
	}
	protoLogger := slog.New(levelHandler{min: cfg.Level, Handler: logger.Handler()}).With("component", "protoactor")
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return protoLogger }))
	n := &Node{System: system, cfg: cfg, logger: logger}
	var provider cluster.ClusterProvider = localProvider{}
	if len(cfg.Etcd) > 0 {
		n.etcd = newEtcdProvider(cfg.Name, cfg.Etcd, cfg.LeaseTTL, logger)
		provider = n.etcd
	}
	hosted := make([]*cluster.Kind, len(kinds))
	for i, k := range kinds {
		hosted[i] = &cluster.Kind{Kind: k.Kind, Props: k.Props.Clone(actor.WithSpawnFunc(n.spawnActivation)), StrategyBuilder: k.StrategyBuilder}
	}
	clusterCfg := cluster.Configure(cfg.Name, provider, disthash.New(), remote.Configure(cfg.Host, cfg.Port, opts...),
		cluster.WithKinds(hosted...),
		cluster.WithRequestTimeout(cfg.RequestTimeout),
	)
	n.Cluster = cluster.New(system, clusterCfg)
	// protoactor's MemberList reads its members without its lock: keep a
	// copy of each topology it publishes instead.
	n.members.Store(&[]*cluster.Member{})
	system.EventStream.Subscribe(func(ev any) {
		if t, ok := ev.(*cluster.ClusterTopology); ok {
			members := slices.Clone(t.Members)
			n.members.Store(&members)
		}
	})
	return n, nil
}

// Join starts the remote and joins the cluster: with etcd, it first probes
// etcd until it answers, retrying with backoff, and gives up when ctx
// ends. A busy port is an error, not a panic. Join is called once.
func (n *Node) Join(ctx context.Context) error {
	// remote.Start panics when it cannot listen: probe the address first.
	if n.cfg.Port != 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(n.cfg.Host, strconv.Itoa(n.cfg.Port)))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrStart, err)
		}
		_ = l.Close()
	}
	if n.etcd != nil {
		if err := n.etcd.connect(ctx); err != nil {
			return fmt.Errorf("%w: %v", ErrStart, err)
		}
	}
	started := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil { // protoactor panics when its provider fails
				started <- fmt.Errorf("%w: %v", ErrStart, r)
			}
		}()
		if n.cfg.Client {
			n.Cluster.StartClient()
		} else {
			n.Cluster.StartMember() // returns after protoactor's own one-second settle
		}
		started <- nil
	}()
	select {
	case err := <-started:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrStart, ctx.Err())
	}
	n.joined = true
	if n.etcd != nil {
		n.logger.Info("joined the cluster", "etcd", strings.Join(n.cfg.Etcd, ","), "address", n.Address(),
			"client", n.cfg.Client, "members", len(n.Members()))
	}
	return nil
}

// Address is the member's remote address, as other members dial it.
func (n *Node) Address() string { return n.System.Address() }

// Members are the cluster's members (never clients) as this member last
// learned them. They are shared: do not modify them.
func (n *Node) Members() []*cluster.Member { return *n.members.Load() }

// RequestTimeout is the configured bound of one actor request.
func (n *Node) RequestTimeout() time.Duration { return n.cfg.RequestTimeout }

// Lost receives an error (ErrLost) if the member is dropped from the
// cluster without leaving: etcd let its lease expire (a stall, a network
// partition). The others then refuse it, so the process should stop and
// be restarted. Nil (never ready) for the in-process single member.
func (n *Node) Lost() <-chan error {
	if n.etcd == nil {
		return nil
	}
	return n.etcd.lost
}

// Shutdown leaves the cluster and stops: with etcd it first removes the
// member's record, so the others stop routing to it at once and its
// actors activate elsewhere on their next request; then it stops every
// activation and waits until each has stopped (see below), then the
// remote.
// It may be called more than once, and after a failed Join.
//
// This is protoactor's graceful shutdown in Kefu's order, without its
// fixed two-second wait: the provider leaves first (protoactor stops the
// actor system first), and activations stop before the remote.
func (n *Node) Shutdown() {
	n.once.Do(func() {
		n.stopping.Store(true)
		if n.etcd != nil {
			n.etcd.leave()
		}
		if !n.joined {
			if n.Cluster.Remote != nil {
				n.Cluster.Remote.Shutdown(false)
			}
			n.System.Shutdown()
			return
		}
		if n.cfg.Client {
			// A client hosts no activations and never started gossip,
			// which Cluster.Shutdown assumes.
			n.Cluster.IdentityLookup.Shutdown()
			n.System.Shutdown()
			n.Cluster.Remote.Shutdown(false)
			return
		}
		// Every activation is a child of the disthash placement actor, which
		// therefore stops only after all of them (each finishes the message
		// it handles, then its *actor.Stopping work: a conversation stores
		// the writes it still holds). The identity lookup's Shutdown poisons
		// it but waits at most 10 s (protoactor's fixed PoisonFuture
		// timeout): wait for the placement actor itself, for at most
		// StopTimeout, so that no activation touches the store once
		// Shutdown returns.
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

// spawnActivation spawns an activation for protoactor's placement actor,
// or, once the member is stopping, an actor that stops at once instead.
// The placement actor activates whatever it is asked for, also while it
// waits for its activations to stop; it stops them all once, so one it
// started after that would keep it, and Shutdown, waiting. Members ask
// for activations during a shutdown: an activation telling another as it
// stops, a session registering again.
func (n *Node) spawnActivation(system *actor.ActorSystem, id string, props *actor.Props, parent actor.SpawnerContext) (*actor.PID, error) {
	if n.stopping.Load() {
		n.logger.Info("cluster: refusing an activation; the member is stopping", "actor", id)
		props = refusedActivation
	}
	return actor.DefaultSpawner(system, id, props, parent)
}

// refusedActivation stops as soon as it starts. What was sent to it is
// dropped; a request fails with its timeout, and the sender's next lookup
// finds the member gone.
var refusedActivation = actor.PropsFromFunc(func(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		ctx.Stop(ctx.Self())
	}
})

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

// freePort returns a port on host that was free a moment ago.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
