package actors_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/cluster"
	"github.com/kefu-dev/kefu/cluster/clustertest"
	"github.com/kefu-dev/kefu/engine"
)

// twoMembers starts two members on an etcd of the test's own, sharing one
// store, and returns them once each sees the other, with a client of the
// second.
func twoMembers(t *testing.T) (a, b *cluster.Node, client *actors.Client) {
	t.Helper()
	if raceEnabled {
		t.Skip("two members in one process: protoactor-go's own data races (see cluster's skipProtoactorRaces)")
	}
	etcd := clustertest.StartEtcd(t)
	store := openStore(t)
	var members [2]*cluster.Node
	for i := range members {
		deps := actors.Deps{Store: store, Metrics: actors.NewMetrics(prometheus.NewRegistry())}
		n, err := cluster.New(cluster.Config{Etcd: etcd}, actors.Kinds(deps)...)
		if err != nil {
			t.Fatal(err)
		}
		// Before it joins, as the kefu command does: its routes see
		// every topology.
		client = actors.NewClient(n.Cluster, 5*time.Second, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = n.Join(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Shutdown) // before the store closes
		members[i] = n
	}
	a, b = members[0], members[1]
	deadline := time.Now().Add(20 * time.Second)
	for len(a.Members()) < 2 || len(b.Members()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the two members did not see each other")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return a, b, client
}

// activateOn asks n's placement for an activation of ci, as a member whose
// view of the topology makes n the owner would.
func activateOn(t *testing.T, n *cluster.Node, ci *protocluster.ClusterIdentity) *actor.PID {
	t.Helper()
	res, err := n.System.Root.RequestFuture(actor.NewPID(n.Address(), disthash.PartitionActivatorActorName),
		&protocluster.ActivationRequest{ClusterIdentity: ci}, 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	pid := res.(*protocluster.ActivationResponse).Pid
	if pid == nil || pid.Address != n.Address() {
		t.Fatalf("activation of %v on %s: %v", ci, n.Address(), pid)
	}
	return pid
}

// waitStopped waits until pid, an activation on n, has stopped.
func waitStopped(t *testing.T, n *cluster.Node, pid *actor.PID, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, alive := n.System.ProcessRegistry.GetLocal(pid.Id); !alive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the activation %s on a member that does not own it is still running after %v", pid.Id, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An agent, a queue or a tenant activated on a member that does not own
// it (by a member whose view of the topology is older) leaves within a
// second or so; one on its owner stays.
func TestActivationOnAMemberThatDoesNotOwnItLeaves(t *testing.T) {
	a, b, _ := twoMembers(t)
	rdv := protocluster.NewRendezvous()
	rdv.UpdateMembers(b.Members())
	for _, kind := range []string{actors.KindAgent, actors.KindQueue, actors.KindTenant} {
		owned := map[string]*protocluster.ClusterIdentity{}
		for i := 0; len(owned) < 2 && i < 64; i++ {
			identity := fmt.Sprintf("t1/x%d", i)
			if kind == actors.KindTenant {
				identity = fmt.Sprintf("t%d", i)
			}
			ci := protocluster.NewClusterIdentity(identity, kind)
			owned[rdv.GetByClusterIdentity(ci)] = ci
		}
		if len(owned) < 2 {
			t.Fatalf("no %s identity for each member", kind)
		}
		misplaced := activateOn(t, a, owned[b.Address()])
		placed := activateOn(t, a, owned[a.Address()])
		waitStopped(t, a, misplaced, 10*time.Second)
		if _, alive := a.System.ProcessRegistry.GetLocal(placed.Id); !alive {
			t.Errorf("the %s activation on its owner stopped", kind)
		}
	}
}

// Members see a change of the topology at different times, so one whose
// view is older may activate a conversation on a member that no longer
// owns it, beside the owner's activation, and send a customer's message
// there. The owner's subscribers still get that message pushed, without
// resuming and without another write to wake the owner: the activation
// beside it leaves soon and tells the owner what it stored.
func TestMessageStoredBesideTheOwnerReachesTheOwnersSubscribers(t *testing.T) {
	a, b, client := twoMembers(t)

	// A conversation b owns, and a customer's session subscribed there.
	rdv := protocluster.NewRendezvous()
	rdv.UpdateMembers(b.Members())
	var conv string
	var ci *protocluster.ClusterIdentity
	for range 64 {
		c, err := client.CreateConversation(context.Background(), customer)
		if err != nil {
			t.Fatal(err)
		}
		conv = c.ID
		ci = protocluster.NewClusterIdentity(actors.ConversationIdentity("t1", conv), actors.KindConversation)
		if rdv.GetByClusterIdentity(ci) == b.Address() {
			break
		}
	}
	if rdv.GetByClusterIdentity(ci) != b.Address() {
		t.Fatal("no conversation hashed to the second member")
	}
	out := make(outbox, 100)
	follower := client.StartSession(customer, out)
	defer follower.Stop()
	resumeAllFrames(t, follower, out, conv)

	// A member with an older view asks a for it, and a customer's message
	// goes there.
	beside := activateOn(t, a, ci)
	res, err := a.System.Root.RequestFuture(beside, &actorpb.Append{
		Caller:      &actorpb.Caller{Tenant: "t1", Party: &actorpb.Party{Role: string(customer.Party.Role), Id: customer.Party.ID}},
		ClientMsgId: "beside", Body: &actorpb.Body{Type: string(engine.BodyText), Text: "还在吗"},
	}, 5*time.Second).Result()
	if ack, ok := res.(*actorpb.AppendResponse); err != nil || !ok || ack.Error != nil || ack.Seq != 1 {
		t.Fatalf("the send to the activation beside the owner's: %v, %v", res, err)
	}

	if _, ok := waitFrame(out, 10*time.Second, func(f anyFrame) bool {
		return f.Type == "message" && f.Msg.Seq == 1 && f.Msg.ClientMsgID == "beside"
	}); !ok {
		t.Fatal("the owner's subscriber never received the message stored beside the owner")
	}
	waitStopped(t, a, beside, 10*time.Second)
}

// A new activation of an agent knows none of the agent's sockets, and a
// new activation of a tenant none of its alert watchers. So when the
// activation a staff session registered with stops (the cluster moved it,
// or its node died), the session registers with the next: the agent stays
// online, and routable, and an admin still gets alerts, without
// reconnecting.
func TestStaffSessionRegistersWithTheNextActivation(t *testing.T) {
	n := startNode(t, nil)
	ctx := context.Background()
	in := signIn(t, n)
	caller := actors.Caller{Tenant: "t1", Party: agent.Party, StaffRole: engine.StaffAdmin, Session: in.Session}
	out := make(outbox, 1000)
	sess := n.client.StartSession(caller, out)
	defer sess.Stop()
	activation := func(identity, kind string) *actor.PID {
		pid := n.node.Cluster.Get(identity, kind)
		if pid == nil {
			t.Fatalf("no activation of %s %s", kind, identity)
		}
		return pid
	}
	for i := range 3 {
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err := n.client.AgentStatus(ctx, "t1", agent.Party.ID)
			if err == nil && st.Presence == actors.PresenceOnline && st.Devices == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %d stops of the agent's activation: not online with its one socket (%v, %v)", i, st, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		alert := fmt.Sprintf("alert-%d", i)
		for {
			n.node.System.Root.Send(activation("t1", actors.KindTenant), &actorpb.Notice{Kind: "sla_breached", Text: alert})
			if _, ok := waitFrame(out, 50*time.Millisecond, func(f anyFrame) bool { return strings.Contains(f.raw, alert) }); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %d stops of the tenant's activation: the admin's session gets no alerts", i)
			}
		}
		for _, kind := range []string{actors.KindAgent, actors.KindTenant} {
			identity := "t1"
			if kind == actors.KindAgent {
				identity = actors.AgentIdentity("t1", agent.Party.ID)
			}
			if err := n.node.System.Root.StopFuture(activation(identity, kind)).Wait(); err != nil {
				t.Fatal(err)
			}
		}
	}
}
