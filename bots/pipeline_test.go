package bots

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/kb"
)

var (
	demoOnce sync.Once
	demoIdx  *kb.Index
	demoErr  error
)

// demo returns the index of the demo knowledge base (kb/testdata).
func demo(t testing.TB) *kb.Index {
	t.Helper()
	demoOnce.Do(func() {
		f, err := os.Open("../kb/testdata/faq-demo.json")
		if err != nil {
			demoErr = err
			return
		}
		defer f.Close()
		entries, err := kb.ParseJSON(f)
		if err != nil {
			demoErr = err
			return
		}
		demoIdx, demoErr = kb.Build(entries, kb.IndexConfig{})
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoIdx
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestFAQDecide(t *testing.T) {
	cand := func(id string, conf float64) kb.Candidate {
		return kb.Candidate{EntryID: id, Question: "问题" + id, Answer: "答案" + id, Confidence: conf}
	}
	f := FAQ{High: 0.6, Medium: 0.3}
	for _, tc := range []struct {
		name  string
		cands []kb.Candidate
		kind  ReplyKind
		sugg  []string
	}{
		{"none", nil, KindFallback, nil},
		{"high", []kb.Candidate{cand("a", 0.9), cand("b", 0.5)}, KindAnswer, nil},
		{"at high", []kb.Candidate{cand("a", 0.6)}, KindAnswer, nil},
		{"medium", []kb.Candidate{cand("a", 0.5), cand("b", 0.4), cand("c", 0.2), cand("d", 0.16)}, KindSuggest, []string{"a", "b", "c"}},
		{"medium drops weak runners-up", []kb.Candidate{cand("a", 0.35), cand("b", 0.1)}, KindSuggest, []string{"a"}},
		{"low", []kb.Candidate{cand("a", 0.29)}, KindFallback, nil},
	} {
		r := f.Decide(tc.cands, Texts{})
		if r.Kind != tc.kind || r.Text == "" || r.Stage != StageFAQ {
			t.Errorf("%s: %+v", tc.name, r)
			continue
		}
		var ids []string
		for _, s := range r.Suggestions {
			ids = append(ids, s.EntryID)
			if !strings.Contains(r.Text, s.Question) {
				t.Errorf("%s: text %q lacks suggestion %q", tc.name, r.Text, s.Question)
			}
		}
		if strings.Join(ids, ",") != strings.Join(tc.sugg, ",") {
			t.Errorf("%s: suggestions %v, want %v", tc.name, ids, tc.sugg)
		}
		if tc.kind == KindAnswer && (r.Text != "答案a" || r.EntryID != "a" || r.Reason != ReasonHighConfidence) {
			t.Errorf("%s: %+v", tc.name, r)
		}
	}
	two := FAQ{High: 0.6, Medium: 0.3, MaxSuggestions: 2}
	if r := two.Decide([]kb.Candidate{cand("a", 0.5), cand("b", 0.5), cand("c", 0.5)}, Texts{}); len(r.Suggestions) != 2 {
		t.Errorf("MaxSuggestions ignored: %+v", r.Suggestions)
	}
}

func TestDecideFailedTurns(t *testing.T) {
	fallback := Reply{Kind: KindFallback, Text: "x", Reason: ReasonLowConfidence}
	answer := Reply{Kind: KindAnswer, Text: "y"}
	for _, tc := range []struct {
		max, failed int
		in          Reply
		escalate    bool
	}{
		{0, 0, fallback, false}, {0, 1, fallback, false}, {0, 2, fallback, true}, // default 3: the third miss
		{0, 5, answer, false},
		{1, 0, fallback, true},
		{2, 0, fallback, false}, {2, 1, fallback, true},
		{-1, 100, fallback, false},
		{0, 2, Reply{Kind: KindSuggest, Text: "z"}, true},
	} {
		r := Decide{MaxFailedTurns: tc.max}.Apply(Turn{Text: "q", FailedTurns: tc.failed}, tc.in, Texts{})
		if got := r.Kind == KindEscalate; got != tc.escalate {
			t.Errorf("max %d, failed %d, %s: escalate %v", tc.max, tc.failed, tc.in.Kind, got)
		}
		if tc.escalate && (r.Reason != ReasonFailedTurns || r.Text != DefaultTexts.EscalateFailed || r.Stage != StageDecide) {
			t.Errorf("escalation %+v", r)
		}
	}
}

func TestPipelineFAQOnly(t *testing.T) {
	p := New(Config{Logger: quiet()})
	idx := demo(t)
	ctx := context.Background()
	for _, tc := range []struct {
		text   string
		kind   ReplyKind
		reason string
		entry  string
	}{
		{"优惠券怎么使用？", KindAnswer, ReasonHighConfidence, "faq-033"},
		{"退货的运费谁来出", KindAnswer, ReasonHighConfidence, "faq-023"},
		{"转人工", KindEscalate, ReasonHumanRequest, ""},
		{"你们这什么垃圾平台", KindEscalate, ReasonAnger, ""},
		{"帮我查一下订单2024061500987到哪了", KindFallback, ReasonNeedsLookup, ""},
		{"帮我写一首诗", KindFallback, ReasonLowConfidence, ""},
		{"   ", KindFallback, ReasonEmpty, ""},
	} {
		r := p.Respond(ctx, idx, Turn{Tenant: "demo", Text: tc.text}, nil)
		if r.Kind != tc.kind || r.Reason != tc.reason || r.EntryID != tc.entry || r.Text == "" {
			t.Errorf("%q: %s/%s/%s %q", tc.text, r.Kind, r.Reason, r.EntryID, r.Text)
		}
	}
	// The fallback is honest and offers a person; escalations say so.
	if r := p.Respond(ctx, idx, Turn{Text: "帮我写一首诗"}, nil); r.Text != DefaultTexts.Fallback || !strings.Contains(r.Text, "人工") {
		t.Errorf("fallback text %q", r.Text)
	}
	if r := p.Respond(ctx, idx, Turn{Text: "垃圾"}, nil); r.Text != DefaultTexts.EscalateAnger {
		t.Errorf("anger text %q", r.Text)
	}
	// A nil index answers nothing but still replies.
	if r := p.Respond(ctx, nil, Turn{Text: "退货运费"}, nil); r.Kind != KindFallback || r.Text == "" {
		t.Errorf("nil index: %+v", r)
	}
	// The third consecutive miss escalates.
	if r := p.Respond(ctx, idx, Turn{Text: "帮我写一首诗", FailedTurns: 2}, nil); r.Kind != KindEscalate || r.Reason != ReasonFailedTurns {
		t.Errorf("failed turns: %+v", r)
	}
}

func TestPipelineTextsAreConfigurable(t *testing.T) {
	p := New(Config{Logger: quiet(), Texts: Texts{Fallback: "不会", Escalate: "转了"}})
	if r := p.Respond(context.Background(), demo(t), Turn{Text: "帮我写一首诗"}, nil); r.Text != "不会" {
		t.Errorf("fallback %q", r.Text)
	}
	if r := p.Respond(context.Background(), demo(t), Turn{Text: "转人工"}, nil); r.Text != "转了" {
		t.Errorf("escalate %q", r.Text)
	}
	if r := p.Respond(context.Background(), demo(t), Turn{Text: "垃圾"}, nil); r.Text != DefaultTexts.EscalateAnger {
		t.Errorf("an unset text keeps its default: %q", r.Text)
	}
}

// lowQuery is in the knowledge base's domain but too far from any entry
// for a FAQ answer, so it goes to the LLM.
const lowQuery = "下单的是A款 来的是B款？？"

func TestPipelineLLM(t *testing.T) {
	idx := demo(t)
	ctx := context.Background()
	// The premise: FAQ-only, this question gets the low-confidence fallback.
	if r := New(Config{Logger: quiet()}).Respond(ctx, idx, Turn{Text: lowQuery}, nil); r.Reason != ReasonLowConfidence {
		t.Fatalf("premise: FAQ-only reply %+v", r)
	}
	const answer = "收到的商品与下单的款式不一致属于发错货，请在订单详情申请售后并上传照片，我们会为您换货。"
	var mode string
	var mu sync.Mutex
	f := newFakeOpenAI(t, func(req chatRequest) fakeReply {
		mu.Lock()
		defer mu.Unlock()
		switch mode {
		case "declined":
			return fakeReply{Chunks: []string{"[[refs:none]]", "\n抱歉"}}
		case "500":
			return fakeReply{Status: 500, ErrType: "server_error"}
		case "slow":
			return fakeReply{Delay: 10 * time.Second}
		case "stall":
			return fakeReply{Chunks: append([]string{"[[refs:faq-027]]\n"}, split(answer, 4)...), ChunkDelay: 2 * time.Second}
		}
		return fakeReply{Chunks: append([]string{"[[refs:faq-027]]\n"}, split(answer, 4)...)}
	})
	set := func(m string) { mu.Lock(); mode = m; mu.Unlock() }
	l := newTestLLM(t, f, 300*time.Millisecond)
	p := New(Config{LLM: l, Logger: quiet()})

	// Answered from the retrieved entries, streamed.
	var got pieces
	r := p.Respond(ctx, idx, Turn{Text: lowQuery}, got.add)
	if r.Kind != KindAnswer || r.Stage != StageLLM || r.Reason != ReasonLLMAnswer || r.Text != answer ||
		r.EntryID != "faq-027" || strings.Join(r.UsedEntries, ",") != "faq-027" {
		t.Fatalf("LLM reply %+v", r)
	}
	if got.text() != answer || got.n() < 2 {
		t.Errorf("streamed %q in %d pieces", got.text(), got.n())
	}
	if sys := f.requests()[0].system(); !strings.Contains(sys, "[faq-027]") {
		t.Errorf("the LLM was not given the retrieved entries:\n%s", sys)
	}

	// A high-confidence FAQ answer never calls the LLM, nor does a request
	// for a person.
	before := len(f.requests())
	p.Respond(ctx, idx, Turn{Text: "优惠券怎么使用？"}, nil)
	p.Respond(ctx, idx, Turn{Text: "转人工"}, nil)
	if len(f.requests()) != before {
		t.Error("the LLM was called for a question the FAQ or the rules decided")
	}

	// Declines, errors and timeouts fall back to the FAQ-only reply.
	for _, m := range []struct{ mode, reason string }{
		{"declined", ReasonLLMDeclined}, {"500", ReasonLLMError}, {"slow", ReasonLLMError}, {"stall", ReasonLLMError},
	} {
		set(m.mode)
		start := time.Now()
		r := p.Respond(ctx, idx, Turn{Text: lowQuery}, func(string) {})
		if r.Kind != KindFallback || r.Reason != m.reason || r.Text != DefaultTexts.Fallback || r.Stage != StageLLM {
			t.Errorf("%s: %+v", m.mode, r)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s: took %v with a 300ms timeout", m.mode, took)
		}
	}

	// Cancelling the context cancels the call and still yields a reply.
	set("slow")
	p = New(Config{LLM: newTestLLM(t, f, time.Minute), Logger: quiet()})
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	r = p.Respond(cctx, idx, Turn{Text: lowQuery}, nil)
	if r.Kind != KindFallback || r.Text == "" || time.Since(start) > 5*time.Second {
		t.Errorf("cancelled: %+v after %v", r, time.Since(start))
	}
}

type fakeClassifier struct {
	in    Intent
	err   error
	calls int
}

func (c *fakeClassifier) Classify(ctx context.Context, text string) (Intent, error) {
	c.calls++
	return c.in, c.err
}

func TestPipelineClassifier(t *testing.T) {
	idx := demo(t)
	ctx := context.Background()
	c := &fakeClassifier{in: Intent{Human: true}}
	p := New(Config{Rules: Rules{Classifier: c}, Logger: quiet()})
	if r := p.Respond(ctx, idx, Turn{Text: "这事你们看着办吧"}, nil); r.Kind != KindEscalate || r.Reason != ReasonClassifier {
		t.Errorf("classifier said human: %+v", r)
	}
	// A confident answer to a calm question is not sent to the classifier.
	calls := c.calls
	if r := p.Respond(ctx, idx, Turn{Text: "优惠券怎么使用？"}, nil); r.Kind != KindAnswer || c.calls != calls {
		t.Errorf("classifier consulted for a calm FAQ question: %+v", r)
	}
	c.in = Intent{Anger: 0.9}
	strict := New(Config{Rules: Rules{Classifier: c, AngerThreshold: 0.8}, Logger: quiet()})
	if r := strict.Respond(ctx, idx, Turn{Text: "这事你们看着办吧"}, nil); r.Kind != KindEscalate {
		t.Errorf("classifier said angry: %+v", r)
	}
	// A failing classifier changes nothing.
	c.err, c.in = errors.New("down"), Intent{Human: true}
	if r := p.Respond(ctx, idx, Turn{Text: "这事你们看着办吧"}, nil); r.Kind == KindEscalate {
		t.Errorf("a failed classifier escalated: %+v", r)
	}
}

// TestRespondNeverEmpty: whatever the input, the reply has a kind and text.
func TestRespondNeverEmpty(t *testing.T) {
	p := New(Config{Logger: quiet()})
	inputs := append(append([]string{"", " ", "\x00", "😀😀", strings.Repeat("啊", 5000), "<script>"}, humanRequests...), notEscalated...)
	for _, in := range inputs {
		for _, idx := range []*kb.Index{demo(t), nil} {
			r := p.Respond(context.Background(), idx, Turn{Text: in}, nil)
			if r.Text == "" || r.Kind == "" || r.Stage == "" || r.Reason == "" {
				t.Errorf("%q: %+v", in, r)
			}
		}
	}
}

func FuzzRespond(f *testing.F) {
	for _, s := range []string{"退货运费谁出", "转人工", "帮我查一下订单2024061500987", "垃圾"} {
		f.Add(s, 0)
	}
	p := New(Config{Logger: quiet()})
	idx := demo(f)
	f.Fuzz(func(t *testing.T, s string, failed int) {
		r := p.Respond(context.Background(), idx, Turn{Text: s, FailedTurns: failed % 10}, nil)
		if r.Text == "" || r.Kind == "" {
			t.Fatalf("%q: empty reply %+v", s, r)
		}
		if r.Confidence < 0 || r.Confidence > 1 {
			t.Fatalf("%q: confidence %v", s, r.Confidence)
		}
	})
}

func TestAssist(t *testing.T) {
	got := Assist(demo(t), "客户问：退货寄回去的运费谁出？", 0)
	if len(got) != 3 || got[0].EntryID != "faq-023" {
		t.Errorf("assist %+v", got)
	}
	if Assist(nil, "x", 3) != nil {
		t.Error("assist on a nil index")
	}
}

// BenchmarkRespondFAQ measures the FAQ-only path over a mix of questions,
// requests for a person and unanswerable messages.
func BenchmarkRespondFAQ(b *testing.B) {
	p := New(Config{Logger: quiet()})
	idx := demo(b)
	msgs := []string{
		"刚下的单 不想要了 咋取消啊", "退款一般几天到账啊 我是信用卡付的", "优惠卷咋用啊", "转人工",
		"快递员态度太差了 在哪可以投诉他", "今天天气怎么样", "买个扫地机器人能分期不 想分6期",
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.Respond(ctx, idx, Turn{Text: msgs[i%len(msgs)]}, nil)
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/op")
}
