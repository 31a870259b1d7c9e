package main

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/config"
	"github.com/kefu-dev/kefu/engine"
)

// timerConfig polls for due timers often, so a test that advances its fake
// clock sees the effect within milliseconds.
func timerConfig(dir string) config.Config {
	cfg := testConfig(dir)
	cfg.Conversation.TimerInterval = config.Duration(20 * time.Millisecond)
	return cfg
}

// systemMessage waits for a message from Kefu itself whose text contains want.
func (c *wsClient) systemMessage(conv, want string) frame {
	c.t.Helper()
	return c.next(func(f frame) bool {
		return f.Type == "message" && f.Conv == conv && f.Msg.From.Role == engine.RoleSystem && strings.Contains(f.Msg.Body.Text, want)
	}, "system message containing "+want)
}

// TestTimersFire drives every conversation timer with a fake clock: the
// queue timeout, the first-response warning and the supervisors' alert,
// the idle warning and auto-close, and hold expiry. Nothing sleeps: the
// clock jumps and the test waits for the frames.
func TestTimersFire(t *testing.T) {
	clock := engine.NewManualClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)) // a Monday
	s := startServerClock(t, timerConfig(t.TempDir()), clock)
	admin, _ := s.staffToken(t)
	alice := s.createAgent(t, admin, "alice", engine.StaffAgent, 3, nil)

	// The admin watches alerts, away so routing leaves them alone.
	adminWS := dial(t, s, "/v1/ws/agent", nil)
	adminWS.hello(admin)
	adminWS.send(map[string]any{"type": "presence", "status": "away"})
	adminWS.next(func(f frame) bool { return f.Type == "agent" && f.Presence == "away" }, "admin away")

	userToken, _ := s.visitor(t)
	conv := s.newConversation(t, userToken)
	user := dial(t, s, "/v1/ws/user", nil)
	user.hello(userToken)
	user.resumeAll(conv, 0, 50)

	// Nobody online: told at once; offered to leave a message at the queue timeout.
	user.send(map[string]any{"type": "escalate", "conv": conv})
	user.systemMessage(conv, "留言")
	clock.Advance(5*time.Minute + time.Second)
	user.systemMessage(conv, "排队")

	// Alice comes online and gets it; she does not answer within a minute.
	aliceWS := s.online(t, alice)
	user.state(conv, engine.StateAssigned)
	aliceWS.next(func(f frame) bool { return f.Type == "notice" && f.Kind == "assigned" }, "assignment")
	clock.Advance(61 * time.Second)
	aliceWS.next(func(f frame) bool { return f.Type == "notice" && f.Kind == "sla_warning" && f.Conv == conv }, "first-response warning")
	clock.Advance(2*time.Minute + time.Second)
	if f := adminWS.next(func(f frame) bool { return f.Type == "notice" && f.Kind == "sla_breached" }, "supervisors' alert"); f.Conv != conv || f.AgentID != alice.id {
		t.Fatalf("alert: %s", f.Raw)
	}

	// She answers; the customer goes quiet: warned, then closed.
	aliceWS.resumeAll(conv, 0, 50)
	aliceWS.sendText(conv, "a1", "您好")
	aliceWS.ack("a1")
	clock.Advance(10*time.Minute + time.Second)
	user.systemMessage(conv, "自动结束")
	clock.Advance(5*time.Minute + time.Second)
	if f := user.state(conv, engine.StateClosed); f.Reason != "user_idle" {
		t.Fatalf("closed: %s", f.Raw)
	}

	// A second conversation: a hold ends by itself.
	conv2 := s.newConversation(t, userToken)
	user.resumeAll(conv2, 0, 50)
	user.send(map[string]any{"type": "escalate", "conv": conv2})
	user.state(conv2, engine.StateAssigned)
	aliceWS.resumeAll(conv2, 0, 50)
	aliceWS.op("h", map[string]any{"type": "hold", "conv": conv2})
	user.state(conv2, engine.StateOnHold)
	clock.Advance(10*time.Minute + time.Second)
	if f := user.state(conv2, engine.StateAssigned); f.Reason != "hold_expired" {
		t.Fatalf("hold expiry: %s", f.Raw)
	}
	aliceWS.next(func(f frame) bool { return f.Type == "notice" && f.Kind == "hold_expired" && f.Conv == conv2 }, "hold expiry notice")
}

// activeConversations reads kefu_conversations_active from /metrics.
func (s *testServer) activeConversations(t testing.TB) string {
	t.Helper()
	resp, err := http.Get(s.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "kefu_conversations_active "); ok {
			return v
		}
	}
	return ""
}

// hasSystemMessage reports whether the conversation's stored history has
// a message from Kefu containing want.
func (s *testServer) hasSystemMessage(t testing.TB, token, conv, want string) bool {
	for _, m := range s.history(t, token, conv) {
		if m.From.Role == engine.RoleSystem && strings.Contains(m.Body.Text, want) {
			return true
		}
	}
	return false
}

// TestTimerFiresAfterPassivationAndRestart: a timer whose conversation is
// no longer in memory still fires, and so does one whose process stopped
// and started again on the same data.
func TestTimerFiresAfterPassivationAndRestart(t *testing.T) {
	clock := engine.NewManualClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	cfg := timerConfig(t.TempDir())
	cfg.Conversation.IdleTimeout = config.Duration(200 * time.Millisecond)
	s := startServerClock(t, cfg, clock)
	admin, _ := s.staffToken(t)

	userToken, _ := s.visitor(t)
	conv := s.newConversation(t, userToken)
	user := dial(t, s, "/v1/ws/user", nil)
	user.hello(userToken)
	user.resumeAll(conv, 0, 50)
	user.send(map[string]any{"type": "escalate", "conv": conv})
	user.systemMessage(conv, "留言") // queued; the queue timeout is armed
	user.conn.Close()

	// Nobody watches it: the conversation leaves memory.
	eventually(t, "the conversation to passivate", func() bool { return s.activeConversations(t) == "0" })
	clock.Advance(5*time.Minute + time.Second)
	eventually(t, "the queue timeout of the passivated conversation", func() bool {
		return s.hasSystemMessage(t, admin, conv, "排队")
	})

	// Another conversation queued, then the process restarts.
	conv2 := s.newConversation(t, userToken)
	if code := s.api(t, "POST", "/v1/conversations/"+conv2+"/reopen", userToken, nil, nil); code != 409 {
		t.Fatalf("reopening an open conversation: status %d, want 409", code)
	}
	user2 := dial(t, s, "/v1/ws/user", nil)
	user2.hello(userToken)
	user2.resumeAll(conv2, 0, 50)
	user2.send(map[string]any{"type": "escalate", "conv": conv2})
	user2.systemMessage(conv2, "留言")
	s.stop(t)

	s2 := startServerClock(t, cfg, clock)
	admin2, _ := s2.staffToken(t)
	clock.Advance(5*time.Minute + time.Second)
	eventually(t, "the queue timeout after a restart", func() bool {
		return s2.hasSystemMessage(t, admin2, conv2, "排队")
	})
}
