package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/kefu-dev/kefu/config"
	"github.com/kefu-dev/kefu/engine"
)

// resumeConfig keeps the smallest in-memory window a conversation may have
// (conversation.recent = 10), so deep pages are read from the store and the
// newest ones from memory, and lifts the frame rate limit so the setup is
// not throttled.
func resumeConfig(t *testing.T) config.Config {
	cfg := testConfig(t.TempDir())
	cfg.Conversation.Recent = 10
	cfg.WS.RatePerSec = 10000
	cfg.WS.Burst = 10000
	return cfg
}

// fill sends n text messages to conv, at most window of them awaiting their
// ack at a time, and returns the client_msg_id stored under each seq. The
// seqs must continue the conversation from first without a gap.
func fill(t testing.TB, c *wsClient, conv, prefix string, first int64, n, window int, text func(i int) string) map[int64]string {
	t.Helper()
	bySeq := make(map[int64]string, n)
	for i := 0; i < n; i += window {
		end := min(i+window, n)
		for j := i; j < end; j++ {
			c.sendText(conv, fmt.Sprintf("%s-%d", prefix, j), text(j))
		}
		for j := i; j < end; j++ {
			id := fmt.Sprintf("%s-%d", prefix, j)
			ack := c.ack(id)
			if ack.Seq < first || ack.Seq >= first+int64(n) || bySeq[ack.Seq] != "" || ack.Dup {
				t.Fatalf("fill: %s acked as %s after %d others", id, ack.Raw, len(bySeq))
			}
			bySeq[ack.Seq] = id
		}
	}
	return bySeq
}

// textOf is the text of the i-th fill message; the client_msg_id encodes i.
func textOf(i int) string { return fmt.Sprintf("第 %d 条消息", i) }

// resumePage sends one resume request and returns its answer: the history
// page or the error frame echoing id. Other frames are skipped.
func (c *wsClient) resumePage(id, conv string, lastSeq int64, limit int) frame {
	c.t.Helper()
	req := map[string]any{"type": "resume", "id": id, "conv": conv, "last_seq": lastSeq}
	if limit != 0 {
		req["limit"] = limit
	}
	c.send(req)
	return c.next(func(f frame) bool { return (f.Type == "history" || f.Type == "error") && f.ID == id }, "answer to "+id)
}

// take returns the next frame of any type, or fails after 15 s.
func (c *wsClient) take() frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-time.After(15 * time.Second):
		c.t.Fatal("no frame within 15s")
		return frame{}
	}
}

// checkSeqs fails unless got is exactly from, from+1, ..., to.
func checkSeqs(t testing.TB, what string, got []int64, from, to int64) {
	t.Helper()
	want := make([]int64, 0, max(0, to-from+1))
	for s := from; s <= to; s++ {
		want = append(want, s)
	}
	if slices.Equal(got, want) {
		return
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("%s: got %d seqs, want %d..%d; first difference at index %d: seq %d, want %d (around it: %v)",
				what, len(got), from, to, i, got[i], want[i], got[max(0, i-3):min(len(got), i+4)])
		}
	}
	t.Fatalf("%s: got %d seqs (%v...), want %d..%d", what, len(got), got[:min(len(got), 5)], from, to)
}

// TestResume pages a 120-message conversation over a real WebSocket and
// over REST. With conversation.recent = 10 only the newest 10-19 messages
// (here 111..120) are in memory: the cases below are served from the store,
// from memory, and across the boundary.
func TestResume(t *testing.T) {
	s := startServer(t, resumeConfig(t))
	const total = 120
	owner, ownerID := s.visitor(t)
	conv := s.newConversation(t, owner)
	writer := dial(t, s, "/v1/ws/user", nil)
	writer.hello(owner)
	stored := fill(t, writer, conv, "m", 1, total, 10, func(i int) string { return textOf(i) })

	// checkMsg checks one paged message against what was sent.
	checkMsg := func(t *testing.T, m engine.Message) {
		t.Helper()
		id := stored[m.Seq]
		var i int
		if _, err := fmt.Sscanf(id, "m-%d", &i); err != nil {
			t.Fatalf("seq %d was never acked (client_msg_id %q)", m.Seq, m.ClientMsgID)
		}
		if m.ClientMsgID != id || m.Conv != conv || m.Body.Type != engine.BodyText || m.Body.Text != textOf(i) ||
			m.From.ID != ownerID || m.From.Role != engine.RoleUser {
			t.Fatalf("seq %d is %+v, want client_msg_id %q text %q from %s", m.Seq, m, id, textOf(i), ownerID)
		}
	}

	// A second device of the same customer reads the history.
	reader := dial(t, s, "/v1/ws/user", nil)
	reader.hello(owner)

	t.Run("pages", func(t *testing.T) {
		cases := []struct {
			name    string
			lastSeq int64
			limit   int   // 0: not sent, the default of 50
			pages   []int // messages on each page; more=true on all but the last
		}{
			{"middle from the store", 37, 50, []int{50, 33}},
			{"middle in one page", 37, 200, []int{83}},
			{"whole history in pages of 25", 0, 25, []int{25, 25, 25, 25, 20}},
			{"default page size", 0, 0, []int{50, 50, 20}},
			{"inside the memory window", 115, 3, []int{3, 2}},
			{"across the store/memory boundary", 100, 7, []int{7, 7, 6}},
			{"pages of one", 117, 1, []int{1, 1, 1}},
			{"one before the end", 119, 50, []int{1}},
			{"at the end", total, 50, []int{0}},
		}
		for n, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var got []int64
				last := tc.lastSeq
				for p := 0; ; p++ {
					if p >= len(tc.pages) {
						t.Fatalf("more than %d pages; so far seqs %v", len(tc.pages), got)
					}
					id := fmt.Sprintf("p%d-%d", n, p)
					f := reader.resumePage(id, conv, last, tc.limit)
					if f.Type != "history" {
						t.Fatalf("page %d refused: %s", p, f.Raw)
					}
					wantMore := p < len(tc.pages)-1
					if f.Conv != conv || f.LastSeq != total || len(f.Messages) != tc.pages[p] || f.More != wantMore {
						t.Fatalf("page %d: conv %q, %d messages, more=%v, last_seq %d; want %d messages, more=%v, last_seq %d",
							p, f.Conv, len(f.Messages), f.More, f.LastSeq, tc.pages[p], wantMore, total)
					}
					for _, m := range f.Messages {
						checkMsg(t, m)
						got = append(got, m.Seq)
					}
					if !f.More {
						break
					}
					last = f.Messages[len(f.Messages)-1].Seq
				}
				checkSeqs(t, "resumed", got, tc.lastSeq+1, total)
			})
		}
	})

	t.Run("errors", func(t *testing.T) {
		cases := []struct {
			name string
			req  map[string]any
			code engine.Code
		}{
			{"last_seq ahead of the server", map[string]any{"last_seq": total + 1}, engine.CodeSeqAhead},
			{"last_seq far ahead", map[string]any{"last_seq": int64(1) << 40}, engine.CodeSeqAhead},
			{"limit over 200", map[string]any{"last_seq": 0, "limit": 201}, engine.CodeInvalidField},
			{"negative limit", map[string]any{"limit": -1}, engine.CodeInvalidField},
			{"negative last_seq", map[string]any{"last_seq": -1}, engine.CodeInvalidField},
			{"last_seq as a string", map[string]any{"last_seq": "37"}, engine.CodeInvalidField},
			{"no such conversation", map[string]any{"conv": "no-such-conv"}, engine.CodeNotFound},
		}
		for n, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				id := fmt.Sprintf("e%d", n)
				req := map[string]any{"type": "resume", "id": id, "conv": conv}
				for k, v := range tc.req {
					req[k] = v
				}
				reader.send(req)
				f := reader.next(func(f frame) bool { return (f.Type == "history" || f.Type == "error") && f.ID == id }, "answer to "+id)
				if f.Type != "error" || f.Code != string(tc.code) {
					t.Fatalf("got %s, want an error %s echoing id %s", f.Raw, tc.code, id)
				}
				// The connection still serves a valid request.
				ok := reader.resumePage(id+"-ok", conv, total-2, 50)
				if ok.Type != "history" || len(ok.Messages) != 2 || ok.More {
					t.Fatalf("after the error, resume answered %s", ok.Raw)
				}
			})
		}
	})

	t.Run("REST history", func(t *testing.T) {
		staff, _ := s.staffToken(t)
		stranger, _ := s.visitor(t)
		strangerConv := s.newConversation(t, stranger)
		path := func(q string) string { return "/v1/conversations/" + conv + "/messages" + q }

		type page struct {
			historyResp
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		cases := []struct {
			name     string
			token    string
			query    string
			status   int
			code     engine.Code // for errors
			from, to int64       // the page's seqs, for 200
			more     bool
		}{
			{"customer, first page", owner, "?after_seq=0&limit=25", 200, "", 1, 25, true},
			{"customer, default page from the start", owner, "", 200, "", 1, 50, true},
			{"customer, middle to the end", owner, "?after_seq=37&limit=200", 200, "", 38, 120, false},
			{"customer, memory window", owner, "?after_seq=115&limit=3", 200, "", 116, 118, true},
			{"staff, across the boundary", staff, "?after_seq=105&limit=10", 200, "", 106, 115, true},
			{"staff, at the end", staff, "?after_seq=120", 200, "", 121, 120, false},
			{"ahead of the server", owner, "?after_seq=121", 400, engine.CodeSeqAhead, 0, 0, false},
			{"limit over 200", owner, "?limit=201", 400, engine.CodeInvalidField, 0, 0, false},
			{"limit 0", owner, "?limit=0", 400, engine.CodeInvalidField, 0, 0, false},
			{"negative after_seq", owner, "?after_seq=-1", 400, engine.CodeInvalidField, 0, 0, false},
			{"after_seq not a number", owner, "?after_seq=abc", 400, engine.CodeInvalidField, 0, 0, false},
			{"another customer's token", stranger, "?after_seq=0", 404, engine.CodeNotFound, 0, 0, false},
			{"no token", "", "", 401, engine.CodeUnauthenticated, 0, 0, false},
			{"garbage token", "not.a.token", "", 401, engine.CodeUnauthenticated, 0, 0, false},
			{"tampered signature", tamper(owner), "", 401, engine.CodeUnauthenticated, 0, 0, false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var p page
				status := s.api(t, "GET", path(tc.query), tc.token, nil, &p)
				if status != tc.status {
					t.Fatalf("status %d, want %d (error %q)", status, tc.status, p.Error.Code)
				}
				if tc.status != 200 {
					if p.Error.Code != string(tc.code) || len(p.Messages) != 0 {
						t.Fatalf("error code %q with %d messages, want %q and none", p.Error.Code, len(p.Messages), tc.code)
					}
					return
				}
				var got []int64
				for _, m := range p.Messages {
					checkMsg(t, m)
					got = append(got, m.Seq)
				}
				checkSeqs(t, "REST page", got, tc.from, tc.to)
				if p.More != tc.more || p.LastSeq != total {
					t.Fatalf("more=%v last_seq=%d, want more=%v last_seq=%d", p.More, p.LastSeq, tc.more, total)
				}
			})
		}

		// Paging the whole REST history in small pages gives what resume gives.
		var rest []int64
		for after := int64(0); ; {
			var p page
			if status := s.api(t, "GET", path(fmt.Sprintf("?after_seq=%d&limit=13", after)), owner, nil, &p); status != 200 {
				t.Fatalf("REST page after %d: status %d", after, status)
			}
			for _, m := range p.Messages {
				checkMsg(t, m)
				rest = append(rest, m.Seq)
			}
			if !p.More {
				break
			}
			after = p.Messages[len(p.Messages)-1].Seq
		}
		checkSeqs(t, "REST pages of 13", rest, 1, total)
		msgs, _ := reader.resumeAll(conv, 0, 13)
		var ws []int64
		for _, m := range msgs {
			ws = append(ws, m.Seq)
		}
		if !slices.Equal(rest, ws) {
			t.Fatalf("REST history %v differs from resume %v", rest, ws)
		}

		// The stranger's own conversation works with the same token, and the
		// owner is told the stranger's does not exist: 404 both ways.
		if status := s.api(t, "GET", "/v1/conversations/"+strangerConv+"/messages", stranger, nil, nil); status != 200 {
			t.Fatalf("stranger reading their own conversation: status %d", status)
		}
		if status := s.api(t, "GET", "/v1/conversations/"+strangerConv+"/messages", owner, nil, nil); status != 404 {
			t.Fatalf("owner reading the stranger's conversation: status %d, want 404", status)
		}
	})
}

// tamper returns token with one character of its signature changed.
func tamper(token string) string {
	i := strings.LastIndexByte(token, '.') + 1
	if i <= 0 || i >= len(token) {
		return token + "x"
	}
	b := []byte(token)
	// Change a middle character: the last one of a base64url signature may
	// carry unused bits that some decoders ignore.
	j := i + (len(b)-i)/2
	if b[j] == 'A' {
		b[j] = 'B'
	} else {
		b[j] = 'A'
	}
	return string(b)
}

// TestResumeHoldsPushesWhilePaging: messages stored while a client pages
// its history reach it exactly once and in order: either on a later page
// or, for those newer than the last page, as pushes after it.
func TestResumeHoldsPushesWhilePaging(t *testing.T) {
	s := startServer(t, resumeConfig(t))
	owner, _ := s.visitor(t)
	staff, _ := s.staffToken(t)
	writer := dial(t, s, "/v1/ws/user", nil)
	writer.hello(owner)

	const before = 60 // messages stored before paging starts
	cases := []struct {
		name       string
		limit      int
		concurrent bool // the writer races the pager instead of sending between its pages
	}{
		{"sends between page requests", 7, false},
		{"sends racing the pages", 1, true},
	}
	for n, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conv := s.newConversation(t, owner)
			fill(t, writer, conv, fmt.Sprintf("pre%d", n), 1, before, 10, textOf)
			next := int64(before + 1) // the seq the writer's next message gets
			send := func(k int, tag string) {
				t.Helper()
				fill(t, writer, conv, fmt.Sprintf("%s%d-%d", tag, n, next), next, k, k, textOf)
				next += int64(k)
			}

			pager := dial(t, s, "/v1/ws/agent", nil)
			pager.hello(staff)
			var arrived []int64 // seqs in the order the pager received them, pages and pushes
			var pushesDuringPaging []int64
			paging := true
			// await reads the pager's frames in order until pred holds.
			await := func(pred func(frame) bool) frame {
				t.Helper()
				for {
					f := pager.take()
					switch {
					case f.Type == "message" && f.Conv == conv:
						arrived = append(arrived, f.Msg.Seq)
						if paging {
							pushesDuringPaging = append(pushesDuringPaging, f.Msg.Seq)
						}
					case f.Type == "error":
						t.Fatalf("pager got %s", f.Raw)
					}
					if pred(f) {
						return f
					}
				}
			}

			var racing chan error
			if tc.concurrent {
				racing = make(chan error, 1)
				go func() { racing <- sendEach(writer, conv, fmt.Sprintf("race%d", n), 150) }()
			}
			last, pages := int64(0), 0
			for {
				id := fmt.Sprintf("h%d", pages)
				pager.send(map[string]any{"type": "resume", "id": id, "conv": conv, "last_seq": last, "limit": tc.limit})
				f := await(func(f frame) bool { return f.Type == "history" && f.ID == id })
				pages++
				for _, m := range f.Messages {
					arrived = append(arrived, m.Seq)
				}
				if len(f.Messages) > 0 {
					last = f.Messages[len(f.Messages)-1].Seq
				}
				if !f.More {
					break
				}
				if !tc.concurrent {
					send(3, "mid") // stored and pushed before the next page is asked for
				}
			}
			paging = false
			t.Logf("%d pages, the last ending at seq %d", pages, last)
			if tc.concurrent {
				if err := <-racing; err != nil {
					t.Fatal(err)
				}
				next += 150
			}
			// Messages after the last page arrive as pushes. The last one is
			// the sentinel: anything duplicated would arrive before it.
			send(5, "post")
			await(func(f frame) bool { return f.Type == "message" && f.Conv == conv && f.Msg.Seq == next-1 })

			if len(pushesDuringPaging) > 0 {
				t.Errorf("%d pushes arrived before the last history page, the first: %v", len(pushesDuringPaging), pushesDuringPaging[:min(10, len(pushesDuringPaging))])
			}
			checkSeqs(t, fmt.Sprintf("pages (%d) and pushes", pages), arrived, 1, next-1)
			if !tc.concurrent && pages < 10 {
				t.Fatalf("only %d pages: the writer did not send between them", pages)
			}
		})
	}
}

// sendEach sends n messages to conv one at a time, each after the previous
// one's ack. It reads c's frames itself and reports failures instead of
// failing the test, so it may run on its own goroutine.
func sendEach(c *wsClient, conv, prefix string, n int) error {
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		b := fmt.Sprintf(`{"type":"send","conv":%q,"client_msg_id":%q,"body":{"type":"text","text":%q}}`, conv, id, textOf(i))
		if err := c.conn.WriteMessage(websocket.TextMessage, []byte(b)); err != nil {
			return fmt.Errorf("send %s: %w", id, err)
		}
		deadline := time.After(15 * time.Second)
		for acked := false; !acked; {
			select {
			case f := <-c.frames:
				if f.ClientMsgID == id {
					if f.Type != "ack" {
						return fmt.Errorf("send %s: %s", id, f.Raw)
					}
					acked = true
				}
			case <-deadline:
				return fmt.Errorf("no ack of %s within 15s", id)
			}
		}
	}
	return nil
}
