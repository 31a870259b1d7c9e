package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
)

// downGrace is how long a member whose connection broke is taken for dead
// before it is asked again: longer than the lease Kefu's etcd provider
// gives a member (2s) plus etcd's expiry sweep, so a member that died has
// left the topology by then. A member that only lost a connection is asked
// again after it, or as soon as a connection to it is made again.
const downGrace = 3 * time.Second

// errMemberLeft is returned when the member that was asked left the cluster
// before it answered: the request may or may not have been applied.
var errMemberLeft = errors.New("actors: the member that was asked left the cluster")

// routes is one member's view of where virtual actors live and which
// members it can reach: the cluster's topology as protoactor publishes it
// and the connections the remote saw break or made. With it a request
// never waits its whole timeout for a member that died:
//
//   - resolve asks an identity's owner for its activation, as protoactor's
//     disthash lookup does, but never while the owner is known dead (its
//     connection broke and it has not left yet): it waits for the topology
//     to change, then asks the new owner. disthash would ask the dead one
//     and wait five seconds.
//   - await ends a request when the member it went to leaves the cluster.
//
// Its state is guarded by mu: it is written by the actor system's event
// stream and read by any goroutine.
type routes struct {
	cl *cluster.Cluster

	mu      sync.Mutex
	rdv     *cluster.Rendezvous      // owners by identity; nil until the first topology
	members map[string]bool          // member addresses
	down    map[string]time.Time     // members whose connection broke, since when
	left    map[string]chan struct{} // closed when the member at the address leaves
	changed chan struct{}            // closed and replaced when members or down change
	movedAt time.Time                // when the members last changed, moving activations
}

// settleTime bounds how long after the members change two members may
// both run an activation: until each has seen the change (etcd's watch,
// milliseconds) and stopped the activations it no longer owns.
const settleTime = 10 * time.Second

// settledSince reports whether a view of the store read at t is newer
// than any activation that ran elsewhere before the members last changed.
func (r *routes) settledSince(t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return t.After(r.movedAt.Add(settleTime))
}

// ownerElsewhere returns the member that owns identity of kind by this
// member's view of the topology when that is another member; "" when it is
// this one, or before the first topology.
func (r *routes) ownerElsewhere(identity, kind string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rdv == nil {
		return ""
	}
	owner := r.rdv.GetByClusterIdentity(cluster.NewClusterIdentity(identity, kind))
	if owner == r.cl.ActorSystem.Address() {
		return ""
	}
	return owner
}

// misplacedGrace is how long an activation on a member that does not own
// it serves before it stops. protoactor's placement activates whatever it
// is asked for, and stops an activation only when its member sees the
// topology change that moves it; a member whose view is older than this
// one's asked for it, and by misplacedGrace later has seen the change and
// asks the owner, so the two do not take turns activating it. Left
// running, it would live beside the owner's activation for as long as
// anybody talks to it.
const misplacedGrace = time.Second

// misplacedMsg tells a new activation to check, misplacedGrace after it
// started, whether its member owns it now.
type misplacedMsg struct{ identity, kind string }

// leavesIfMisplaced is a receiver middleware of every kind this package
// hosts: as an activation starts (after its ClusterInit), when another
// member owns it, it is told to check again misplacedGrace later, and it
// stops then, after what its mailbox holds, if another member owns it
// still. Its stopping path is the one a move takes.
func leavesIfMisplaced(log *slog.Logger) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			switch m := env.Message.(type) {
			case *cluster.ClusterInit:
				next(c, env)
				if routesFor(m.Cluster).ownerElsewhere(m.Identity.Identity, m.Identity.Kind) != "" {
					later(c.(actor.Context), misplacedGrace, &misplacedMsg{identity: m.Identity.Identity, kind: m.Identity.Kind})
				}
			case *misplacedMsg:
				owner := routesFor(cluster.GetCluster(c.ActorSystem())).ownerElsewhere(m.identity, m.kind)
				if owner != "" {
					log.Info("activated on a member that does not own it; leaving it to the owner", "kind", m.kind, "identity", m.identity, "owner", owner)
					c.(actor.Context).Poison(c.Self())
				}
			default:
				next(c, env)
			}
		}
	}
}

// allRoutes holds the routes of each cluster in this process (one, but
// for tests). An entry lives as long as the process.
var allRoutes sync.Map // *cluster.Cluster -> *routes

// routesFor returns cl's routes. The first call subscribes them to the
// event stream: made before the member joins (NewClient), they see every
// topology; made later, they ask protoactor's lookup until the topology
// next changes.
func routesFor(cl *cluster.Cluster) *routes {
	if r, ok := allRoutes.Load(cl); ok {
		return r.(*routes)
	}
	r := &routes{cl: cl, down: map[string]time.Time{}, left: map[string]chan struct{}{}, changed: make(chan struct{})}
	got, loaded := allRoutes.LoadOrStore(cl, r)
	if !loaded {
		cl.ActorSystem.EventStream.SubscribeWithPredicate(r.onEvent, func(ev any) bool {
			switch ev.(type) {
			case *cluster.ClusterTopology, *remote.EndpointTerminatedEvent, *remote.EndpointConnectedEvent:
				return true
			}
			return false
		})
	}
	return got.(*routes)
}

func (r *routes) onEvent(ev any) {
	switch ev := ev.(type) {
	case *cluster.ClusterTopology:
		r.topology(ev)
	case *remote.EndpointTerminatedEvent:
		r.connection(ev.Address, false)
	case *remote.EndpointConnectedEvent:
		r.connection(ev.Address, true)
	}
}

// topology takes a new topology: owners change, members that left end the
// requests waiting on them.
func (r *routes) topology(t *cluster.ClusterTopology) {
	rdv := cluster.NewRendezvous()
	rdv.UpdateMembers(t.Members)
	members := make(map[string]bool, len(t.Members))
	for _, m := range t.Members {
		members[m.Address()] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !maps.Equal(members, r.members) {
		r.movedAt = time.Now()
	}
	r.rdv, r.members = rdv, members
	for _, m := range t.Joined { // a new member at an address that was down
		delete(r.down, m.Address())
	}
	for addr := range r.down {
		if !members[addr] {
			delete(r.down, addr)
		}
	}
	for addr, ch := range r.left {
		if !members[addr] {
			close(ch)
			delete(r.left, addr)
		}
	}
	r.signal()
}

// connection notes a connection to addr that broke (up false) or was made.
// Only members count: edges and other clients come and go.
func (r *routes) connection(addr string, up bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	since, marked := r.down[addr]
	switch {
	case up && marked:
		delete(r.down, addr)
	case !up && (!marked || time.Since(since) >= downGrace) && r.members[addr] && addr != r.cl.ActorSystem.Address():
		r.down[addr] = time.Now() // a mark older than the grace is spent: this is a new failure
	default:
		return
	}
	r.signal()
}

// signal wakes whoever waits for a change; r.mu is held.
func (r *routes) signal() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// resolve returns the activation of identity, activating it if needed, or
// an error (wrapping errNoActivation) after timeout.
func (r *routes) resolve(identity, kind string, timeout time.Duration) (*actor.PID, error) {
	ci := cluster.NewClusterIdentity(identity, kind)
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		known, owner, changed := r.rdv != nil, "", r.changed
		if known {
			owner = r.rdv.GetByClusterIdentity(ci)
		}
		downSince, isDown := r.down[owner]
		r.mu.Unlock()
		if !known {
			if pid := r.cl.Get(identity, kind); pid != nil {
				return pid, nil
			}
			return nil, errNoActivation
		}
		if owner == "" {
			return nil, fmt.Errorf("%w: no member hosts %s", errNoActivation, kind)
		}
		if isDown && time.Since(downSince) < downGrace {
			// The owner died: wait for the topology to change (or, for an
			// owner that may only have lost a connection, for the grace to
			// end).
			wait := min(time.Until(deadline), downGrace-time.Since(downSince))
			if wait <= 0 {
				return nil, fmt.Errorf("%w: its owner %s is down", errNoActivation, owner)
			}
			t := time.NewTimer(wait)
			select {
			case <-changed:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		if time.Until(deadline) <= 0 {
			return nil, fmt.Errorf("%w: %s did not answer in time", errNoActivation, owner)
		}
		f := r.cl.ActorSystem.Root.RequestFuture(actor.NewPID(owner, disthash.PartitionActivatorActorName),
			&cluster.ActivationRequest{ClusterIdentity: ci}, time.Until(deadline))
		res, err := r.await(f, owner)
		if errors.Is(err, errMemberLeft) {
			continue // the topology changed: ask the next owner
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNoActivation, err)
		}
		if resp, ok := res.(*cluster.ActivationResponse); ok && resp.Pid != nil && !resp.Failed {
			return resp.Pid, nil
		}
		return nil, errNoActivation
	}
}

// await waits for f, whose request went to the member at addr; it returns
// errMemberLeft as soon as that member leaves the cluster.
func (r *routes) await(f *actor.Future, addr string) (any, error) {
	left := r.leftOf(addr)
	if left == nil {
		return f.Result()
	}
	done := make(chan struct{})
	go func() {
		_ = f.Wait()
		close(done)
	}()
	select {
	case <-done:
		return f.Result()
	case <-left:
		return nil, errMemberLeft
	}
}

// leftOf returns a channel closed when the member at addr leaves, or nil
// when that cannot be told: before the first topology, for this member
// itself, and for an address that is no member's (protoactor drops the
// PIDs it cached for a member that left, and routes hands out none).
func (r *routes) leftOf(addr string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rdv == nil || !r.members[addr] || addr == r.cl.ActorSystem.Address() {
		return nil
	}
	ch, ok := r.left[addr]
	if !ok {
		ch = make(chan struct{})
		r.left[addr] = ch
	}
	return ch
}
