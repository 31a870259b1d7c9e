package actors

import (
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
)

// SetTopology hands the routes of cl a topology, as protoactor's member
// list publishes one, without changing protoactor's own view: a test
// can name a member that does not answer.
func SetTopology(cl *cluster.Cluster, members, left []*cluster.Member) {
	routesFor(cl).onEvent(&cluster.ClusterTopology{Members: members, Left: left})
}

// LoseConnection tells the routes of cl that the remote's connection to
// addr broke, as the remote reports it.
func LoseConnection(cl *cluster.Cluster, addr string) {
	routesFor(cl).onEvent(&remote.EndpointTerminatedEvent{Address: addr})
}

// TellQueue sends msg to the queue of tenant's group, as agents and
// configuration writes do.
func TellQueue(c *Client, tenant, group string, msg any) error {
	pid, err := c.routes.resolve(QueueIdentity(tenant, group), KindQueue, c.timeout)
	if err != nil {
		return err
	}
	c.system.Root.Send(pid, msg)
	return nil
}
