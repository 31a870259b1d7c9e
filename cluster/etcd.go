package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"
)

// Membership timing. A member's record in etcd lives on a lease; the
// member renews it every defaultLeaseTTL/4 and etcd deletes the record
// when the lease runs out, which every other member sees through its watch
// at once.
//
//   - defaultLeaseTTL is 2s, the shortest lease etcd grants with its default
//     election timeout (1.5 x 1s, rounded up): a member killed with -9 is
//     dropped 1.5-2s after its last renewal, plus up to 0.5s for etcd's
//     expiry sweep, so within 2.5s. That leaves half of the 5s budget for a
//     conversation to activate on another node and take messages again.
//   - Renewing every 500ms (four times per lease) lets a member miss two
//     renewals in a row (a GC pause, a starved CPU, an etcd leader change)
//     without being dropped: only a stall of 1.5s does. A dropped member
//     cannot come back under its id (the others block it), so it stops
//     (Node.Lost) and the process is restarted.
//
// Graceful leave does not wait for any of this: it revokes the lease, which
// deletes the record at once.
const (
	defaultLeaseTTL = 2 * time.Second
	// etcdOpTimeout bounds one etcd call once etcd has answered the probe.
	etcdOpTimeout = 5 * time.Second
	// etcdProbeTimeout bounds one probe of etcd at start.
	etcdProbeTimeout = 2 * time.Second
	// The backoff between probes (and between attempts to watch again)
	// starts at etcdRetryMin and doubles up to etcdRetryMax.
	etcdRetryMin = 100 * time.Millisecond
	etcdRetryMax = 5 * time.Second
)

// ErrLost is sent, wrapped, on Node.Lost when etcd dropped this member
// although it did not leave.
var ErrLost = errors.New("cluster: this member was dropped from the cluster")

// etcdProvider is a protoactor ClusterProvider over etcd. Each member keeps
// a record (its id, address and kinds, as protobuf JSON) under
// /kefu/<cluster name>/members/<member id> on a lease it renews; every
// member and client lists these records and watches them, and tells the
// member list each change. A client keeps no record: members never route
// activations to it.
//
// It replaces protoactor's cluster/clusterproviders/etcd, which in the
// version Kefu pins cannot bound its calls (StartMember blocks forever when
// etcd is down), has a fixed 3s lease that is never revoked on leave, never
// closes its etcd client, restarts a failed watch without reading what it
// missed, and writes its state from several goroutines without
// synchronisation. Member ids are the actor system's ids, as protoactor's
// member list, gossip and block list expect.
type etcdProvider struct {
	endpoints []string
	prefix    string
	ttl       time.Duration
	log       *slog.Logger

	// Set before the provider starts, read-only afterwards.
	client *clientv3.Client
	c      *cluster.Cluster
	self   *cluster.Member // nil for a client
	lease  clientv3.LeaseID

	ctx     context.Context // ends when the member leaves
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the watch and keep-alive goroutines
	leaving atomic.Bool
	lost    chan error // receives once: the record is gone but the member did not leave
	once    sync.Once  // leave

	// members is the last membership read; after start, only the watch
	// goroutine touches it.
	members map[string]*cluster.Member
}

func newEtcdProvider(name string, endpoints []string, ttl time.Duration, logger *slog.Logger) *etcdProvider {
	ctx, cancel := context.WithCancel(context.Background())
	return &etcdProvider{
		endpoints: endpoints,
		prefix:    "/kefu/" + name + "/members/",
		ttl:       ttl,
		log:       logger,
		ctx:       ctx,
		cancel:    cancel,
		lost:      make(chan error, 1),
		members:   map[string]*cluster.Member{},
	}
}

// connect probes etcd until it answers or ctx ends, with a fresh client
// for each attempt (a gRPC connection that failed may wait a long backoff
// before it dials again) and exponential backoff between attempts. Each
// failed attempt is logged.
//
// The probe's client is closed: the provider's own is made by StartMember
// or StartClient, after protoactor's remote.Start has set gRPC's global
// logger (remote/server.go), which a running gRPC client reads without
// synchronisation.
func (p *etcdProvider) connect(ctx context.Context) error {
	wait := etcdRetryMin
	for attempt := 1; ; attempt++ {
		client, err := p.newClient()
		if err == nil {
			probeCtx, cancel := context.WithTimeout(ctx, etcdProbeTimeout)
			_, err = client.Get(probeCtx, p.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
			cancel()
			_ = client.Close()
			if err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("etcd at %s did not answer within the join timeout (%d attempts, the last: %v)",
				strings.Join(p.endpoints, ","), attempt, err)
		}
		p.log.Warn("cluster: etcd does not answer; retrying", "endpoints", strings.Join(p.endpoints, ","),
			"attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, etcdRetryMax)
	}
}

func (p *etcdProvider) newClient() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: p.endpoints, Logger: zap.NewNop()})
}

// StartMember registers this member on a new lease, reads the membership
// and starts watching it and renewing the lease.
func (p *etcdProvider) StartMember(c *cluster.Cluster) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return fmt.Errorf("cluster: member address: %w", err)
	}
	kinds := c.GetClusterKinds()
	slices.Sort(kinds)
	p.c = c
	p.self = &cluster.Member{Id: c.ActorSystem.ID, Host: host, Port: int32(port), Kinds: kinds}
	record, err := protojson.Marshal(p.self)
	if err != nil {
		return err
	}
	if p.client, err = p.newClient(); err != nil {
		return fmt.Errorf("cluster: etcd client: %w", err)
	}
	ctx, cancel := context.WithTimeout(p.ctx, etcdOpTimeout)
	defer cancel()
	lease, err := p.client.Grant(ctx, int64(p.ttl/time.Second))
	if err != nil {
		return fmt.Errorf("cluster: etcd lease: %w", err)
	}
	if time.Duration(lease.TTL)*time.Second != p.ttl {
		p.log.Warn("cluster: etcd granted another lease TTL than asked", "asked", p.ttl, "granted", time.Duration(lease.TTL)*time.Second)
	}
	p.lease = lease.ID
	if _, err := p.client.Put(ctx, p.prefix+p.self.Id, string(record), clientv3.WithLease(lease.ID)); err != nil {
		return fmt.Errorf("cluster: registering in etcd: %w", err)
	}
	if err := p.start(ctx); err != nil {
		return err
	}
	p.wg.Add(1)
	go p.keepAlive()
	return nil
}

// StartClient reads the membership and starts watching it; a client keeps
// no record.
func (p *etcdProvider) StartClient(c *cluster.Cluster) error {
	p.c = c
	var err error
	if p.client, err = p.newClient(); err != nil {
		return fmt.Errorf("cluster: etcd client: %w", err)
	}
	ctx, cancel := context.WithTimeout(p.ctx, etcdOpTimeout)
	defer cancel()
	return p.start(ctx)
}

// start reads the membership, tells the member list and watches for
// changes from the revision read.
func (p *etcdProvider) start(ctx context.Context) error {
	rev, err := p.list(ctx)
	if err != nil {
		return err
	}
	p.publish()
	p.wg.Add(1)
	go p.watch(rev + 1)
	return nil
}

// list replaces members with the records in etcd and returns the revision
// they were read at.
func (p *etcdProvider) list(ctx context.Context) (int64, error) {
	resp, err := p.client.Get(ctx, p.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("cluster: reading the members from etcd: %w", err)
	}
	clear(p.members)
	for _, kv := range resp.Kvs {
		p.put(kv.Key, kv.Value)
	}
	return resp.Header.Revision, nil
}

func (p *etcdProvider) put(key, value []byte) {
	var m cluster.Member
	if err := protojson.Unmarshal(value, &m); err != nil || m.Id == "" {
		p.log.Error("cluster: ignoring an unreadable member record in etcd", "key", string(key), "err", err)
		return
	}
	p.members[m.Id] = &m
}

// publish tells the member list the current membership.
func (p *etcdProvider) publish() {
	members := make(cluster.Members, 0, len(p.members))
	for _, m := range p.members {
		members = append(members, m)
	}
	slices.SortFunc(members, func(a, b *cluster.Member) int { return strings.Compare(a.Id, b.Id) })
	p.c.MemberList.UpdateClusterTopology(members)
}

// watch applies membership changes from rev on until the member leaves.
// A watch that ends (compaction, no leader, etcd unreachable for long) is
// replaced after reading the whole membership again.
func (p *etcdProvider) watch(rev int64) {
	defer p.wg.Done()
	wait := etcdRetryMin
	for {
		// WithRequireLeader: an etcd member cut off from its leader ends
		// the watch instead of going quiet.
		wctx, stop := context.WithCancel(clientv3.WithRequireLeader(p.ctx))
		for resp := range p.client.Watch(wctx, p.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev)) {
			if err := resp.Err(); err != nil {
				p.log.Warn("cluster: the etcd watch ended; reading the members again", "err", err)
				break
			}
			for _, ev := range resp.Events {
				switch ev.Type {
				case clientv3.EventTypePut:
					p.put(ev.Kv.Key, ev.Kv.Value)
				case clientv3.EventTypeDelete:
					id := strings.TrimPrefix(string(ev.Kv.Key), p.prefix)
					delete(p.members, id)
					if p.self != nil && id == p.self.Id && !p.leaving.Load() {
						p.fail(fmt.Errorf("%w: its record in etcd is gone (its lease expired)", ErrLost))
					}
				}
			}
			rev = resp.Header.Revision + 1
			wait = etcdRetryMin
			p.publish()
		}
		stop()
		for {
			if p.ctx.Err() != nil {
				return
			}
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, etcdRetryMax)
			ctx, cancel := context.WithTimeout(p.ctx, etcdOpTimeout)
			r, err := p.list(ctx)
			cancel()
			if err == nil {
				rev = r + 1
				p.publish()
				break
			}
			p.log.Warn("cluster: cannot read the members from etcd; retrying", "endpoints", strings.Join(p.endpoints, ","), "retry_in", wait, "err", err)
		}
	}
}

// keepAlive renews the lease every ttl/4 until the member leaves. Failures
// are logged once until a renewal succeeds again; a lease etcd no longer
// knows means the member was dropped.
func (p *etcdProvider) keepAlive() {
	defer p.wg.Done()
	tick := time.NewTicker(p.ttl / 4)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(p.ctx, p.ttl/2)
		resp, err := p.client.KeepAliveOnce(ctx, p.lease)
		cancel()
		switch {
		case p.ctx.Err() != nil:
			return
		case errors.Is(err, rpctypes.ErrLeaseNotFound) || err == nil && resp.TTL <= 0:
			p.fail(fmt.Errorf("%w: etcd did not hear from it for %v and let its lease expire", ErrLost, p.ttl))
			return
		case err != nil:
			if !failing {
				p.log.Warn("cluster: cannot renew this member's lease in etcd", "endpoints", strings.Join(p.endpoints, ","), "ttl", p.ttl, "err", err)
			}
			failing = true
		case failing:
			p.log.Info("cluster: renewing this member's lease in etcd again")
			failing = false
		}
	}
}

func (p *etcdProvider) fail(err error) {
	select {
	case p.lost <- err:
		p.log.Error("cluster: this member is no longer in the cluster; it must restart to join again", "err", err)
	default:
	}
}

// Shutdown leaves the cluster: see leave. protoactor calls it only from a
// graceful Cluster.Shutdown, which Kefu does not use.
func (p *etcdProvider) Shutdown(bool) error {
	p.leave()
	return nil
}

// leave stops watching and renewing, revokes the lease (etcd deletes the
// record at once, and every other member drops this one) and closes the
// client. It may be called more than once, and before the provider
// started.
func (p *etcdProvider) leave() {
	p.once.Do(func() {
		p.leaving.Store(true)
		p.cancel()
		p.wg.Wait()
		if p.client == nil {
			return
		}
		if p.lease != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), etcdOpTimeout)
			// A lease etcd no longer knows has already taken the record.
			if _, err := p.client.Revoke(ctx, p.lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
				p.log.Warn("cluster: cannot remove this member from etcd; the others drop it when its lease expires", "ttl", p.ttl, "err", err)
			}
			cancel()
		}
		_ = p.client.Close()
	})
}
