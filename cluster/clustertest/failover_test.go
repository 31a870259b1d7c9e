package clustertest

import (
	"testing"
	"time"
)

// failoverTarget is the target for the time from a node's death
// until its conversations accept messages again. The test prints the
// measured times and fails only far beyond it, on a hang.
const failoverTarget = 5 * time.Second

// TestKillActorNodes: under steady load (50 conversations, customers on
// one edge and the agent on the other), actor nodes are killed with
// SIGKILL one after another and restarted. Nothing acked is lost or
// doubled, seqs stay gapless, every client replays the same history, and
// the time until all conversations accept messages again is measured. A
// second socket of the agent, which resumed a few of the conversations
// before the kills and then only listens, receives every message of them
// exactly once, in order: its session follows each conversation to its
// next activation by itself (every node is killed, so each of them moves).
func TestKillActorNodes(t *testing.T) {
	c := Start(t, 3, 2)
	l := startLoad(t, c, 50, 200*time.Millisecond)
	l.recovery(time.Now(), 30*time.Second) // steady: every chat has been acked
	follower := l.follow(c.Edges[0], l.chats[:5])

	firstKill := time.Now()
	var times []time.Duration
	for i := range 3 {
		victim := c.Nodes[i%len(c.Nodes)]
		killed := time.Now()
		victim.Kill()
		took := l.recovery(killed, 60*time.Second)
		times = append(times, took)
		t.Logf("kill -9 %s: every conversation accepted messages again after %v", victim.Name, took.Round(time.Millisecond))
		c.Restart(victim)
		l.recovery(time.Now(), 30*time.Second)
	}
	l.halt()
	l.verify()
	follower.verify(l, firstKill)
	t.Logf("failover times: %v (target %v)", times, failoverTarget)
	for _, d := range times {
		if d > 6*failoverTarget {
			t.Errorf("failover took %v", d)
		}
	}
}

// TestRollingRestart: every actor node is stopped gracefully and started
// again, one at a time, under load: nothing lost or doubled.
func TestRollingRestart(t *testing.T) {
	c := Start(t, 3, 2)
	l := startLoad(t, c, 30, 200*time.Millisecond)
	l.recovery(time.Now(), 30*time.Second)
	for _, n := range c.Nodes {
		stopped := time.Now()
		n.Stop()
		t.Logf("graceful stop of %s: conversations accepted messages again after %v", n.Name, l.recovery(stopped, 60*time.Second).Round(time.Millisecond))
		c.Restart(n)
	}
	l.recovery(time.Now(), 30*time.Second)
	l.halt()
	l.verify()
}

// TestKillEdge: an edge dies; its clients reconnect to the other edge and
// resume exactly.
func TestKillEdge(t *testing.T) {
	c := Start(t, 3, 2)
	l := startLoad(t, c, 30, 200*time.Millisecond)
	l.recovery(time.Now(), 30*time.Second)
	killed := time.Now()
	c.Edges[0].Kill()
	t.Logf("kill -9 %s: every conversation accepted messages again after %v", c.Edges[0].Name, l.recovery(killed, 60*time.Second).Round(time.Millisecond))
	c.Restart(c.Edges[0])
	l.recovery(time.Now(), 30*time.Second)
	l.halt()
	l.verify()
}

// TestTimersOnKilledNode: the idle timers of conversations whose node is
// killed still fire, from the store, wherever the conversations come back.
func TestTimersOnKilledNode(t *testing.T) {
	// Short timers, set while one node runs: nodes cache a tenant's
	// settings for a while, so the other two join after the change.
	c := Start(t, 1, 2)
	admin, _ := StaffLogin(t, c.Edges[0], "admin", AdminPassword)
	var settings map[string]any
	mustAPI(t, c.Edges[0], "GET", "/v1/settings", admin, nil, &settings)
	settings["timers"] = map[string]string{"user_idle_warn": "3s", "user_idle_close": "3s"}
	mustAPI(t, c.Edges[0], "PUT", "/v1/settings", admin, settings, nil)
	c.Nodes = append(c.Nodes, c.AddNode("node", "node2"), c.AddNode("node", "node3"))

	agentToken, _ := Agent(t, c.Edges[1], "timer-agent", 20)
	agent := Dial(t, c.Edges[1], "/v1/ws/agent", agentToken)
	var convs []string
	for i := range 9 { // three per node, give or take
		userToken, conv := Visitor(t, c.Edges[0])
		user := Dial(t, c.Edges[0], "/v1/ws/user", userToken)
		mustSend(t, user, conv, "hello", "人工客服")
		user.Close()
		if _, ok := agent.Next(func(f Frame) bool { return f.Type == "notice" && f.Kind == "assigned" && f.Conv == conv }, 30*time.Second); !ok {
			t.Fatalf("conversation %d was not assigned", i)
		}
		// The agent's message starts the customer's idle timer.
		mustSend(t, agent, conv, "reply", "还有其他问题吗？")
		convs = append(convs, conv)
	}
	c.Nodes[0].Kill()

	deadline := time.Now().Add(90 * time.Second)
	for i, conv := range convs {
		for {
			var res struct {
				Conversations []struct {
					ID, State string
				} `json:"conversations"`
			}
			mustAPI(t, c.Edges[0], "GET", "/v1/conversations?state=CLOSED&limit=200", admin, nil, &res)
			closed := false
			for _, cv := range res.Conversations {
				closed = closed || cv.ID == conv
			}
			if closed {
				break
			}
			if time.Now().After(deadline) {
				var roles []string
				for _, m := range history(t, c.Edges[1], admin, conv) {
					roles = append(roles, m.From.Role+":"+m.ClientMsgID)
				}
				t.Fatalf("conversation %d of %d (%s) was not closed by its idle timers after the kill; its messages: %v", i+1, len(convs), conv, roles)
			}
			time.Sleep(200 * time.Millisecond)
		}
		warned := false
		for _, m := range history(t, c.Edges[1], admin, conv) {
			warned = warned || m.From.Role == "system"
		}
		if !warned {
			t.Errorf("conversation %s was closed without the idle warning", conv)
		}
	}
}
