package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

func botConfig(t testing.TB) (*testServer, string, string) {
	cfg := testConfig(t.TempDir())
	cfg.Bot.Enabled = true
	cfg.WS.RatePerSec, cfg.WS.Burst = 10000, 10000
	s := startServer(t, cfg)
	token, _ := s.visitor(t)
	return s, token, s.newConversation(t, token)
}

func isBot(f frame) bool { return f.Type == "message" && f.Msg.From.Role == engine.RoleBot }

// TestBotAnswersThenHandsOver: over real WebSockets the bot answers a FAQ
// question from the demo knowledge base, hands over when asked for a
// person, and is silent once an agent has replied.
func TestBotAnswersThenHandsOver(t *testing.T) {
	s, token, conv := botConfig(t)
	user := dial(t, s, "/v1/ws/user", nil)
	user.hello(token)
	user.resumeAll(conv, 0, 50)

	user.sendText(conv, "q1", "下单后怎么取消订单？")
	ack := user.ack("q1")
	answer := user.next(isBot, "the bot's answer")
	if answer.Msg.Seq != ack.Seq+1 || !strings.Contains(answer.Msg.Body.Text, "取消订单") || answer.Msg.Body.Type != engine.BodyText {
		t.Fatalf("bot answer: %s", answer.Raw)
	}

	user.sendText(conv, "q2", "转人工")
	user.ack("q2")
	handover := user.next(isBot, "the bot's hand-over message")
	if !strings.Contains(handover.Msg.Body.Text, "人工") {
		t.Fatalf("hand-over message: %s", handover.Raw)
	}
	if st := user.nextType("state"); st.Raw == "" || !strings.Contains(st.Raw, `"state":"QUEUED"`) {
		t.Fatalf("state after escalation: %s", st.Raw)
	}

	staff, _ := s.staffToken(t)
	agent := dial(t, s, "/v1/ws/agent", nil)
	agent.hello(staff)
	agent.resumeAll(conv, 0, 50)
	agent.sendText(conv, "a1", "您好，我是客服小王")
	agent.ack("a1")
	if st := user.nextType("state"); !strings.Contains(st.Raw, `"state":"ASSIGNED"`) {
		t.Fatalf("state after takeover: %s", st.Raw)
	}
	user.sendText(conv, "q3", "下单后怎么取消订单？")
	user.ack("q3")
	// The agent's own reply proves ordering: anything the bot said to q3
	// would be stored before it.
	agent.sendText(conv, "a2", "我来帮您处理")
	a2 := agent.ack("a2")
	hist := s.history(t, token, conv)
	for _, m := range hist {
		if m.From.Role == engine.RoleBot && m.Seq > a2.Seq-3 {
			t.Fatalf("the bot spoke after the takeover: %+v", m)
		}
	}
	if got := hist[len(hist)-1]; got.ClientMsgID != "a2" {
		t.Fatalf("last message %+v", got)
	}
}

// TestBotSuggestsAndUserEscalates: an ambiguous question gets did-you-mean
// options; the "talk to a person" frame queues the conversation.
func TestBotSuggestsAndUserEscalates(t *testing.T) {
	s, token, conv := botConfig(t)
	user := dial(t, s, "/v1/ws/user", nil)
	user.hello(token)
	user.resumeAll(conv, 0, 50)
	user.sendText(conv, "q1", "退款")
	user.ack("q1")
	reply := user.next(isBot, "the bot's reply")
	switch reply.Msg.Body.Type {
	case engine.BodyQuickReply:
		if len(reply.Msg.Body.Options) == 0 || len(reply.Msg.Body.Options) > 3 {
			t.Fatalf("suggestions: %s", reply.Raw)
		}
	case engine.BodyText: // a confident answer is also acceptable for this one
	default:
		t.Fatalf("reply: %s", reply.Raw)
	}
	user.send(map[string]any{"type": "escalate", "conv": conv})
	if st := user.nextType("state"); !strings.Contains(st.Raw, `"state":"QUEUED"`) || !strings.Contains(st.Raw, `"reason":"user_request"`) {
		t.Fatalf("escalate: %s", st.Raw)
	}
}

// TestAgentAssistAndKBAPI: staff see knowledge-base suggestions for the
// customer's latest message, and KB changes reach the bot without a restart.
func TestAgentAssistAndKBAPI(t *testing.T) {
	s, token, conv := botConfig(t)
	staff, _ := s.staffToken(t)
	user := dial(t, s, "/v1/ws/user", nil)
	user.hello(token)
	user.resumeAll(conv, 0, 50)
	user.sendText(conv, "q1", "钱扣了两次怎么办")
	user.ack("q1")
	user.next(isBot, "the bot's reply")

	var assist struct {
		Query       string `json:"query"`
		Suggestions []struct {
			EntryID string `json:"entry_id"`
		} `json:"suggestions"`
	}
	if code := s.api(t, "GET", "/v1/conversations/"+conv+"/assist", staff, nil, &assist); code != 200 || len(assist.Suggestions) == 0 {
		t.Fatalf("assist: %d %+v", code, assist)
	}
	if code := s.api(t, "GET", "/v1/conversations/"+conv+"/assist", token, nil, nil); code != 401 {
		t.Fatalf("assist with a customer token: %d", code)
	}

	entry := map[string]any{"id": "faq-new", "category": "会员", "question": "积分可以兑换什么", "similar": []string{"积分怎么用"}, "answer": "积分可在“我的-积分商城”兑换优惠券和小礼品。"}
	if code := s.api(t, "PUT", "/v1/kb/entries/faq-new", staff, entry, nil); code != 200 {
		t.Fatalf("put entry: %d", code)
	}
	user.sendText(conv, "q2", "积分可以兑换什么")
	user.ack("q2")
	if r := user.next(isBot, "the bot's answer from the new entry"); !strings.Contains(r.Msg.Body.Text, "积分商城") {
		t.Fatalf("the new entry was not used: %s", r.Raw)
	}
	var list []map[string]any
	if code := s.api(t, "GET", "/v1/kb/entries", staff, nil, &list); code != 200 || !slices.ContainsFunc(list, func(e map[string]any) bool { return e["id"] == "faq-new" }) {
		t.Fatalf("list: %d, %d entries", code, len(list))
	}
	if code := s.api(t, "DELETE", "/v1/kb/entries/faq-new", staff, nil, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code := s.api(t, "DELETE", "/v1/kb/entries/faq-new", staff, nil, nil); code != 404 {
		t.Fatalf("delete twice: %d", code)
	}
	if code := s.api(t, "PUT", "/v1/kb/entries/faq-x", staff, map[string]any{"id": "faq-x", "question": "", "answer": "a"}, nil); code != 400 {
		t.Fatalf("an invalid entry was accepted: %d", code)
	}
}

// BenchmarkBotFirstReply measures the FAQ path end to end: from a user's
// send to the bot's answer arriving over the WebSocket.
func BenchmarkBotFirstReply(b *testing.B) {
	s, token, conv := botConfig(b)
	user := dial(b, s, "/v1/ws/user", nil)
	user.hello(token)
	user.resumeAll(conv, 0, 50)
	questions := []string{"下单后怎么取消订单？", "运费怎么收？满多少包邮？", "退款多久能到账？", "可以分期付款吗？"}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		user.sendText(conv, fmt.Sprintf("b%d", i), questions[i%len(questions)])
		user.next(isBot, "the bot's answer")
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
