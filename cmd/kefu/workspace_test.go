package main

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kefu-dev/kefu/config"
	"github.com/kefu-dev/kefu/engine"
)

// Tests of what the agent workspace and the chat widget use besides the
// conversation itself: ratings, the bot's hand-over summary and
// knowledge-base search (canned responses: canned_test.go).

type ratingResp struct {
	Rating *engine.Rating `json:"rating"`
	errorResp
}

// rate posts a rating over REST and returns the status and the answer.
func (s *testServer) rate(t testing.TB, token, conv string, body any) (int, ratingResp) {
	t.Helper()
	var r ratingResp
	code := s.api(t, "POST", "/v1/conversations/"+conv+"/rating", token, body, &r)
	return code, r
}

// list returns what GET /v1/conversations?<query> lists (200 of them at
// most).
func (s *testServer) list(t testing.TB, token, query string) []engine.Conversation {
	t.Helper()
	var page struct{ Conversations []engine.Conversation }
	if code := s.api(t, "GET", "/v1/conversations?limit=200&"+query, token, nil, &page); code != 200 {
		t.Fatalf("list conversations by %s: status %d", query, code)
	}
	return page.Conversations
}

// lists reports whether GET /v1/conversations?<query> lists conv.
func (s *testServer) lists(t testing.TB, token, query, conv string) bool {
	t.Helper()
	return slices.ContainsFunc(s.list(t, token, query), func(c engine.Conversation) bool { return c.ID == conv })
}

// listed polls GET /v1/conversations?<query> until it lists conv and ok
// holds for it, and returns it: the store is written behind the actor's
// answers.
func (s *testServer) listed(t testing.TB, token, query, conv string, ok func(engine.Conversation) bool) engine.Conversation {
	t.Helper()
	var got engine.Conversation
	eventually(t, "conversation "+conv+" as listed by "+query, func() bool {
		page := s.list(t, token, query)
		i := slices.IndexFunc(page, func(c engine.Conversation) bool { return c.ID == conv })
		if i >= 0 {
			got = page[i]
		}
		return i >= 0 && ok(got)
	})
	return got
}

// ratedAs returns a check that a conversation's rating is want.
func ratedAs(want *engine.Rating) func(engine.Conversation) bool {
	return func(c engine.Conversation) bool {
		return (c.Rating == nil && want == nil) || (c.Rating != nil && want != nil && *c.Rating == *want)
	}
}

// lastEvent polls a conversation's events until there is one of type typ,
// and returns the latest of them.
func (s *testServer) lastEvent(t testing.TB, token, conv string, typ engine.EventType) engine.ConvEvent {
	t.Helper()
	var found engine.ConvEvent
	eventually(t, "a "+string(typ)+" event of "+conv, func() bool {
		for _, e := range s.events(t, token, conv) {
			if e.Type == typ {
				found = e
			}
		}
		return found.Type == typ
	})
	return found
}

// TestRating: the customer rates their closed conversation once per
// closure, over WebSocket and REST; staff and other customers may not;
// the owner sees it live; the rating shows in listings, the customer panel
// and operation answers, is an event, and survives a restart. The server's
// clock stands still, so a closure, its rating, the reopening and the next
// closure all fall in one millisecond.
func TestRating(t *testing.T) { forEachStore(t, testRating) }

func testRating(t *testing.T, cfg config.Config) {
	clock := engine.NewManualClock(time.Now())
	s := startServerClock(t, cfg, clock)
	admin, _ := s.staffToken(t)
	alice := s.createAgent(t, admin, "alice", engine.StaffAgent, 3, nil)
	aliceWS := s.online(t, alice)
	cust := s.newCustomer(t)
	other, _ := s.visitor(t)
	conv := cust.conv

	cust.ws.send(map[string]any{"type": "escalate", "conv": conv})
	if f := cust.ws.state(conv, engine.StateAssigned); f.AgentID != alice.id {
		t.Fatalf("assigned to %q, want alice: %s", f.AgentID, f.Raw)
	}
	aliceWS.resumeAll(conv, 0, 50)
	if f := cust.ws.opError("r0", map[string]any{"type": "rate", "conv": conv, "score": 5}); f.Code != string(engine.CodeInvalidState) {
		t.Fatalf("rating an open conversation: %s", f.Raw)
	}
	aliceWS.op("c1", map[string]any{"type": "close", "conv": conv, "reason": "resolved"})

	// Who may rate, and what.
	for _, tc := range []struct {
		name, token string
		body        any
		status      int
		code        engine.Code
	}{
		{"the owner", alice.token, map[string]any{"score": 5}, 403, engine.CodeForbidden},
		{"an admin", admin, map[string]any{"score": 5}, 403, engine.CodeForbidden},
		{"another customer", other, map[string]any{"score": 1}, 404, engine.CodeNotFound},
		{"no score", cust.token, map[string]any{"comment": "x"}, 400, engine.CodeInvalidField},
		{"score 6", cust.token, map[string]any{"score": 6}, 400, engine.CodeInvalidField},
		{"score as text", cust.token, map[string]any{"score": "5"}, 400, engine.CodeInvalidField},
		{"a fractional score", cust.token, map[string]any{"score": 4.5}, 400, engine.CodeInvalidField},
		{"a long comment", cust.token, map[string]any{"score": 3, "comment": strings.Repeat("长", engine.MaxRatingComment+1)}, 413, engine.CodeBodyTooLarge},
	} {
		if code, r := s.rate(t, tc.token, conv, tc.body); code != tc.status || r.Error.Code != string(tc.code) {
			t.Errorf("%s: %d %+v, want %d %s", tc.name, code, r, tc.status, tc.code)
		}
	}
	if code, _ := s.rate(t, "", conv, map[string]any{"score": 5}); code != 401 {
		t.Errorf("without a token: %d", code)
	}
	if f := cust.ws.opError("r1", map[string]any{"type": "rate", "conv": conv, "score": 0}); f.Code != string(engine.CodeInvalidField) {
		t.Fatalf("score 0 over the socket: %s", f.Raw)
	}

	// The customer rates over the socket; the owner sees it live.
	done := cust.ws.op("r2", map[string]any{"type": "rate", "conv": conv, "score": 4, "comment": "  客服很耐心，谢谢！ \n"})
	first := done.Rating
	if done.Op != "rate" || done.State != engine.StateClosed || first == nil || first.Score != 4 || first.Comment != "客服很耐心，谢谢！" ||
		first.At.UnixMilli() != clock.Now().UnixMilli() {
		t.Fatalf("done: %s", done.Raw)
	}
	var rated, notice frame // in whichever order they come
	aliceWS.next(func(f frame) bool {
		switch {
		case f.Type == "rated" && f.Conv == conv:
			rated = f
		case f.Type == "notice" && f.Kind == "rated":
			notice = f
		}
		return rated.Type != "" && notice.Type != ""
	}, "the rated push and notice")
	if rated.Rating == nil || *rated.Rating != *first {
		t.Fatalf("rated push %s, want %+v", rated.Raw, first)
	}
	if notice.Conv != conv || !strings.Contains(notice.Text, "4 分") || !strings.Contains(notice.Text, first.Comment) {
		t.Fatalf("notice: %s", notice.Raw)
	}
	if code, r := s.rate(t, cust.token, conv, map[string]any{"score": 1}); code != 409 || r.Error.Code != string(engine.CodeInvalidState) || r.Error.Message != "already rated" {
		t.Fatalf("a second rating of the closure: %d %+v", code, r)
	}
	if f := cust.ws.opError("r3", map[string]any{"type": "rate", "conv": conv, "score": 2}); f.Code != string(engine.CodeInvalidState) {
		t.Fatalf("a second rating over the socket: %s", f.Raw)
	}

	// It shows wherever the conversation does, and is an event.
	s.listed(t, admin, "state=CLOSED", conv, ratedAs(first))
	var panel struct{ Conversations []engine.Conversation }
	if code := s.api(t, "GET", "/v1/customers/"+cust.id, alice.token, nil, &panel); code != 200 || len(panel.Conversations) != 1 ||
		!ratedAs(first)(panel.Conversations[0]) {
		t.Fatalf("customer panel: %d %+v", code, panel)
	}
	if last := s.lastEvent(t, admin, conv, engine.EventRated); last.Score != 4 || last.Note != first.Comment ||
		last.By != (engine.Party{Role: engine.RoleUser, ID: cust.id}) || last.From != engine.StateClosed || last.To != engine.StateClosed {
		t.Fatalf("last event: %+v", last)
	}

	// Reopened, it cannot be rated; closed again, it can, and the new
	// rating replaces the old. Until then the old one shows, in the answer
	// to the operation too.
	cust.ws.op("o1", map[string]any{"type": "reopen", "conv": conv})
	cust.ws.state(conv, engine.StateAssigned)
	if code, r := s.rate(t, cust.token, conv, map[string]any{"score": 5}); code != 409 || r.Error.Code != string(engine.CodeInvalidState) {
		t.Fatalf("rating a reopened conversation: %d %+v", code, r)
	}
	var closed engine.Conversation
	if code := s.api(t, "POST", "/v1/conversations/"+conv+"/close", alice.token, map[string]any{"reason": "resolved"}, &closed); code != 200 ||
		closed.State != engine.StateClosed || closed.Rating == nil || *closed.Rating != *first {
		t.Fatalf("close again: %d %+v", code, closed)
	}
	code, r := s.rate(t, cust.token, conv, map[string]any{"score": 2})
	if code != 201 || r.Rating == nil || r.Rating.Score != 2 || r.Rating.Comment != "" || !r.Rating.At.After(first.At) {
		t.Fatalf("rating the second closure: %d %+v", code, r)
	}
	second := *r.Rating
	// The listing may show the rating before its event is stored: a state
	// write takes the header as it is when its turn comes, so the closure's
	// write, if it was queued, carried the rating already. The rated event
	// may then still be queued; the stop below stores it before the store
	// closes (TestShutdownStoresEveryChange).
	s.listed(t, alice.token, "mine=true", conv, ratedAs(&second))
	if c := s.listed(t, admin, "state=BOT", s.newConversation(t, other), func(engine.Conversation) bool { return true }); c.Rating != nil {
		t.Fatalf("an unrated conversation has a rating: %+v", c.Rating)
	}

	// Stored: after a restart it is still there, and still this closure's.
	s.stop(t)
	s = startServerClock(t, cfg, clock)
	s.listed(t, admin, "state=CLOSED", conv, ratedAs(&second))
	if code, r := s.rate(t, cust.token, conv, map[string]any{"score": 5}); code != 409 || r.Error.Message != "already rated" {
		t.Fatalf("rating again after a restart: %d %+v", code, r)
	}
	var scores []int
	for _, e := range s.events(t, admin, conv) {
		if e.Type == engine.EventRated {
			scores = append(scores, e.Score)
		}
	}
	if !slices.Equal(scores, []int{4, 2}) {
		t.Fatalf("rated events' scores %v, want [4 2]", scores)
	}
}

// TestHandoverSummary: when the bot hands over, or the customer asks for a
// person, the escalated event's note and the state push carry the summary
// for the agent: the reason, the turns the bot answered and the customer's
// latest three questions, each cut to 60 characters.
func TestHandoverSummary(t *testing.T) {
	s, token, conv := botConfig(t)
	admin, _ := s.staffToken(t)
	staff := dial(t, s, "/v1/ws/agent", nil)
	staff.hello(admin)
	user := dial(t, s, "/v1/ws/user", nil)
	user.hello(token)
	user.resumeAll(conv, 0, 50)
	staff.resumeAll(conv, 0, 50)
	ask := func(conv, id, text string) {
		t.Helper()
		user.sendText(conv, id, text)
		user.ack(id)
		user.next(func(f frame) bool { return isBot(f) && f.Conv == conv }, "the bot's reply to "+id)
	}

	// The bot hands over when asked for a person.
	ask(conv, "q1", "下单后怎么取消订单？")
	ask(conv, "q2", "运费怎么收？满多少包邮？")
	ask(conv, "q3", "转人工")
	want := "转人工原因：客户要求转人工\n机器人已接待：3 轮\n客户最近的问题：\n1. 下单后怎么取消订单？\n2. 运费怎么收？满多少包邮？\n3. 转人工"
	for who, c := range map[string]*wsClient{"customer": user, "staff": staff} {
		if st := c.state(conv, engine.StateQueued); st.Reason != "human_request" || st.Summary != want {
			t.Fatalf("state pushed to the %s: %s", who, st.Raw)
		}
	}
	if esc := s.lastEvent(t, admin, conv, engine.EventEscalated); esc.Note != want || esc.By.Role != engine.RoleBot {
		t.Fatalf("escalated event: %+v", esc)
	}

	// The customer presses "talk to a person": only the latest three
	// questions show, a long one cut.
	conv2 := s.newConversation(t, token)
	user.resumeAll(conv2, 0, 50)
	staff.resumeAll(conv2, 0, 50)
	long := "请问一下，" + strings.Repeat("我上周买的那件羊毛大衣还没有发货，", 4) + "什么时候能发？"
	ask(conv2, "p1", "下单后怎么取消订单？")
	ask(conv2, "p2", "退款多久能到账？")
	ask(conv2, "p3", "可以分期付款吗？")
	ask(conv2, "p4", long)
	user.send(map[string]any{"type": "escalate", "conv": conv2})
	st := staff.state(conv2, engine.StateQueued)
	lines := strings.Split(st.Summary, "\n")
	if st.Reason != "user_request" || len(lines) != 6 || lines[0] != "转人工原因：客户点击了“转人工”" || lines[1] != "机器人已接待：4 轮" ||
		lines[3] != "1. 退款多久能到账？" || lines[4] != "2. 可以分期付款吗？" {
		t.Fatalf("summary of the customer's escalation: %q", st.Summary)
	}
	if cut := strings.TrimPrefix(lines[5], "3. "); utf8.RuneCountInString(cut) != 60 || !strings.HasSuffix(cut, "…") || !strings.HasPrefix(long, strings.TrimSuffix(cut, "…")) {
		t.Fatalf("the long question, cut: %q", lines[5])
	}
	if esc := s.lastEvent(t, admin, conv2, engine.EventEscalated); esc.Note != st.Summary || esc.Reason != "user_request" {
		t.Fatalf("escalated event: %+v", esc)
	}
}

type searchResp struct {
	Query       string `json:"query"`
	Suggestions []struct {
		EntryID    string  `json:"entry_id"`
		Question   string  `json:"question"`
		Answer     string  `json:"answer"`
		Confidence float64 `json:"confidence"`
	} `json:"suggestions"`
	errorResp
}

func (s *testServer) kbSearch(t testing.TB, token, query string) (int, searchResp) {
	t.Helper()
	var r searchResp
	code := s.api(t, "GET", "/v1/kb/search?"+query, token, nil, &r)
	return code, r
}

// TestKBSearch: staff search the knowledge base with a free query and get
// what agent assist would give for a customer message with that text;
// the query and limit are checked; nothing found is an empty list.
func TestKBSearch(t *testing.T) {
	s := startServer(t, testConfig(t.TempDir()))
	admin, _ := s.staffToken(t)
	agent := s.createAgent(t, admin, "alice", engine.StaffAgent, 3, nil)

	q := "下单后怎么取消订单？"
	code, r := s.kbSearch(t, agent.token, "q="+url.QueryEscape("  "+q+" "))
	if code != 200 || r.Query != q || len(r.Suggestions) == 0 || len(r.Suggestions) > 5 || !strings.Contains(r.Suggestions[0].Question, "取消") ||
		r.Suggestions[0].EntryID == "" || r.Suggestions[0].Answer == "" || r.Suggestions[0].Confidence <= 0 {
		t.Fatalf("search: %d %+v", code, r)
	}
	if code, one := s.kbSearch(t, agent.token, "limit=1&q="+url.QueryEscape(q)); code != 200 || len(one.Suggestions) != 1 || one.Suggestions[0] != r.Suggestions[0] {
		t.Fatalf("limit 1: %d %+v", code, one)
	}

	// The same retrieval as assist for a customer message with that text.
	cust := s.newCustomer(t)
	cust.ws.sendText(cust.conv, "m1", q)
	cust.ws.ack("m1")
	var assist searchResp
	if code := s.api(t, "GET", "/v1/conversations/"+cust.conv+"/assist?limit=5", admin, nil, &assist); code != 200 {
		t.Fatalf("assist: %d", code)
	}
	if code, five := s.kbSearch(t, admin, "limit=5&q="+url.QueryEscape(q)); code != 200 || !slices.Equal(five.Suggestions, assist.Suggestions) {
		t.Fatalf("search %+v, assist %+v", five.Suggestions, assist.Suggestions)
	}

	var raw map[string]json.RawMessage
	if code := s.api(t, "GET", "/v1/kb/search?q=zzqqxxkk", admin, nil, &raw); code != 200 || string(raw["suggestions"]) != "[]" {
		t.Fatalf("nothing found: %d %s", code, raw["suggestions"])
	}
	for query, want := range map[string]engine.Code{
		"":                           engine.CodeMissingField,
		"q=" + url.QueryEscape("  "): engine.CodeMissingField,
		"q=" + url.QueryEscape(strings.Repeat("字", 201)): engine.CodeInvalidField,
		"q=a&limit=0":  engine.CodeInvalidField,
		"q=a&limit=21": engine.CodeInvalidField,
		"q=a&limit=x":  engine.CodeInvalidField,
		"q=" + url.QueryEscape(strings.Repeat("字", 199)+"\xff"): engine.CodeInvalidUTF8,
	} {
		if code, r := s.kbSearch(t, admin, query); code != 400 || r.Error.Code != string(want) {
			t.Errorf("%.40q: %d %+v, want %s", query, code, r, want)
		}
	}
	if code, _ := s.kbSearch(t, admin, "q="+url.QueryEscape(strings.Repeat("字", 200))); code != 200 {
		t.Errorf("a query of 200 characters: %d", code)
	}
	if code, _ := s.kbSearch(t, cust.token, "q=a"); code != 401 {
		t.Errorf("a customer: %d", code)
	}
}
