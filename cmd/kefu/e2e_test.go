package main

import (
	"fmt"
	"sync"
	"testing"

	"github.com/kefu-dev/kefu/config"
	"github.com/kefu-dev/kefu/engine"
)

// TestEndToEnd: a user and an agent exchange messages over real WebSockets,
// typing and read receipts reach the other side, the REST history matches,
// and after a restart on the same data resume returns every message. It
// runs on each store.
func TestEndToEnd(t *testing.T) { forEachStore(t, testEndToEnd) }

func testEndToEnd(t *testing.T, cfg config.Config) {
	s := startServer(t, cfg)
	userToken, userID := s.visitor(t)
	staffToken, staffID := s.staffToken(t)
	conv := s.newConversation(t, userToken)

	user := dial(t, s, "/v1/ws/user", nil)
	if w := user.hello(userToken); w.You.ID != userID || w.You.Role != engine.RoleUser {
		t.Fatalf("welcome: %s", w.Raw)
	}
	agent := dial(t, s, "/v1/ws/agent", nil)
	agent.hello(staffToken)
	if msgs, _ := user.resumeAll(conv, 0, 50); len(msgs) != 0 {
		t.Fatalf("new conversation has %d messages", len(msgs))
	}
	if msgs, _ := agent.resumeAll(conv, 0, 50); len(msgs) != 0 {
		t.Fatalf("agent sees %d messages", len(msgs))
	}

	var sent []string
	for i := range 5 {
		id := fmt.Sprintf("u-%d", i)
		user.sendText(conv, id, fmt.Sprintf("我的订单 %d 还没到", i))
		ack := user.ack(id)
		if ack.Seq != int64(2*i+1) {
			t.Fatalf("user message %d acked with seq %d", i, ack.Seq)
		}
		got := agent.nextType("message")
		if got.Msg.Seq != ack.Seq || got.Msg.ClientMsgID != id || got.Msg.From.ID != userID {
			t.Fatalf("agent received %s", got.Raw)
		}
		reply := fmt.Sprintf("a-%d", i)
		agent.sendText(conv, reply, "马上为您查询")
		rack := agent.ack(reply)
		echo := user.nextType("message")
		if echo.Msg.Seq != rack.Seq || echo.Msg.From.ID != staffID || echo.Msg.From.Role != engine.RoleAgent {
			t.Fatalf("user received %s", echo.Raw)
		}
		sent = append(sent, id, reply)
	}

	user.send(map[string]any{"type": "typing", "conv": conv, "on": true})
	if f := agent.nextType("typing"); f.From.ID != userID || !f.On {
		t.Fatalf("typing: %s", f.Raw)
	}
	user.send(map[string]any{"type": "read", "conv": conv, "seq": 10})
	if f := agent.nextType("read"); f.By.ID != userID || f.Seq != 10 {
		t.Fatalf("read push: %s", f.Raw)
	}
	if f := user.nextType("read"); f.Seq != 10 {
		t.Fatalf("read confirmation: %s", f.Raw)
	}
	user.send(map[string]any{"type": "read", "conv": conv, "seq": 4})
	if f := user.nextType("read"); f.Seq != 10 {
		t.Fatalf("the read pointer moved backwards: %s", f.Raw)
	}

	for _, token := range []string{userToken, staffToken} {
		hist := s.history(t, token, conv)
		if len(hist) != len(sent) {
			t.Fatalf("REST history has %d messages, want %d", len(hist), len(sent))
		}
		for i, m := range hist {
			if m.Seq != int64(i+1) || m.ClientMsgID != sent[i] {
				t.Fatalf("REST history[%d] = seq %d %q, want seq %d %q", i, m.Seq, m.ClientMsgID, i+1, sent[i])
			}
		}
	}

	// Restart on the same data: everything is still there.
	s.stop(t)
	s2 := startServer(t, cfg)
	user2 := dial(t, s2, "/v1/ws/user", nil)
	user2.hello(userToken) // the signing key survived the restart too
	msgs, _ := user2.resumeAll(conv, 0, 3)
	if len(msgs) != len(sent) {
		t.Fatalf("after restart resume returned %d messages, want %d", len(msgs), len(sent))
	}
	for i, m := range msgs {
		if m.Seq != int64(i+1) || m.ClientMsgID != sent[i] {
			t.Fatalf("after restart message %d = seq %d %q", i, m.Seq, m.ClientMsgID)
		}
	}
	// Sending continues the sequence without a gap.
	user2.sendText(conv, "after-restart", "还在吗")
	if ack := user2.ack("after-restart"); ack.Seq != int64(len(sent)+1) {
		t.Fatalf("first message after restart got seq %d", ack.Seq)
	}
}

// TestResendIsDeduplicated: a resend with the same client_msg_id stores one
// message and returns the same seq, both while the original is fresh in
// memory and after the conversation was reloaded from the store, on each
// store.
func TestResendIsDeduplicated(t *testing.T) { forEachStore(t, testResendIsDeduplicated) }

func testResendIsDeduplicated(t *testing.T, cfg config.Config) {
	s := startServer(t, cfg)
	userToken, _ := s.visitor(t)
	conv := s.newConversation(t, userToken)
	user := dial(t, s, "/v1/ws/user", nil)
	user.hello(userToken)

	user.sendText(conv, "m-1", "第一条")
	first := user.ack("m-1")
	user.sendText(conv, "m-1", "第一条 (resent)")
	again := user.ack("m-1")
	if again.Seq != first.Seq || !again.Dup {
		t.Fatalf("resend acked %s, original %s", again.Raw, first.Raw)
	}
	user.sendText(conv, "m-2", "第二条")
	if ack := user.ack("m-2"); ack.Seq != first.Seq+1 {
		t.Fatalf("next message got seq %d", ack.Seq)
	}
	hist := s.history(t, userToken, conv)
	if len(hist) != 2 || hist[0].Body.Text != "第一条" {
		t.Fatalf("history after resend: %+v", hist)
	}

	// After a restart the message is no longer in memory: the store's
	// unique index still recognises the resend.
	s.stop(t)
	s2 := startServer(t, cfg)
	user2 := dial(t, s2, "/v1/ws/user", nil)
	user2.hello(userToken)
	user2.sendText(conv, "m-1", "第一条 (after restart)")
	if ack := user2.ack("m-1"); ack.Seq != first.Seq || !ack.Dup {
		t.Fatalf("resend after restart acked %s", ack.Raw)
	}
	if hist := s2.history(t, userToken, conv); len(hist) != 2 {
		t.Fatalf("history has %d messages after resend", len(hist))
	}
}

// TestConcurrentSendsAreGapless: 1,000 messages sent concurrently over 50
// conversations; every conversation's seqs are gapless from 1 and every ack
// matches the stored row, on each store.
func TestConcurrentSendsAreGapless(t *testing.T) { forEachStore(t, testConcurrentSendsAreGapless) }

func testConcurrentSendsAreGapless(t *testing.T, cfg config.Config) {
	s := startServer(t, cfg)
	const convs, perConv = 50, 20
	staffToken, _ := s.staffToken(t)
	type result struct {
		conv string
		acks map[string]int64
	}
	results := make([]result, convs)
	var wg sync.WaitGroup
	for i := range convs {
		token, _ := s.visitor(t)
		conv := s.newConversation(t, token)
		results[i] = result{conv: conv, acks: map[string]int64{}}
		c := dial(t, s, "/v1/ws/user", nil)
		c.hello(token)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perConv { // pipelined: all sent before any ack is read
				c.sendText(conv, fmt.Sprintf("c%d-m%d", i, j), fmt.Sprintf("消息 %d", j))
			}
			for j := range perConv {
				id := fmt.Sprintf("c%d-m%d", i, j)
				results[i].acks[id] = c.ack(id).Seq
			}
		}()
	}
	wg.Wait()
	for _, r := range results {
		hist := s.history(t, staffToken, r.conv)
		if len(hist) != perConv {
			t.Fatalf("conversation %s has %d messages, want %d", r.conv, len(hist), perConv)
		}
		for i, m := range hist {
			if m.Seq != int64(i+1) {
				t.Fatalf("conversation %s: message %d has seq %d (gap)", r.conv, i, m.Seq)
			}
			if r.acks[m.ClientMsgID] != m.Seq {
				t.Fatalf("conversation %s: %s acked %d, stored %d", r.conv, m.ClientMsgID, r.acks[m.ClientMsgID], m.Seq)
			}
		}
	}
}
