package main

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/engine"
)

// Helpers safe to call from goroutines other than the test's: they return
// errors instead of failing the test.

// tryDial connects a WebSocket without failing the test.
func tryDial(t testing.TB, s *testServer, path string) (*wsClient, error) {
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+s.addr+path, nil)
	if err != nil {
		return nil, err
	}
	c := &wsClient{t: t, conn: conn, frames: make(chan frame, 10000), ended: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(func() { conn.Close() })
	return c, nil
}

func (c *wsClient) trySend(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

// await returns the next frame matching pred within d, discarding others.
func (c *wsClient) await(pred func(frame) bool, d time.Duration) (frame, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case f := <-c.frames:
			if pred(f) {
				return f, nil
			}
		case <-c.ended:
			return frame{}, fmt.Errorf("the connection ended")
		case <-deadline.C:
			return frame{}, fmt.Errorf("no such frame within %v", d)
		}
	}
}

// recorder keeps every frame a client receives, so a test can look for a
// frame later without racing its delivery.
type recorder struct {
	mu     sync.Mutex
	frames []frame
}

// record drains c into a recorder until the connection ends. The client's
// own next() must not be used afterwards.
func record(c *wsClient) *recorder {
	r := &recorder{}
	add := func(f frame) {
		r.mu.Lock()
		r.frames = append(r.frames, f)
		r.mu.Unlock()
	}
	go func() {
		for {
			select {
			case f := <-c.frames:
				add(f)
			case <-c.ended:
				for {
					select {
					case f := <-c.frames:
						add(f)
					default:
						return
					}
				}
			}
		}
	}()
	return r
}

func (r *recorder) all() []frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.frames)
}

func (r *recorder) find(pred func(frame) bool) (frame, bool) {
	for _, f := range r.all() {
		if pred(f) {
			return f, true
		}
	}
	return frame{}, false
}

// waitFor polls the recorder until a frame matches pred.
func (r *recorder) waitFor(t testing.TB, d time.Duration, what string, pred func(frame) bool) frame {
	t.Helper()
	var got frame
	poll(t, d, what, func() bool {
		var ok bool
		got, ok = r.find(pred)
		return ok
	})
	return got
}

// poll is eventually with a deadline of the caller's choice.
func poll(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	pollWhy(t, d, what, func() (bool, string) { return cond(), "" })
}

// pollWhy polls cond, which says why it does not hold yet; the last reason
// is reported on timeout.
func pollWhy(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", d, what, why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// opAnd runs a lifecycle operation and waits both for its done frame and
// for a frame matching pred, in whichever order they come: an agent's
// status may overtake the answer (a reservation comes first) or follow it
// (a release comes after).
func (c *wsClient) opAnd(id string, fields map[string]any, what string, pred func(frame) bool) {
	c.t.Helper()
	fields["id"] = id
	c.send(fields)
	done, seen := false, false
	c.next(func(f frame) bool {
		switch {
		case (f.Type == "done" || f.Type == "error") && f.ID == id:
			if f.Type != "done" {
				c.t.Fatalf("%v refused: %s", fields, f.Raw)
			}
			done = true
		case pred(f):
			seen = true
		}
		return done && seen
	}, "answer to "+id+" and "+what)
}

// REST helpers (test goroutine only).

func (s *testServer) events(t testing.TB, token, conv string) []engine.ConvEvent {
	t.Helper()
	var out struct{ Events []engine.ConvEvent }
	if code := s.api(t, "GET", "/v1/conversations/"+conv+"/events", token, nil, &out); code != 200 {
		t.Fatalf("events of %s: status %d", conv, code)
	}
	return out.Events
}

func (s *testServer) queueView(t testing.TB, token, group string) actors.QueueView {
	t.Helper()
	var q actors.QueueView
	if code := s.api(t, "GET", "/v1/queues/"+group, token, nil, &q); code != 200 {
		t.Fatalf("queue %s: status %d", group, code)
	}
	return q
}

type agentLive struct {
	Staff    engine.Staff `json:"staff"`
	Presence string       `json:"presence"`
	Load     int          `json:"load"`
	Convs    []string     `json:"convs"`
}

func (s *testServer) agentLive(t testing.TB, token, id string) agentLive {
	t.Helper()
	var a agentLive
	if code := s.api(t, "GET", "/v1/agents/"+id, token, nil, &a); code != 200 {
		t.Fatalf("agent %s: status %d", id, code)
	}
	return a
}

// held lists the conversations the store says agent owns (ASSIGNED or
// ON_HOLD).
func (s *testServer) held(t testing.TB, token, agent string) []string {
	t.Helper()
	var out []string
	for _, st := range []engine.ConvState{engine.StateAssigned, engine.StateOnHold} {
		var page struct{ Conversations []engine.Conversation }
		if code := s.api(t, "GET", "/v1/conversations?limit=200&state="+string(st)+"&agent_id="+agent, token, nil, &page); code != 200 {
			t.Fatalf("list %s conversations of %s: status %d", st, agent, code)
		}
		for _, c := range page.Conversations {
			if c.AgentID != agent || c.State != st {
				t.Fatalf("list %s of %s returned %+v", st, agent, c)
			}
			out = append(out, c.ID)
		}
	}
	slices.Sort(out)
	return out
}

func (s *testServer) put(t testing.TB, token, path string, body any) {
	t.Helper()
	var out json.RawMessage
	if code := s.api(t, "PUT", path, token, body, &out); code != 200 {
		t.Fatalf("PUT %s: status %d: %s", path, code, out)
	}
}

// customer is a visitor with one conversation, subscribed over a socket.
type customer struct {
	token, id, conv string
	ws              *wsClient
}

func (s *testServer) newCustomer(t testing.TB) *customer {
	t.Helper()
	token, id := s.visitor(t)
	c := &customer{token: token, id: id, conv: s.newConversation(t, token)}
	c.ws = dial(t, s, "/v1/ws/user", nil)
	c.ws.hello(token)
	c.ws.resumeAll(c.conv, 0, 50)
	return c
}

// open starts another conversation of the same customer and subscribes to it.
func (c *customer) open(s *testServer, t testing.TB) string {
	t.Helper()
	c.conv = s.newConversation(t, c.token)
	c.ws.resumeAll(c.conv, 0, 50)
	return c.conv
}

func isUnavailableNotice(f frame) bool {
	return f.Type == "message" && f.Msg.From.Role == engine.RoleSystem && strings.HasPrefix(f.Msg.ClientMsgID, "sys unavailable")
}

// assignments returns the events that gave the conversation to an agent.
func assignments(events []engine.ConvEvent) []engine.ConvEvent {
	var out []engine.ConvEvent
	for _, e := range events {
		if e.Type == engine.EventAssigned || e.Type == engine.EventTakenOver {
			out = append(out, e)
		}
	}
	return out
}

// raceObserver collects what the agents of TestRoutingRace saw.
type raceObserver struct {
	mu        sync.Mutex
	failures  []string
	nFailures int
	owners    map[string]map[int]bool // conversation -> agents whose status listed it
	frames    int
	maxLoad   map[int]int
	closes    int
	sessions  int
}

func (o *raceObserver) fail(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failLocked(format, args...)
}

// failLocked records a failure; the first 50 are kept.
func (o *raceObserver) failLocked(format string, args ...any) {
	o.nFailures++
	if len(o.failures) < 50 {
		o.failures = append(o.failures, fmt.Sprintf(format, args...))
	}
}

// agentFrame checks one status an agent received about itself: never more
// than its capacity, and no conversation ever in two agents' statuses
// (nothing is transferred or requeued in this test).
func (o *raceObserver) agentFrame(agent, capacity int, f frame) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.frames++
	if f.Capacity != capacity || f.Load > capacity || len(f.Convs) > capacity || f.Load != len(f.Convs) {
		o.failLocked("agent %d status over capacity: %s", agent, f.Raw)
	}
	o.maxLoad[agent] = max(o.maxLoad[agent], f.Load)
	for _, c := range f.Convs {
		if o.owners[c] == nil {
			o.owners[c] = map[int]bool{}
		}
		o.owners[c][agent] = true
		if len(o.owners[c]) > 1 {
			o.failLocked("conversation %s in the status of agents %v", c, o.owners[c])
		}
	}
}

// runRaceAgent plays one agent until the deadline: online for a while,
// closing some of its conversations, then offline for a while, again.
// Its choices come from rng; the pauses are its behaviour, not
// synchronisation.
func runRaceAgent(t testing.TB, s *testServer, i int, a testAgent, capacity int, rng *rand.Rand, until time.Time, o *raceObserver) {
	mine := map[string]bool{} // conversations routed to this agent (assigned notices)
	ops := 0
	for time.Now().Before(until) {
		c, err := tryDial(t, s, "/v1/ws/agent")
		if err != nil {
			o.fail("agent %d: dial: %v", i, err)
			return
		}
		if err := c.trySend(map[string]any{"type": "hello", "v": 1, "token": a.token}); err != nil {
			o.fail("agent %d: hello: %v", i, err)
			return
		}
		if f, err := c.await(func(f frame) bool { return f.Type == "welcome" || f.Type == "error" }, 15*time.Second); err != nil || f.Type != "welcome" {
			o.fail("agent %d: hello: %v %s", i, err, f.Raw)
			return
		}
		o.mu.Lock()
		o.sessions++
		o.mu.Unlock()
		online := time.NewTimer(time.Duration(150+rng.Intn(650)) * time.Millisecond)
		act := time.NewTimer(time.Duration(80+rng.Intn(320)) * time.Millisecond)
		var convs []string
	session:
		for {
			select {
			case f := <-c.frames:
				switch f.Type {
				case "agent":
					o.agentFrame(i, capacity, f)
					convs = f.Convs
				case "notice":
					if f.Kind == "assigned" {
						mine[f.Conv] = true
					}
				case "error":
					o.fail("agent %d: %s", i, f.Raw)
				}
			case <-act.C:
				var closable []string
				for _, conv := range convs {
					if mine[conv] {
						closable = append(closable, conv)
					}
				}
				if len(closable) > 0 && rng.Intn(2) == 0 {
					ops++
					conv := closable[rng.Intn(len(closable))]
					if err := c.trySend(map[string]any{"type": "close", "id": "x" + strconv.Itoa(ops), "conv": conv, "reason": "resolved"}); err != nil {
						o.fail("agent %d: close: %v", i, err)
						break session
					}
					o.mu.Lock()
					o.closes++
					o.mu.Unlock()
				}
				act.Reset(time.Duration(80+rng.Intn(320)) * time.Millisecond)
			case <-online.C:
				break session
			case <-c.ended:
				o.fail("agent %d: the server ended the connection", i)
				break session
			}
		}
		online.Stop()
		act.Stop()
		c.conn.Close() // offline, abruptly
		<-c.ended
		if !time.Now().Before(until) {
			return
		}
		offline := time.NewTimer(time.Duration(50+rng.Intn(300)) * time.Millisecond)
		<-offline.C
	}
}

// TestRoutingRace is the proof: 200 conversations escalate while
// 10 agents with capacity 3 go online and offline and close chats
// concurrently. No agent ever holds more than 3, no conversation is
// assigned twice, and every conversation ends assigned or told that nobody
// is available.
func TestRoutingRace(t *testing.T) {
	const (
		nAgents  = 10
		capacity = 3
		nConvs   = 200
		churn    = 3 * time.Second
	)
	seed := time.Now().UnixNano()
	if v := os.Getenv("KEFU_ROUTING_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("KEFU_ROUTING_SEED: %v", err)
		}
	}
	t.Logf("seed %d (KEFU_ROUTING_SEED=%d repeats the agents' choices)", seed, seed)

	s := startServer(t, testConfig(t.TempDir()))
	// The admin is staff of the default group too; it is used over REST
	// only, which never makes anyone online.
	admin, _ := s.staffToken(t)
	agents := make([]testAgent, nAgents)
	agentIndex := map[string]int{}
	for i := range agents {
		agents[i] = s.createAgent(t, admin, fmt.Sprintf("race%02d", i), engine.StaffAgent, capacity, nil)
		agentIndex[agents[i].id] = i
	}
	custs := make([]*customer, nConvs)
	recs := make([]*recorder, nConvs)
	for i := range custs {
		custs[i] = s.newCustomer(t)
		recs[i] = record(custs[i].ws)
	}

	o := &raceObserver{owners: map[string]map[int]bool{}, maxLoad: map[int]int{}}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range custs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := c.ws.trySend(map[string]any{"type": "escalate", "conv": c.conv}); err != nil {
				o.fail("escalate %s: %v", c.conv, err)
			}
		}()
	}
	until := time.Now().Add(churn)
	for i, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			runRaceAgent(t, s, i, a, capacity, rand.New(rand.NewSource(seed+int64(i))), until, o)
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	o.mu.Lock()
	failures, nFailures := slices.Clone(o.failures), o.nFailures
	t.Logf("churn over after %v: %d agent sessions, %d agent status frames, %d closes sent, max loads %v",
		time.Since(began).Round(time.Millisecond), o.sessions, o.frames, o.closes, o.maxLoad)
	o.mu.Unlock()
	if len(failures) > 0 {
		t.Fatalf("seed %d: %d failures during the churn, the first:\n%s", seed, nFailures, strings.Join(failures, "\n"))
	}

	// Every agent is offline now: wait until nothing moves any more. The
	// agents are offline and no offer is in flight, so no assignment can
	// start; two consecutive passes that read the same complete picture
	// are the final state.
	type outcome struct {
		state    engine.ConvState
		agent    string // from the assignment event
		events   int
		assigned bool
	}
	type picture struct {
		convs []outcome
		held  map[string][]string // agent -> conversations the store says they own
		live  map[string][]string // agent -> the agent actor's conversations
	}
	var prev, cur *picture
	settled := func() (ok bool, why string) {
		for _, a := range agents {
			if st := s.agentLive(t, admin, a.id); st.Presence != actors.PresenceOffline {
				return false, fmt.Sprintf("agent %d is %s", agentIndex[a.id], st.Presence)
			}
		}
		for _, w := range s.queueView(t, admin, engine.DefaultGroup).Waiting {
			if w.Position == 0 {
				return false, "an offer is in flight for " + w.Conv
			}
		}
		p := &picture{held: map[string][]string{}, live: map[string][]string{}}
		for _, a := range agents {
			live := s.agentLive(t, admin, a.id)
			held := s.held(t, admin, a.id)
			slices.Sort(live.Convs)
			if live.Load != len(live.Convs) || !slices.Equal(live.Convs, held) {
				return false, fmt.Sprintf("agent %d holds %v by its actor, %v by the store", agentIndex[a.id], live.Convs, held)
			}
			p.held[a.id], p.live[a.id] = held, live.Convs
		}
		for _, c := range custs {
			events := s.events(t, admin, c.conv)
			as := assignments(events)
			if len(as) > 1 {
				t.Fatalf("seed %d: conversation %s assigned twice: %+v", seed, c.conv, events)
			}
			out := outcome{state: engine.StateBot, events: len(events), assigned: len(as) == 1}
			if len(events) > 0 {
				out.state = events[len(events)-1].To
			}
			if out.assigned {
				out.agent = as[0].Agent
			}
			switch out.state {
			case engine.StateAssigned, engine.StateOnHold, engine.StateClosed:
				if !out.assigned {
					return false, c.conv + " is " + string(out.state) + " without an assignment"
				}
			case engine.StateQueued:
				lastQueued, told := -1, false
				for i, e := range events {
					if e.To == engine.StateQueued && e.From != engine.StateQueued {
						lastQueued, told = i, false
					}
					if e.Type == engine.EventUnavailable && i > lastQueued {
						told = true
					}
				}
				if out.assigned || !told {
					return false, c.conv + " is queued and was not told nobody is available"
				}
			default:
				return false, c.conv + " is " + string(out.state)
			}
			p.convs = append(p.convs, out)
		}
		prev, cur = cur, p
		if prev == nil || !slices.Equal(prev.convs, cur.convs) {
			return false, "the last two passes differ"
		}
		return true, ""
	}
	settleStart := time.Now()
	pollWhy(t, 60*time.Second, fmt.Sprintf("the final state (seed %d)", seed), settled)
	t.Logf("settled %v after the churn", time.Since(settleStart).Round(time.Millisecond))

	// The final state: the store, the agent actors and what each customer
	// was told agree.
	var nAssigned, nClosed, nQueued int
	owned := map[string]string{} // conversation -> owner, by the agents' store listing
	for id, convs := range cur.held {
		if len(convs) > capacity {
			t.Errorf("agent %d owns %d conversations: %v", agentIndex[id], len(convs), convs)
		}
		for _, c := range convs {
			owned[c] = id
		}
	}
	for i, c := range custs {
		out := cur.convs[i]
		rec := recs[i]
		switch out.state {
		case engine.StateAssigned, engine.StateOnHold, engine.StateClosed:
			if out.state == engine.StateClosed {
				nClosed++
			} else {
				nAssigned++
				if owned[c.conv] != out.agent {
					t.Errorf("%s was assigned to %s but the store lists it with %q", c.conv, out.agent, owned[c.conv])
				}
			}
			if _, ok := agentIndex[out.agent]; !ok {
				t.Errorf("%s was assigned to %q, not one of the test's agents", c.conv, out.agent)
			}
			rec.waitFor(t, 15*time.Second, "the ASSIGNED state of "+c.conv, func(f frame) bool {
				return f.Type == "state" && f.Conv == c.conv && f.State == engine.StateAssigned && f.AgentID == out.agent
			})
			if f, ok := rec.find(func(f frame) bool {
				return f.Type == "state" && f.State == engine.StateAssigned && f.AgentID != out.agent
			}); ok {
				t.Errorf("the customer of %s was told of a second assignment: %s", c.conv, f.Raw)
			}
		case engine.StateQueued:
			nQueued++
			if owner, ok := owned[c.conv]; ok {
				t.Errorf("%s is queued but the store lists it with %s", c.conv, owner)
			}
			rec.waitFor(t, 15*time.Second, "the customer of "+c.conv+" told nobody is available", func(f frame) bool {
				return (f.Type == "queue" && f.Conv == c.conv && !f.Available && f.Reason == actors.ReasonNoAgentOnline) || isUnavailableNotice(f)
			})
			if f, ok := rec.find(func(f frame) bool { return f.Type == "state" && f.State == engine.StateAssigned }); ok {
				t.Errorf("the customer of queued %s was told it was assigned: %s", c.conv, f.Raw)
			}
			msgs := s.history(t, admin, c.conv)
			if !slices.ContainsFunc(msgs, func(m engine.Message) bool {
				return m.From.Role == engine.RoleSystem && strings.HasPrefix(m.ClientMsgID, "sys unavailable")
			}) {
				t.Errorf("queued %s has no unavailable notice among its messages: %+v", c.conv, msgs)
			}
		}
	}
	for _, a := range agents {
		if live := s.agentLive(t, admin, a.id); live.Load != len(cur.held[a.id]) || live.Load > capacity {
			t.Errorf("agent %d: live load %d, the store lists %v", agentIndex[a.id], live.Load, cur.held[a.id])
		}
	}
	if nAssigned+nClosed == 0 || nQueued == 0 {
		t.Errorf("seed %d: the run proved little: %d assigned, %d closed, %d told nobody is available", seed, nAssigned, nClosed, nQueued)
	}
	t.Logf("%d assigned, %d closed after assignment, %d told nobody is available", nAssigned, nClosed, nQueued)
	if t.Failed() {
		t.Logf("seed %d", seed)
	}
}

// TestRoutingPriority: a VIP conversation that arrives later is assigned
// before earlier normal ones.
func TestRoutingPriority(t *testing.T) {
	s := startServer(t, testConfig(t.TempDir()))
	admin, _ := s.staffToken(t)
	solo := s.createAgent(t, admin, "solo", engine.StaffAgent, 1, nil)
	s.put(t, admin, "/v1/settings", map[string]any{"rules": []engine.RoutingRule{{When: "vip_level > 3", Group: engine.DefaultGroup, Priority: 10}}})

	// Nobody is online: three normal conversations wait, in order.
	var normal []*customer
	for i := range 3 {
		c := s.newCustomer(t)
		c.ws.send(map[string]any{"type": "escalate", "conv": c.conv})
		if f := c.ws.next(func(f frame) bool { return f.Type == "queue" && f.Conv == c.conv }, "queue frame"); f.Position != i+1 {
			t.Fatalf("normal conversation %d at position %d: %s", i, f.Position, f.Raw)
		}
		normal = append(normal, c)
	}
	// The VIP arrives last and goes first.
	vipToken, vipID := s.visitor(t)
	s.put(t, admin, "/v1/customers/"+vipID, map[string]any{"vip_level": 5})
	vip := &customer{token: vipToken, id: vipID}
	vip.ws = dial(t, s, "/v1/ws/user", nil)
	vip.ws.hello(vipToken)
	vip.open(s, t)
	vip.ws.send(map[string]any{"type": "escalate", "conv": vip.conv})
	if f := vip.ws.next(func(f frame) bool { return f.Type == "queue" && f.Conv == vip.conv }, "the VIP's queue frame"); f.Position != 1 {
		t.Fatalf("the VIP is at position %d: %s", f.Position, f.Raw)
	}
	for i, c := range normal {
		c.ws.next(func(f frame) bool { return f.Type == "queue" && f.Conv == c.conv && f.Position == i+2 }, fmt.Sprintf("normal %d moved to %d", i, i+2))
	}
	q := s.queueView(t, admin, engine.DefaultGroup)
	if len(q.Waiting) != 4 || q.Waiting[0].Conv != vip.conv || q.Waiting[0].Priority != 10 || q.Waiting[1].Priority != 0 {
		t.Fatalf("queue before anyone is online: %+v", q.Waiting)
	}

	// One agent with room for one conversation comes online: the VIP's.
	soloWS := s.online(t, solo)
	if f := vip.ws.state(vip.conv, engine.StateAssigned); f.AgentID != solo.id {
		t.Fatalf("the VIP went to %q: %s", f.AgentID, f.Raw)
	}
	soloWS.next(func(f frame) bool {
		return f.Type == "agent" && f.Load == 1 && slices.Equal(f.Convs, []string{vip.conv})
	}, "solo holding the VIP only")
	poll(t, 15*time.Second, "the VIP gone from the queue, the others in arrival order", func() bool {
		q := s.queueView(t, admin, engine.DefaultGroup)
		if len(q.Waiting) != 3 {
			return false
		}
		for i, w := range q.Waiting {
			if w.Conv != normal[i].conv || w.Position != i+1 {
				return false
			}
		}
		return true
	})
	for _, c := range normal {
		if events := s.events(t, admin, c.conv); len(assignments(events)) != 0 || events[len(events)-1].To != engine.StateQueued {
			t.Fatalf("normal conversation %s: %+v", c.conv, events)
		}
	}
	if a := s.agentLive(t, admin, solo.id); a.Load != 1 {
		t.Fatalf("solo's load: %+v", a)
	}
}

// TestRoutingSticky: sticky routing returns a customer to their last agent
// when that agent is online, even when least load would pick another.
func TestRoutingSticky(t *testing.T) {
	s := startServer(t, testConfig(t.TempDir()))
	admin, _ := s.staffToken(t)
	// Before the agents exist, so every load of the queue reads it.
	s.put(t, admin, "/v1/groups/default", map[string]any{"policy": "sticky"})
	byID := map[string]testAgent{}
	sockets := map[string]*wsClient{}
	for _, name := range []string{"sticky-a", "sticky-b"} {
		a := s.createAgent(t, admin, name, engine.StaffAgent, 3, nil)
		byID[a.id] = a
		sockets[a.id] = s.online(t, a)
	}
	poll(t, 15*time.Second, "the queue to be sticky with both agents online", func() bool {
		q := s.queueView(t, admin, engine.DefaultGroup)
		online := 0
		for _, a := range q.Agents {
			if _, ok := byID[a.ID]; ok && a.Presence == actors.PresenceOnline {
				online++
			}
		}
		return q.Policy == engine.PolicySticky && online == 2
	})

	// The customer's first conversation goes to X, who closes it.
	c := s.newCustomer(t)
	first := c.conv
	c.ws.send(map[string]any{"type": "escalate", "conv": first})
	x := c.ws.state(first, engine.StateAssigned).AgentID
	var y string
	for id := range byID {
		if id != x {
			y = id
		}
	}
	if _, ok := byID[x]; !ok || y == "" {
		t.Fatalf("assigned to %q", x)
	}
	xWS := sockets[x]
	xWS.next(func(f frame) bool { return f.Type == "notice" && f.Kind == "assigned" && f.Conv == first }, "X told of the assignment")
	xWS.opAnd("close1", map[string]any{"type": "close", "conv": first, "reason": "resolved"}, "X free again", func(f frame) bool {
		return f.Type == "agent" && f.Load == 0
	})

	// X takes another customer's conversation: least load alone would now
	// pick Y.
	otherToken, _ := s.visitor(t)
	other := s.newConversation(t, otherToken)
	xWS.opAnd("accept1", map[string]any{"type": "accept", "conv": other}, "X holding the other conversation", func(f frame) bool {
		return f.Type == "agent" && f.Load == 1 && slices.Contains(f.Convs, other)
	})
	poll(t, 15*time.Second, "the queue to see X with one conversation, Y with none", func() bool {
		loads := map[string]int{}
		for _, a := range s.queueView(t, admin, engine.DefaultGroup).Agents {
			loads[a.ID] = a.Load
		}
		return loads[x] == 1 && loads[y] == 0
	})

	// The customer comes back: X again. Routing finds the last agent in
	// the stored conversations, which are written behind the actors: wait
	// until the first one is stored as X's.
	s.listed(t, admin, "state=CLOSED", first, func(c engine.Conversation) bool { return c.AgentID == x })
	second := c.open(s, t)
	c.ws.send(map[string]any{"type": "escalate", "conv": second})
	if got := c.ws.state(second, engine.StateAssigned).AgentID; got != x {
		t.Fatalf("sticky: the second conversation went to %s, want the last agent %s", got, x)
	}

	// Under least load the same customer goes to the less loaded Y: the
	// stickiness above was the policy's doing.
	s.put(t, admin, "/v1/groups/default", map[string]any{"policy": "least_load"})
	poll(t, 15*time.Second, "the queue to use least_load", func() bool {
		return s.queueView(t, admin, engine.DefaultGroup).Policy == engine.PolicyLeastLoad
	})
	third := c.open(s, t)
	c.ws.send(map[string]any{"type": "escalate", "conv": third})
	if got := c.ws.state(third, engine.StateAssigned).AgentID; got != y {
		t.Fatalf("least_load: the third conversation went to %s, want the less loaded %s", got, y)
	}
}

// TestRoutingUnavailableAndLeaveMessage: a customer nobody can serve is
// told so, may leave messages, and the agent who comes online later gets
// the conversation with them. Outside business hours the customer is told
// that instead, even with an agent online.
func TestRoutingUnavailableAndLeaveMessage(t *testing.T) {
	t.Run("no agent online", func(t *testing.T) {
		s := startServer(t, testConfig(t.TempDir()))
		admin, _ := s.staffToken(t)
		late := s.createAgent(t, admin, "late", engine.StaffAgent, 3, nil)

		c := s.newCustomer(t)
		c.ws.send(map[string]any{"type": "escalate", "conv": c.conv})
		c.ws.state(c.conv, engine.StateQueued)
		f := c.ws.next(func(f frame) bool { return f.Type == "queue" && f.Conv == c.conv }, "queue frame")
		if f.Available || f.Reason != actors.ReasonNoAgentOnline || f.EtaMs != -1 || f.Position != 1 || f.Group != engine.DefaultGroup {
			t.Fatalf("queue frame: %s", f.Raw)
		}
		notice := c.ws.next(func(f frame) bool { return f.Type == "message" }, "the unavailable notice")
		if !isUnavailableNotice(notice) || notice.Msg.Body.Text == "" {
			t.Fatalf("notice: %s", notice.Raw)
		}

		// The customer leaves a message.
		c.ws.sendText(c.conv, "left-1", "我的订单 889 还没发货")
		c.ws.ack("left-1")
		c.ws.sendText(c.conv, "left-2", "请客服上线后联系我")
		c.ws.ack("left-2")
		var events []engine.ConvEvent
		poll(t, 15*time.Second, "the unavailable event", func() bool {
			events = s.events(t, admin, c.conv)
			return slices.ContainsFunc(events, func(e engine.ConvEvent) bool { return e.Type == engine.EventUnavailable })
		})
		if i := slices.IndexFunc(events, func(e engine.ConvEvent) bool { return e.Type == engine.EventUnavailable }); events[i].Reason != actors.ReasonNoAgentOnline {
			t.Fatalf("events: %+v", events)
		}

		// The agent comes online, gets the conversation and reads it all.
		lateWS := s.online(t, late)
		if f := c.ws.state(c.conv, engine.StateAssigned); f.AgentID != late.id {
			t.Fatalf("assigned to %q: %s", f.AgentID, f.Raw)
		}
		lateWS.next(func(f frame) bool { return f.Type == "notice" && f.Kind == "assigned" && f.Conv == c.conv }, "assignment notice")
		msgs, _ := lateWS.resumeAll(c.conv, 0, 50)
		var texts []string
		for _, m := range msgs {
			texts = append(texts, string(m.From.Role)+": "+m.Body.Text)
		}
		if len(msgs) != 3 || msgs[0].From.Role != engine.RoleSystem || msgs[1].ClientMsgID != "left-1" || msgs[2].ClientMsgID != "left-2" {
			t.Fatalf("the agent reads %q", texts)
		}
	})

	t.Run("outside business hours", func(t *testing.T) {
		s := startServer(t, testConfig(t.TempDir()))
		admin, _ := s.staffToken(t)
		// Open only on another weekday than today in Shanghai. Set before
		// the agent exists, so every load of the queue reads it.
		loc, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			t.Fatal(err)
		}
		day := (int(time.Now().In(loc).Weekday()) + 3) % 7
		s.put(t, admin, "/v1/settings", map[string]any{"business_hours": map[string]any{
			"tz": "Asia/Shanghai", "weekly": []map[string]any{{"day": day, "open": "09:00", "close": "18:00"}},
		}})
		agent := s.createAgent(t, admin, "nightshift", engine.StaffAgent, 3, nil)
		agentWS := s.online(t, agent)
		poll(t, 15*time.Second, "the queue to see the agent online", func() bool {
			return slices.ContainsFunc(s.queueView(t, admin, engine.DefaultGroup).Agents, func(a actors.AgentView) bool {
				return a.ID == agent.id && a.Presence == actors.PresenceOnline
			})
		})

		c := s.newCustomer(t)
		c.ws.send(map[string]any{"type": "escalate", "conv": c.conv})
		f := c.ws.next(func(f frame) bool { return f.Type == "queue" && f.Conv == c.conv }, "queue frame")
		if f.Available || f.Reason != actors.ReasonOutsideHours || f.EtaMs != -1 {
			t.Fatalf("queue frame outside business hours: %s", f.Raw)
		}
		if notice := c.ws.next(func(f frame) bool { return f.Type == "message" }, "the unavailable notice"); !isUnavailableNotice(notice) {
			t.Fatalf("notice: %s", notice.Raw)
		}
		c.ws.sendText(c.conv, "night-1", "晚上好，有人吗")
		c.ws.ack("night-1")
		var events []engine.ConvEvent
		poll(t, 15*time.Second, "the unavailable event", func() bool {
			events = s.events(t, admin, c.conv)
			return slices.ContainsFunc(events, func(e engine.ConvEvent) bool { return e.Type == engine.EventUnavailable })
		})
		if i := slices.IndexFunc(events, func(e engine.ConvEvent) bool { return e.Type == engine.EventUnavailable }); events[i].Reason != actors.ReasonOutsideHours || len(assignments(events)) != 0 {
			t.Fatalf("events: %+v", events)
		}
		// Routing leaves it waiting; the agent may still take it by hand.
		if q := s.queueView(t, admin, engine.DefaultGroup); len(q.Waiting) != 1 || q.Waiting[0].Conv != c.conv || q.Waiting[0].Position != 1 {
			t.Fatalf("queue: %+v", q)
		}
		if a := s.agentLive(t, admin, agent.id); a.Load != 0 {
			t.Fatalf("the agent was given a conversation outside business hours: %+v", a)
		}
		agentWS.op("take", map[string]any{"type": "accept", "conv": c.conv})
		if f := c.ws.state(c.conv, engine.StateAssigned); f.AgentID != agent.id {
			t.Fatalf("accepted by %q", f.AgentID)
		}
	})
}
