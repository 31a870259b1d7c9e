package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// fakeLLM is an in-process server speaking OpenAI's streaming
// chat-completions protocol (server-sent events ending with [DONE]). It
// streams pieces, and with hold it stops after the first piece until the
// client goes away, recording the cancellation.
type fakeLLM struct {
	srv       *httptest.Server
	pieces    []string
	hold      bool
	requests  atomic.Int32
	cancelled chan struct{}
}

func newFakeLLM(t *testing.T, hold bool, pieces ...string) *fakeLLM {
	f := &fakeLLM{pieces: pieces, hold: hold, cancelled: make(chan struct{}, 1)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeLLM) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string `json:"model"`
		Stream   bool   `json:"stream"`
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	if r.URL.Path != "/v1/chat/completions" || json.NewDecoder(r.Body).Decode(&req) != nil {
		http.Error(w, `{"error":{"message":"bad request","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	f.requests.Add(1)
	if !req.Stream { // the escalation classifier, if asked: nothing to escalate
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"{\"human\":false,\"angry\":false}"},"finish_reason":"stop"}]}`, req.Model)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	chunk := func(s string) {
		b, _ := json.Marshal(s)
		fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{\"content\":%s},\"finish_reason\":null}]}\n\n", req.Model, b)
		w.(http.Flusher).Flush()
	}
	// Like a grounded model, cite an entry the request supplied.
	ref := "none"
	for _, m := range req.Messages {
		if sub := entryRef.FindStringSubmatch(m.Content); sub != nil {
			ref = sub[1]
			break
		}
	}
	chunk("[[refs:" + ref + "]]\n")
	for i, p := range f.pieces {
		chunk(p)
		if f.hold && i == 0 {
			select {
			case <-r.Context().Done():
				f.cancelled <- struct{}{}
			case <-time.After(20 * time.Second):
			}
			return
		}
	}
	fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n", req.Model)
	fmt.Fprint(w, "data: [DONE]\n\n")
}

var entryRef = regexp.MustCompile(`\[(faq-\d+)\] 问`)

func llmServer(t *testing.T, llm *fakeLLM) (*testServer, string, string) {
	cfg := testConfig(t.TempDir())
	cfg.Bot.Enabled = true
	cfg.Bot.LLM.BaseURL, cfg.Bot.LLM.Model = llm.srv.URL+"/v1", "test-model"
	s := startServer(t, cfg)
	token, _ := s.visitor(t)
	return s, token, s.newConversation(t, token)
}

const offFAQQuestion = "你们卖的蜂蜜是哪里产的"

// TestLLMStreamsGroundedAnswer: a question the FAQ does not match goes to
// the LLM; its pieces stream to the customer and the whole answer is then
// stored as the bot's message.
func TestLLMStreamsGroundedAnswer(t *testing.T) {
	llm := newFakeLLM(t, false, "您好，", "商城所售商品均为", "品牌正品。")
	s, token, conv := llmServer(t, llm)
	user := dial(t, s, "/v1/ws/user", nil)
	user.hello(token)
	user.resumeAll(conv, 0, 50)
	user.sendText(conv, "q1", offFAQQuestion)
	user.ack("q1")
	var streamed strings.Builder
	answer := user.next(func(f frame) bool {
		if f.Type == "bot_delta" {
			streamed.WriteString(f.Raw)
		}
		return isBot(f)
	}, "the LLM answer")
	if llm.requests.Load() == 0 {
		t.Fatal("the LLM was not asked")
	}
	if !strings.Contains(answer.Msg.Body.Text, "品牌正品") || strings.Contains(answer.Msg.Body.Text, "refs") {
		t.Fatalf("stored answer: %s", answer.Raw)
	}
	if !strings.Contains(streamed.String(), "品牌正品") {
		t.Fatalf("no pieces were streamed: %q", streamed.String())
	}
}

// TestTakeoverCancelsLLM: a member of staff replying while the LLM is still
// answering cancels the call, and the bot's answer never appears.
func TestTakeoverCancelsLLM(t *testing.T) {
	llm := newFakeLLM(t, true, "您好，", "这段不会出现")
	s, token, conv := llmServer(t, llm)
	user := dial(t, s, "/v1/ws/user", nil)
	user.hello(token)
	user.resumeAll(conv, 0, 50)
	user.sendText(conv, "q1", offFAQQuestion)
	user.ack("q1")
	user.nextType("bot_delta") // the LLM is answering

	staff, _ := s.staffToken(t)
	agent := dial(t, s, "/v1/ws/agent", nil)
	agent.hello(staff)
	agent.resumeAll(conv, 0, 50)
	agent.sendText(conv, "a1", "您好，我来为您解答")
	agent.ack("a1")
	select {
	case <-llm.cancelled:
	case <-time.After(15 * time.Second):
		t.Fatal("the LLM call was not cancelled by the takeover")
	}
	agent.sendText(conv, "a2", "手机壳是硅胶材质")
	agent.ack("a2")
	for _, m := range s.history(t, token, conv) {
		if m.From.Role == engine.RoleBot {
			t.Fatalf("the bot spoke although a person took over: %+v", m)
		}
	}
}
