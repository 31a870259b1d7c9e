package bots

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/kefu-dev/kefu/kb"
)

var testCands = []kb.Candidate{
	{EntryID: "faq-023", Question: "退货的运费谁来出？", Answer: "质量问题退货由商家承担运费；7天无理由退货由买家承担。"},
	{EntryID: "faq-019", Question: "支持7天无理由退货吗？", Answer: "支持，签收7天内商品完好可退。"},
}

const groundedAnswer = "如果是质量问题，退货运费由我们承担；无理由退货的运费需要您自己承担。"

func TestLLMAnswerNonStreaming(t *testing.T) {
	f := newFakeOpenAI(t, func(req chatRequest) fakeReply {
		return fakeReply{Content: "[[refs:faq-023]]\n" + groundedAnswer}
	})
	l := newTestLLM(t, f, 5*time.Second)
	ans, err := l.Answer(context.Background(), "退货运费谁出", testCands, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Text != groundedAnswer || len(ans.Used) != 1 || ans.Used[0] != "faq-023" || ans.Declined {
		t.Errorf("answer %+v", ans)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].Stream || reqs[0].Model != "test-model" {
		t.Fatalf("requests %+v", reqs)
	}
	sys := reqs[0].system()
	for _, want := range []string{"[[refs:", "[faq-023]", testCands[0].Answer, "[faq-019]", "[[refs:none]]"} {
		if !strings.Contains(sys, want) {
			t.Errorf("system prompt lacks %q", want)
		}
	}
	if reqs[0].user() != "退货运费谁出" || strings.Contains(reqs[0].user(), "faq-") {
		t.Errorf("user message %q", reqs[0].user())
	}
}

func TestLLMAnswerStreaming(t *testing.T) {
	// The reference line arrives split across chunks and cites one entry
	// it was not given, which is dropped.
	chunks := append([]string{"[[re", "fs:faq-0", "23, faq-999", "]]", "\n"}, split(groundedAnswer, 3)...)
	f := newFakeOpenAI(t, func(req chatRequest) fakeReply {
		return fakeReply{Chunks: chunks, ChunkDelay: time.Millisecond}
	})
	l := newTestLLM(t, f, 5*time.Second)
	var p pieces
	ans, err := l.Answer(context.Background(), "退货运费谁出", testCands, p.add)
	if err != nil {
		t.Fatal(err)
	}
	if !f.requests()[0].Stream {
		t.Error("request was not streaming")
	}
	if p.text() != groundedAnswer || ans.Text != groundedAnswer {
		t.Errorf("streamed %q, answer %q", p.text(), ans.Text)
	}
	if p.n() < 5 {
		t.Errorf("only %d pieces streamed: not incremental", p.n())
	}
	for _, piece := range p.got {
		if strings.Contains(piece, "[[") || strings.Contains(piece, "refs") {
			t.Errorf("the reference line leaked to the client: %q", piece)
		}
	}
	if len(ans.Used) != 1 || ans.Used[0] != "faq-023" {
		t.Errorf("used %v", ans.Used)
	}
}

func TestLLMReferenceLine(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          error
		declined      bool
		used          string
	}{
		{"two refs", "[[refs: faq-023，faq-019]] 答案", nil, false, "faq-023,faq-019"},
		{"full-width colon", "[[refs：faq-019]]\n答案", nil, false, "faq-019"},
		{"leading space", "  \n[[refs:faq-019]]答案", nil, false, "faq-019"},
		{"declined", "[[refs:none]]\n抱歉，这个问题我无法回答。", nil, true, ""},
		{"declined 无", "[[refs:无]]", nil, true, ""},
		{"no reference line", "退货运费由买家承担。", ErrNoReferences, false, ""},
		{"unknown ids only", "[[refs:faq-777]]\n随便编的答案", ErrNoReferences, false, ""},
		{"empty refs", "[[refs:]]\n答案", ErrNoReferences, false, ""},
		{"unterminated", "[[refs:faq-023 " + strings.Repeat("很长", 300), ErrNoReferences, false, ""},
		{"empty body", "[[refs:faq-023]]\n  ", ErrEmptyAnswer, false, ""},
	} {
		for _, stream := range []bool{false, true} {
			f := newFakeOpenAI(t, func(req chatRequest) fakeReply {
				return fakeReply{Content: tc.content, Chunks: split(tc.content, 2)}
			})
			l := newTestLLM(t, f, 5*time.Second)
			var p pieces
			onDelta := p.add
			if !stream {
				onDelta = nil
			}
			ans, err := l.Answer(context.Background(), "q", testCands, onDelta)
			if !errors.Is(err, tc.want) {
				t.Errorf("%s (stream %v): err %v, want %v", tc.name, stream, err, tc.want)
				continue
			}
			if ans.Declined != tc.declined || strings.Join(ans.Used, ",") != tc.used {
				t.Errorf("%s (stream %v): %+v", tc.name, stream, ans)
			}
			if (tc.want != nil || tc.declined) && p.n() > 0 && tc.want != ErrEmptyAnswer {
				t.Errorf("%s: streamed %q before knowing the reply was unusable", tc.name, p.text())
			}
		}
	}
}

func TestLLMHTTPErrors(t *testing.T) {
	for _, tc := range []struct {
		status    int
		typ, code string
	}{
		{http.StatusTooManyRequests, "requests", "rate_limit_exceeded"},
		{http.StatusInternalServerError, "server_error", ""},
		{http.StatusServiceUnavailable, "server_error", "overloaded"},
	} {
		for _, stream := range []bool{false, true} {
			f := newFakeOpenAI(t, func(req chatRequest) fakeReply {
				return fakeReply{Status: tc.status, ErrType: tc.typ, ErrCode: tc.code}
			})
			l := newTestLLM(t, f, 5*time.Second)
			var onDelta func(string)
			if stream {
				onDelta = func(string) { t.Error("delta on an error") }
			}
			_, err := l.Answer(context.Background(), "q", testCands, onDelta)
			var apiErr *openai.APIError
			if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != tc.status {
				t.Errorf("status %d (stream %v): err %v", tc.status, stream, err)
			}
		}
	}
	// A wrong key is an error too.
	f := newFakeOpenAI(t, func(req chatRequest) fakeReply { return fakeReply{Content: "[[refs:faq-023]] x"} })
	l, _ := NewLLM(LLMConfig{BaseURL: f.URL(), Model: "m", APIKey: "wrong"})
	if _, err := l.Answer(context.Background(), "q", testCands, nil); err == nil {
		t.Error("a wrong key succeeded")
	}
	if _, err := NewLLM(LLMConfig{Model: "m"}); !errors.Is(err, ErrLLMConfig) {
		t.Errorf("missing base URL: %v", err)
	}
}

func TestLLMTimeoutAndCancel(t *testing.T) {
	// A server that takes longer than the timeout to answer.
	slow := newFakeOpenAI(t, func(req chatRequest) fakeReply {
		return fakeReply{Delay: 5 * time.Second, Content: "[[refs:faq-023]] 太迟了"}
	})
	l := newTestLLM(t, slow, 150*time.Millisecond)
	start := time.Now()
	_, err := l.Answer(context.Background(), "q", testCands, func(string) {})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow server: err %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("timeout of 150ms took %v", took)
	}

	// A stream that stalls after a few tokens: the timeout covers the
	// whole answer, not just the first byte.
	stall := newFakeOpenAI(t, func(req chatRequest) fakeReply {
		return fakeReply{Chunks: []string{"[[refs:faq-023]]", "退货", "运费", "由", "买家"}, ChunkDelay: time.Second}
	})
	l = newTestLLM(t, stall, 300*time.Millisecond)
	if _, err := l.Answer(context.Background(), "q", testCands, func(string) {}); err == nil {
		t.Error("stalled stream did not time out")
	}

	// The caller cancels mid-stream.
	l = newTestLLM(t, stall, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	start = time.Now()
	_, err = l.Answer(ctx, "q", testCands, func(string) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("cancel took %v", took)
	}

	// The server dies mid-stream.
	cut := newFakeOpenAI(t, func(req chatRequest) fakeReply {
		return fakeReply{Chunks: []string{"[[refs:faq-023]]", "退货", "运费", "由"}, CutAfter: 2}
	})
	l = newTestLLM(t, cut, 5*time.Second)
	if _, err := l.Answer(context.Background(), "q", testCands, func(string) {}); err == nil {
		t.Error("a cut stream succeeded")
	}

	// The stream ends cleanly but early: no finish reason, no [DONE].
	early := newFakeOpenAI(t, func(req chatRequest) fakeReply {
		return fakeReply{Chunks: []string{"[[refs:faq-023]]", "退货", "运费"}, NoFinish: true}
	})
	l = newTestLLM(t, early, 5*time.Second)
	if _, err := l.Answer(context.Background(), "q", testCands, func(string) {}); !errors.Is(err, ErrTruncated) {
		t.Errorf("a stream without a finish reason: %v", err)
	}
}

func TestLLMClassify(t *testing.T) {
	f := newFakeOpenAI(t, func(req chatRequest) fakeReply {
		switch {
		case strings.Contains(req.user(), "找人"):
			return fakeReply{Content: `{"human": true, "anger": 0.2}`}
		case strings.Contains(req.user(), "生气"):
			return fakeReply{Content: "判断：\n{\"human\": false, \"anger\": 1.7}"}
		case strings.Contains(req.user(), "乱"):
			return fakeReply{Content: "我觉得不需要"}
		}
		return fakeReply{Content: `{"human": false, "anger": 0}`}
	})
	l := newTestLLM(t, f, 5*time.Second)
	in, err := l.Classify(context.Background(), "能帮我找人处理吗")
	if err != nil || !in.Human {
		t.Errorf("%+v %v", in, err)
	}
	in, err = l.Classify(context.Background(), "我很生气")
	if err != nil || in.Human || in.Anger != 1 {
		t.Errorf("anger is clamped to 1: %+v %v", in, err)
	}
	if _, err := l.Classify(context.Background(), "乱答"); err == nil {
		t.Error("a reply without JSON was accepted")
	}
	if !strings.Contains(f.requests()[0].system(), `"human"`) {
		t.Error("the classification prompt does not ask for JSON")
	}
}
