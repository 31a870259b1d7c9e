package cluster

import (
	"fmt"

	"github.com/asynkron/protoactor-go/cluster"
)

// localProvider is the membership of a one-node cluster: the member list is
// this process and never changes.
type localProvider struct{}

func (localProvider) StartMember(c *cluster.Cluster) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return fmt.Errorf("cluster: local member address: %w", err)
	}
	c.MemberList.UpdateClusterTopology(cluster.Members{{
		Id:    c.ActorSystem.ID,
		Host:  host,
		Port:  int32(port),
		Kinds: c.GetClusterKinds(),
	}})
	return nil
}

func (localProvider) StartClient(c *cluster.Cluster) error {
	return fmt.Errorf("cluster: the local provider has no client mode")
}

func (localProvider) Shutdown(bool) error { return nil }
