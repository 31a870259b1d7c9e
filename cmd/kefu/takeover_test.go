package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// testAgent is a member of staff created for a test.
type testAgent struct {
	id, token string
}

// createAgent creates a staff account with a routing profile and logs in.
func (s *testServer) createAgent(t testing.TB, admin, username string, role engine.StaffRole, capacity int, skills map[string]int) testAgent {
	t.Helper()
	var st engine.Staff
	if code := s.api(t, "POST", "/v1/staff", admin, map[string]any{"username": username, "password": "password-" + username, "role": role, "display_name": username}, &st); code != 200 {
		t.Fatalf("create staff %s: status %d", username, code)
	}
	if skills == nil {
		skills = map[string]int{engine.DefaultGroup: 3}
	}
	if code := s.api(t, "PUT", "/v1/agents/"+st.ID, admin, map[string]any{"capacity": capacity, "skills": skills}, nil); code != 200 {
		t.Fatalf("put profile of %s: status %d", username, code)
	}
	var r tokenResp
	if code := s.api(t, "POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "username": username, "password": "password-" + username}, &r); code != 200 {
		t.Fatalf("login %s: status %d", username, code)
	}
	return testAgent{id: st.ID, token: r.AccessToken}
}

// online connects a device of the agent and waits until the agent is
// online with no conversation offered yet counted.
func (s *testServer) online(t testing.TB, a testAgent) *wsClient {
	t.Helper()
	c := dial(t, s, "/v1/ws/agent", nil)
	c.hello(a.token)
	c.next(func(f frame) bool { return f.Type == "agent" && f.Presence == "online" }, "agent online")
	return c
}

// collect reads every frame the client receives until the returned stop
// function is called, which returns them. The client's own next() must not
// be used meanwhile.
func collect(c *wsClient) (stop func() []frame) {
	done := make(chan struct{})
	out := make(chan []frame, 1)
	go func() {
		var got []frame
		for {
			select {
			case f := <-c.frames:
				got = append(got, f)
			case <-done:
				for {
					select {
					case f := <-c.frames:
						got = append(got, f)
					default:
						out <- got
						return
					}
				}
			}
		}
	}()
	return func() []frame { close(done); return <-out }
}

// waitLoad polls the agent's live load over REST (the agent frame may come
// before or after the answer to the operation that changed it).
func (s *testServer) waitLoad(t testing.TB, token, agent string, want int) {
	t.Helper()
	eventually(t, fmt.Sprintf("agent %s's load %d", agent, want), func() bool {
		var a struct{ Load int }
		return s.api(t, "GET", "/v1/agents/"+agent, token, nil, &a) == 200 && a.Load == want
	})
}

func (c *wsClient) op(id string, fields map[string]any) frame {
	c.t.Helper()
	fields["id"] = id
	c.send(fields)
	f := c.next(func(f frame) bool { return (f.Type == "done" || f.Type == "error") && f.ID == id }, "answer to "+id)
	if f.Type != "done" {
		c.t.Fatalf("%v refused: %s", fields, f.Raw)
	}
	return f
}

func (c *wsClient) opError(id string, fields map[string]any) frame {
	c.t.Helper()
	fields["id"] = id
	c.send(fields)
	f := c.next(func(f frame) bool { return (f.Type == "done" || f.Type == "error") && f.ID == id }, "answer to "+id)
	if f.Type != "error" {
		c.t.Fatalf("%v was accepted: %s", fields, f.Raw)
	}
	return f
}

func (c *wsClient) state(conv string, want engine.ConvState) frame {
	c.t.Helper()
	return c.next(func(f frame) bool { return f.Type == "state" && f.Conv == conv && f.State == want }, fmt.Sprintf("state %s of %s", want, conv))
}

// TestTakeoverLifecycle runs escalate, assignment, transfer, invite, note,
// hold, close and reopen over real WebSockets and checks that each frame
// reaches exactly the participants it should, and that the invitee alone
// lists the conversation among their invitations until it is closed.
func TestTakeoverLifecycle(t *testing.T) {
	s := startServer(t, testConfig(t.TempDir()))
	admin, _ := s.staffToken(t)
	alice := s.createAgent(t, admin, "alice", engine.StaffAgent, 3, nil)
	bob := s.createAgent(t, admin, "bob", engine.StaffAgent, 3, nil)
	carol := s.createAgent(t, admin, "carol", engine.StaffAgent, 3, nil)
	dave := s.createAgent(t, admin, "dave", engine.StaffAgent, 3, nil) // away all along: must see nothing

	userToken, userID := s.visitor(t)
	conv := s.newConversation(t, userToken)
	user := dial(t, s, "/v1/ws/user", nil)
	user.hello(userToken)
	user.resumeAll(conv, 0, 50)

	daveWS := s.online(t, dave)
	daveWS.send(map[string]any{"type": "presence", "status": "away"})
	daveWS.next(func(f frame) bool { return f.Type == "agent" && f.Presence == "away" }, "dave away")
	daveFrames := collect(daveWS)

	// Only alice is online: the escalation is routed to her.
	aliceWS := s.online(t, alice)
	user.send(map[string]any{"type": "escalate", "conv": conv})
	if f := user.state(conv, engine.StateAssigned); f.AgentID != alice.id {
		t.Fatalf("assigned to %q, want alice: %s", f.AgentID, f.Raw)
	}
	// The reservation (her load) comes before the assignment notice.
	aliceWS.next(func(f frame) bool { return f.Type == "agent" && f.Load == 1 && slices.Contains(f.Convs, conv) }, "alice's load 1")
	aliceWS.next(func(f frame) bool { return f.Type == "notice" && f.Kind == "assigned" && f.Conv == conv }, "assignment notice")
	aliceWS.resumeAll(conv, 0, 50)
	aliceWS.sendText(conv, "a1", "您好，我是 alice")
	aliceWS.ack("a1")
	if f := user.nextType("message"); f.Msg.From.ID != alice.id {
		t.Fatalf("user got %s", f.Raw)
	}

	// A transfer to an agent who is offline is refused and changes nothing.
	if f := aliceWS.opError("t0", map[string]any{"type": "transfer", "conv": conv, "agent_id": bob.id}); f.Code != string(engine.CodeAgentUnavailable) {
		t.Fatalf("transfer to offline bob: %s", f.Raw)
	}

	// Transfer to bob with a note: bob is told, with the note; alice stops
	// receiving the conversation; the user sees the new owner.
	bobWS := s.online(t, bob)
	if f := aliceWS.op("t1", map[string]any{"type": "transfer", "conv": conv, "agent_id": bob.id, "note": "客户要退款，订单 1234"}); f.State != engine.StateAssigned {
		t.Fatalf("transfer: %s", f.Raw)
	}
	if f := bobWS.next(func(f frame) bool { return f.Type == "notice" && f.Conv == conv }, "transfer notice"); f.Kind != "transferred" || f.Text != "客户要退款，订单 1234" {
		t.Fatalf("bob's notice: %s", f.Raw)
	}
	if f := user.state(conv, engine.StateAssigned); f.AgentID != bob.id {
		t.Fatalf("user sees owner %q: %s", f.AgentID, f.Raw)
	}
	s.waitLoad(t, admin, alice.id, 0)
	aliceFrames := collect(aliceWS)

	bobWS.resumeAll(conv, 0, 50)
	// The transfer's note is kept with the private notes (stored just after).
	eventually(t, "the transfer note among the notes", func() bool {
		var notes struct{ Notes []engine.Note }
		code := s.api(t, "GET", "/v1/conversations/"+conv+"/notes", bob.token, nil, &notes)
		return code == 200 && len(notes.Notes) == 1 && notes.Notes[0].Text == "客户要退款，订单 1234" && notes.Notes[0].Author.ID == alice.id
	})
	// alice may no longer read it.
	if code := s.api(t, "GET", "/v1/conversations/"+conv+"/messages", alice.token, nil, nil); code != 403 {
		t.Fatalf("alice reads the transferred conversation: status %d", code)
	}

	// Bob invites carol: both may reply, bob owns it.
	carolWS := s.online(t, carol)
	bobWS.op("i1", map[string]any{"type": "invite", "conv": conv, "agent_id": carol.id})
	carolWS.next(func(f frame) bool { return f.Type == "notice" && f.Kind == "invited" && f.Conv == conv }, "invitation")
	// After a reload carol finds it among her invitations (invited=true);
	// nobody else does, and it is not hers (mine=true).
	s.listed(t, carol.token, "invited=true&state=ASSIGNED", conv, func(c engine.Conversation) bool { return slices.Contains(c.Invited, carol.id) })
	for _, tc := range []struct { // stored now: each read once
		who, token, query string
		want              bool
	}{
		{"carol", carol.token, "invited=true", true},
		{"carol", carol.token, "invited=true&agent_id=" + bob.id, true},
		{"carol", carol.token, "invited=true&state=ON_HOLD", false},
		{"carol", carol.token, "mine=true", false},
		{"bob", bob.token, "mine=true", true},
		{"bob", bob.token, "invited=true", false},
		{"alice", alice.token, "invited=true", false},
		{"dave", dave.token, "invited=true", false},
		{"the admin", admin, "invited=true", false},
	} {
		if got := s.lists(t, tc.token, tc.query, conv); got != tc.want {
			t.Errorf("%s's %s lists it: %v, want %v", tc.who, tc.query, got, tc.want)
		}
	}
	carolWS.resumeAll(conv, 0, 50)
	carolWS.sendText(conv, "c1", "我是 carol，协助处理")
	carolWS.ack("c1")
	if f := user.nextType("message"); f.Msg.From.ID != carol.id {
		t.Fatalf("user got %s", f.Raw)
	}
	if f := bobWS.nextType("message"); f.Msg.From.ID != carol.id {
		t.Fatalf("bob got %s", f.Raw)
	}
	// Carol is not the owner: she may not transfer or hold.
	if f := carolWS.opError("h0", map[string]any{"type": "hold", "conv": conv}); f.Code != string(engine.CodeForbidden) {
		t.Fatalf("carol holds: %s", f.Raw)
	}

	// A private note reaches staff, never the user.
	bobWS.op("n1", map[string]any{"type": "note", "conv": conv, "text": "客户情绪激动，注意措辞"})
	if f := carolWS.nextType("note"); f.Note == nil || f.Note.Text != "客户情绪激动，注意措辞" {
		t.Fatalf("carol's note frame: %s", f.Raw)
	}

	// Hold and resume: the user and both agents see each change.
	bobWS.op("h1", map[string]any{"type": "hold", "conv": conv})
	carolWS.state(conv, engine.StateOnHold)
	bobWS.op("h2", map[string]any{"type": "unhold", "conv": conv})
	carolWS.state(conv, engine.StateAssigned)

	// Close with a reason; bob's load drops.
	if f := bobWS.op("x1", map[string]any{"type": "close", "conv": conv, "reason": "resolved"}); f.State != engine.StateClosed {
		t.Fatalf("close: %s", f.Raw)
	}
	s.waitLoad(t, admin, bob.id, 0)
	// The close ended carol's invitation.
	s.listed(t, admin, "state=CLOSED", conv, func(c engine.Conversation) bool { return len(c.Invited) == 0 })
	for _, query := range []string{"invited=true&state=ASSIGNED", "invited=true"} {
		if s.lists(t, carol.token, query, conv) {
			t.Errorf("after the close carol's %s lists it", query)
		}
	}
	var got []frame
	user.next(func(f frame) bool {
		got = append(got, f)
		return f.Type == "state" && f.State == engine.StateClosed
	}, "the user's CLOSED state")
	var states []string
	for _, f := range got {
		if f.Type == "note" || strings.Contains(f.Raw, "客户情绪激动") {
			t.Fatalf("the user received a private note: %s", f.Raw)
		}
		if f.Type == "state" {
			states = append(states, string(f.State))
		}
	}
	if want := []string{"ON_HOLD", "ASSIGNED", "CLOSED"}; !slices.Equal(states, want) {
		t.Fatalf("user saw states %v, want %v", states, want)
	}

	// The user reopens: back in the queue, and routed to an online agent
	// (bob, carol or alice; dave is away).
	user.op("r1", map[string]any{"type": "reopen", "conv": conv})
	f := user.next(func(f frame) bool { return f.Type == "state" && f.State == engine.StateAssigned }, "reassignment after reopen")
	if f.AgentID == dave.id || f.AgentID == "" {
		t.Fatalf("reopened conversation went to %q", f.AgentID)
	}

	// The user closes it; a second close is harmless.
	user.op("x2", map[string]any{"type": "close", "conv": conv})
	user.op("x3", map[string]any{"type": "close", "conv": conv})

	// Alice, transferred away, received nothing of the conversation after
	// the transfer except what concerned her load; dave received nothing.
	for _, f := range aliceFrames() {
		if f.Conv == conv && f.Type != "notice" && !(f.Type == "state" && f.AgentID != alice.id) {
			if f.Type == "message" || f.Type == "note" || f.Type == "typing" {
				t.Fatalf("alice received after the transfer: %s", f.Raw)
			}
		}
	}
	for _, f := range daveFrames() {
		if f.Conv == conv || strings.Contains(f.Raw, conv) {
			t.Fatalf("dave received: %s", f.Raw)
		}
	}

	// Every step is an event stored with the conversation (written in
	// order, just after the step).
	var events struct{ Events []engine.ConvEvent }
	var types []string
	eventually(t, "every step among the events", func() bool {
		if code := s.api(t, "GET", "/v1/conversations/"+conv+"/events", admin, nil, &events); code != 200 {
			t.Fatalf("events: status %d", code)
		}
		types = types[:0]
		for _, e := range events.Events {
			types = append(types, string(e.Type))
		}
		for _, want := range []string{"escalated", "assigned", "transferred", "invited", "held", "unheld", "closed", "reopened"} {
			if !slices.Contains(types, want) {
				return false
			}
		}
		return true
	})
	if i := slices.Index(types, "transferred"); events.Events[i].Agent != bob.id || events.Events[i].Note != "客户要退款，订单 1234" {
		t.Fatalf("transfer event: %+v", events.Events[i])
	}
	_ = userID
	_ = time.Second
}

// TestTakeoverRESTRefusals: bad shapes, wrong roles and wrong callers of
// the takeover API get their documented codes and change nothing.
func TestTakeoverRESTRefusals(t *testing.T) {
	s := startServer(t, testConfig(t.TempDir()))
	admin, _ := s.staffToken(t)
	alice := s.createAgent(t, admin, "alice", engine.StaffAgent, 2, nil)
	userToken, _ := s.visitor(t)
	otherUser, _ := s.visitor(t)
	conv := s.newConversation(t, userToken)

	type errResp struct {
		Error struct{ Code string } `json:"error"`
	}
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      engine.Code
	}{
		{"operator as agent id", "POST", "/v1/conversations/" + conv + "/transfer", admin, map[string]any{"agent_id": map[string]any{"$ne": nil}}, 400, engine.CodeInvalidField},
		{"unknown operation", "POST", "/v1/conversations/" + conv + "/teleport", admin, nil, 404, engine.CodeNotFound},
		{"hold a bot conversation", "POST", "/v1/conversations/" + conv + "/hold", admin, nil, 409, engine.CodeInvalidState},
		{"another customer closes it", "POST", "/v1/conversations/" + conv + "/close", otherUser, nil, 404, engine.CodeNotFound},
		{"a customer accepts", "POST", "/v1/conversations/" + conv + "/accept", userToken, nil, 403, engine.CodeForbidden},
		{"a customer reads notes", "GET", "/v1/conversations/" + conv + "/notes", userToken, nil, 401, engine.CodeUnauthenticated},
		{"an agent changes settings", "PUT", "/v1/settings", alice.token, map[string]any{"default_capacity": 50}, 403, engine.CodeForbidden},
		{"an agent raises their capacity", "PUT", "/v1/agents/" + alice.id, alice.token, map[string]any{"capacity": 100}, 403, engine.CodeForbidden},
		{"capacity out of range", "PUT", "/v1/agents/" + alice.id, admin, map[string]any{"capacity": 101}, 400, engine.CodeInvalidField},
		{"profile of nobody", "PUT", "/v1/agents/nobody", admin, map[string]any{"capacity": 3}, 404, engine.CodeNotFound},
		{"settings not an object", "PUT", "/v1/settings", admin, []int{1}, 400, engine.CodeBadFrame},
		{"bad routing rule", "PUT", "/v1/settings", admin, map[string]any{"rules": []map[string]any{{"when": "vip_level >> 3", "group": "x"}}}, 400, engine.CodeInvalidField},
		{"unknown policy", "PUT", "/v1/groups/refund", admin, map[string]any{"policy": "random"}, 400, engine.CodeInvalidField},
		{"the admin accepts it", "POST", "/v1/conversations/" + conv + "/accept", admin, nil, 200, ""},
		{"short password", "POST", "/v1/staff", admin, map[string]any{"username": "bob", "password": "short", "role": "agent"}, 400, engine.CodeInvalidField},
		{"duplicate username", "POST", "/v1/staff", admin, map[string]any{"username": "alice", "password": "long-enough", "role": "agent"}, 400, engine.CodeInvalidField},
		{"agent creates staff", "POST", "/v1/staff", alice.token, map[string]any{"username": "eve", "password": "long-enough", "role": "admin"}, 403, engine.CodeForbidden},
	} {
		var e errResp
		status := s.api(t, tc.method, tc.path, tc.token, tc.body, &e)
		if status != tc.status || engine.Code(e.Error.Code) != tc.code {
			t.Errorf("%s: status %d code %q, want %d %q", tc.name, status, e.Error.Code, tc.status, tc.code)
		}
	}
	// The admin accepted it above; a transfer to a group that does not exist is refused.
	var e errResp
	if status := s.api(t, "POST", "/v1/conversations/"+conv+"/transfer", admin, map[string]any{"group": "nosuch"}, &e); status != 404 || e.Error.Code != string(engine.CodeNotFound) {
		t.Fatalf("transfer to an unknown group: %d %q", status, e.Error.Code)
	}
	var c engine.Conversation
	s.api(t, "POST", "/v1/conversations/"+conv+"/accept", admin, nil, &c)
	if c.State != engine.StateAssigned {
		t.Fatalf("after the refusals the conversation is %s", c.State)
	}
}
