package clustertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a Kefu cluster of real processes on loopback: one etcd, one
// FerretDB holding the shared store, actor nodes (role node) and edges
// (role edge). Close (registered with t.Cleanup) stops them all.
type Cluster struct {
	t        testing.TB
	dir      string
	kefu     string
	Etcd     string // client endpoint
	MongoURI string
	ferret   *Proc
	Nodes    []*Node
	Edges    []*Node
}

// Node is one kefu process of the cluster.
type Node struct {
	*Proc
	Role     string
	HTTPAddr string // host:port of its HTTP listener
	env      []string
}

// URL is the address of path on the node's HTTP listener.
func (n *Node) URL(path string) string { return "http://" + n.HTTPAddr + path }

// WS is the WebSocket address of path on the node.
func (n *Node) WS(path string) string { return "ws://" + n.HTTPAddr + path }

// Start runs etcd, FerretDB, nodes actor nodes and edges edges, and
// returns once every one reports ready. The first node starts alone: it
// creates the demo tenant, which the others then find.
func Start(t testing.TB, nodes, edges int) *Cluster {
	t.Helper()
	kefu, ferretdb := binaries(t)
	dir, err := os.MkdirTemp("", "kefu-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, dir: dir, kefu: kefu}
	t.Cleanup(c.Close)
	c.Etcd = StartEtcd(t)[0]
	c.ferret = newProc(t, "ferretdb", ferretdb, nil)
	c.ferret.start()
	c.MongoURI = strings.TrimSpace(strings.TrimPrefix(c.ferret.waitLine("ferretdb ready", 60*time.Second), "ferretdb ready"))
	for i := range nodes {
		c.Nodes = append(c.Nodes, c.AddNode("node", fmt.Sprintf("node%d", i+1)))
	}
	for i := range edges {
		c.Edges = append(c.Edges, c.AddNode("edge", fmt.Sprintf("edge%d", i+1)))
	}
	return c
}

// AddNode starts one more kefu process of role node or edge and waits
// until it is ready.
func (c *Cluster) AddNode(role, name string) *Node {
	c.t.Helper()
	n := &Node{Role: role, HTTPAddr: "127.0.0.1:" + strconv.Itoa(freePort(c.t))}
	n.env = []string{
		"KEFU_ROLE=" + role,
		"KEFU_CLUSTER_ETCD=" + c.Etcd,
		"KEFU_CLUSTER_PORT=" + strconv.Itoa(freePort(c.t)),
		"KEFU_HTTP_ADDR=" + n.HTTPAddr,
		"KEFU_MONGO_URI=" + c.MongoURI,
		"KEFU_DATA_DIR=" + filepath.Join(c.dir, name),
		"KEFU_AUTH_TOKEN_SECRET=" + TokenSecret,
		"KEFU_ENCRYPTION_MASTER_KEY=" + MasterKey,
		"KEFU_ADMIN_PASSWORD=" + AdminPassword,
		"KEFU_LOG_LEVEL=info",
		// The tests sign many people in from 127.0.0.1.
		"KEFU_LIMITS_AUTH_PER_IP_PER_MINUTE=100000",
		"KEFU_LIMITS_LOGIN_PER_ACCOUNT_PER_MINUTE=100000",
		"KEFU_LIMITS_API_PER_IP_PER_SECOND=100000",
		"KEFU_LIMITS_API_PER_ACCOUNT_PER_SECOND=100000",
		"KEFU_WS_RATE_PER_SEC=1000", "KEFU_WS_BURST=2000",
	}
	n.Proc = newProc(c.t, name, c.kefu, n.env, "serve")
	c.Restart(n)
	return n
}

// Restart starts n again (after Kill or Stop) on the same addresses and
// waits until it is ready.
func (c *Cluster) Restart(n *Node) {
	c.t.Helper()
	n.start()
	waitHTTP(c.t, n.Proc, n.URL("/readyz"), 90*time.Second)
}

// Close stops every process, edges first, and removes the data.
func (c *Cluster) Close() {
	for _, n := range c.Edges {
		n.Stop()
	}
	for _, n := range c.Nodes {
		n.Stop()
	}
	if c.ferret != nil {
		c.ferret.Stop()
	}
	if c.t.Failed() {
		for _, p := range c.procs() {
			c.t.Logf("---- %s ----\n%s", p.Name, tail(p.Logs(), 60))
		}
	}
	os.RemoveAll(c.dir)
}

func (c *Cluster) procs() []*Proc {
	out := []*Proc{}
	for _, n := range append(append([]*Node{}, c.Nodes...), c.Edges...) {
		out = append(out, n.Proc)
	}
	return out
}

// tail keeps the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
