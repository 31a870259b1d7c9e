package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The escalate flow. A bench agent's reply takes a conversation over, so
// the load's conversations cannot be escalated: the harness reserves a pool
// of conversations, one per scheduled escalation, that stay with the bot
// until their customer sends `escalate`. They belong to customers of their
// own, tagged for the run, and a routing rule added for the run sends them
// to a skill group of their own, served by routed agents: the only bench
// agents that are online, and the only members of that group. So the load's
// conversations the bot hands over stay in the default group, whose bench
// agents are away, and routing never moves them. A routed agent that is
// assigned a conversation resumes it, answers once and, once the answer is
// acked, closes it, which frees its capacity.

// Routed agents: one per ten load agents, each able to hold routedCapacity
// escalated conversations at once. Closing after the answer keeps their
// load near zero; a queue forms only when escalations arrive faster than
// they are answered and closed.
const (
	agentsPerRouted = 10
	routedCapacity  = 10
)

// escalations is the pool's shared state: what was scheduled and who it
// was assigned to, and the counts of the report. Its mutex is taken alone,
// never with a client's.
type escalations struct {
	mu     sync.Mutex
	byConv map[string]*escalation

	requested, assigned, answered, closed atomic.Int64
}

type escalation struct {
	n     int64         // the escalate's schedule number; its answer's client_msg_id carries it
	due   time.Duration // when the escalate was scheduled
	agent *client       // the routed agent it was assigned to
}

// assignment is an escalated conversation handed to its routed agent's
// writer, to answer.
type assignment struct {
	view *view
	n    int64
	due  time.Duration
}

func newEscalations(pool []*convInfo) *escalations {
	e := &escalations{byConv: make(map[string]*escalation, len(pool))}
	for _, c := range pool {
		e.byConv[c.id] = &escalation{}
	}
	return e
}

// schedule records that conv's escalate is due now; called before the
// event is dispatched, so before any assignment can arrive.
func (e *escalations) schedule(conv string, n int64, due time.Duration) {
	e.mu.Lock()
	x := e.byConv[conv]
	x.n, x.due = n, due
	e.mu.Unlock()
	e.requested.Add(1)
}

// assign records conv's assignment to agent. ok is false for a
// conversation of the pool assigned before (a repeated notice), and known
// false for one outside it.
func (e *escalations) assign(conv string, agent *client) (x escalation, known, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.byConv[conv]
	if p == nil {
		return x, false, false
	}
	if p.agent != nil {
		return x, true, false
	}
	p.agent = agent
	e.assigned.Add(1)
	return *p, true, true
}

func (e *escalations) agentOf(conv string) *client {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.byConv[conv].agent
}

// settled reports whether every escalation requested so far was closed.
func (e *escalations) settled() bool { return e.closed.Load() >= e.requested.Load() }

// setupEscalations prepares n escalations: the routing rule, the routed
// agents and the pool's customers and conversations. Undo removes the rule;
// it is set even when an error is returned.
func (r *runner) setupEscalations(ctx context.Context, admin string, n int) (routed, customers []*client, pool []*convInfo, undo func(), err error) {
	cfg := r.cfg
	group := "bench-" + r.tag // also the customers' tag
	undo = func() {}
	err = r.api.editRules(ctx, admin, func(rules []routingRule) []routingRule {
		return append([]routingRule{{When: "tag = " + group, Group: group}}, rules...)
	})
	if err != nil {
		return nil, nil, nil, undo, fmt.Errorf("bench: adding the escalations' routing rule: %w", err)
	}
	undo = func() {
		// The run's context may be cancelled already.
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err := r.api.editRules(c, admin, func(rules []routingRule) []routingRule {
			return slices.DeleteFunc(rules, func(rl routingRule) bool { return rl.Group == group })
		})
		if err != nil {
			r.logf("removing the routing rule of %s: %v", group, err)
		}
	}

	routed = make([]*client, min(n, (cfg.Agents+agentsPerRouted-1)/agentsPerRouted))
	err = parallel(ctx, len(routed), 1, func(i int) error {
		token, err := r.api.createAgent(ctx, cfg.Tenant, admin, fmt.Sprintf("bench-%s-routed-%d", r.tag, i), "bench-"+r.tag+"-password", routedCapacity, group)
		c := newClient(r, cfg.Agents+i, roleAgent, token)
		c.presence = "online"
		c.assigned, c.toClose = make(chan assignment, n), make(chan string, n)
		routed[i] = c
		return err
	})
	if err != nil {
		return nil, nil, nil, undo, fmt.Errorf("bench: creating the routed agents: %w", err)
	}

	// As many customers per conversation as the load has.
	customers = make([]*client, (n*cfg.Users+cfg.Convs-1)/cfg.Convs)
	pool = make([]*convInfo, n)
	err = parallel(ctx, len(customers), cfg.DialConcurrency, func(u int) error {
		token, userID, err := r.api.visitor(ctx, cfg.Tenant)
		if err != nil {
			return err
		}
		if err := r.api.tagCustomer(ctx, admin, userID, group); err != nil {
			return err
		}
		customers[u] = newClient(r, cfg.Users+u, roleUser, token)
		for i := u; i < n; i += len(customers) {
			id, err := r.api.newConversation(ctx, token)
			if err != nil {
				return err
			}
			pool[i] = &convInfo{id: id, user: customers[u]}
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, undo, fmt.Errorf("bench: creating the escalations' conversations: %w", err)
	}
	for _, c := range pool {
		c.uview = c.user.follow(c.id)
		c.uview.escalation = true
	}
	return routed, customers, pool, undo, nil
}

// onAssigned is a routed agent's reader taking a conversation routing
// assigned to it: it follows it and hands it to the writer to answer.
func (c *client) onAssigned(conv string, now time.Duration) {
	x, known, ok := c.r.esc.assign(conv, c)
	if !known {
		c.r.errs.add("assigned_outside_pool")
	}
	if !ok {
		return
	}
	c.r.queueWaitH.record(now - x.due)
	c.mu.Lock()
	v := c.follow(conv)
	v.escalation = true
	c.mu.Unlock()
	c.assigned <- assignment{view: v, n: x.n, due: x.due} // never blocks: room for the whole pool
}

// answer is a routed agent's writer answering an assigned conversation,
// as one who opens it does: it reads the history, then replies. The reply's
// client_msg_id carries the escalate's due time, for escalation_ms.
func (c *client) answer(ctx context.Context, a assignment, broken bool) error {
	var err error
	if broken {
		err = c.reconnect(ctx) // resumes every followed conversation, this one too
	} else {
		err = c.resume(ctx, a.view)
	}
	c.limit.wait(ctx)
	c.send(event{kind: evSend, view: a.view, n: a.n, due: a.due}, &err)
	return err
}

// escalate writes the customer's escalate frame. A customer whose socket
// dropped before the server took it sends it again after resuming (see
// connect); escalating a conversation no longer with the bot does nothing.
func (c *client) escalate(v *view, err *error) {
	c.mu.Lock()
	v.escalated = true
	c.mu.Unlock()
	if *err == nil {
		*err = c.write(escalateFrame(v.conv))
	}
}

func escalateFrame(conv string) []byte {
	return []byte(`{"type":"escalate","conv":"` + conv + `"}`)
}

// closeFrame ends an answered escalation. It carries no id: answers to ids
// go to the resume pages.
func closeFrame(conv string) []byte {
	return []byte(`{"type":"close","conv":"` + conv + `","reason":"resolved"}`)
}
