package clustertest

import (
	"fmt"
	"testing"
	"time"
)

// TestClusterSmoke: a customer on one edge and an agent on the other talk
// through conversation actors placed on three actor nodes.
func TestClusterSmoke(t *testing.T) {
	c := Start(t, 3, 2)
	agentToken, agentID := Agent(t, c.Edges[1], "smoke-agent", 20)
	agent := Dial(t, c.Edges[1], "/v1/ws/agent", agentToken)

	for i := range 6 { // several conversations, so that every node hosts some
		userToken, conv := Visitor(t, c.Edges[0])
		user := Dial(t, c.Edges[0], "/v1/ws/user", userToken)
		if _, ok := user.Resume(conv, 0); !ok {
			t.Fatalf("conversation %d: resume failed", i)
		}
		cmid := fmt.Sprintf("smoke-%d", i)
		mustSend(t, user, conv, cmid, "人工客服")
		// The agent is online with room: routing assigns it to them.
		if _, ok := agent.Next(func(f Frame) bool { return f.Type == "notice" && f.Kind == "assigned" && f.Conv == conv }, 20*time.Second); !ok {
			t.Fatalf("conversation %d was not assigned to the agent", i)
		}
		if _, ok := agent.Resume(conv, 0); !ok {
			t.Fatalf("the agent could not follow conversation %d", i)
		}
		mustSend(t, agent, conv, cmid+"-reply", "您好，我来帮您")
		if _, ok := user.Next(func(f Frame) bool { return f.Type == "message" && f.Msg.From.ID == agentID }, 20*time.Second); !ok {
			t.Fatalf("conversation %d: the agent's reply did not reach the customer on the other edge", i)
		}
	}
}

// mustSend sends a text and waits for its ack.
func mustSend(t testing.TB, s *Socket, conv, cmid, text string) Frame {
	t.Helper()
	if err := s.Send(map[string]any{"type": "send", "conv": conv, "client_msg_id": cmid, "body": map[string]string{"type": "text", "text": text}}); err != nil {
		t.Fatal(err)
	}
	f, ok := s.Next(func(f Frame) bool { return f.ClientMsgID == cmid && (f.Type == "ack" || f.Type == "error") }, 20*time.Second)
	if !ok || f.Type != "ack" {
		t.Fatalf("send %s: no ack: %+v", cmid, f)
	}
	return f
}
