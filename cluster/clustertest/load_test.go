package clustertest

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// chat is one conversation under load: its customer sends on one edge,
// the agent answers on the other, and every acked message is recorded.
type chat struct {
	conv, userToken string

	mu      sync.Mutex
	acked   map[string]int64     // client_msg_id -> seq
	ackedAt map[string]time.Time // client_msg_id -> when its first ack arrived
	acks    []time.Time          // when each ack arrived
}

func (ch *chat) record(cmid string, seq int64) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	now := time.Now()
	ch.acked[cmid] = seq
	if _, ok := ch.ackedAt[cmid]; !ok {
		ch.ackedAt[cmid] = now
	}
	ch.acks = append(ch.acks, now)
}

// firstAckAfter is when the conversation first accepted a message after t.
func (ch *chat) firstAckAfter(t time.Time) (time.Time, bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	i := sort.Search(len(ch.acks), func(i int) bool { return ch.acks[i].After(t) })
	if i == len(ch.acks) {
		return time.Time{}, false
	}
	return ch.acks[i], true
}

// load drives chats: each customer sends every period and resends with
// the same client_msg_id until acked, reconnecting to whichever edge
// answers; the agent answers round the chats the same way.
type load struct {
	t      *testing.T
	c      *Cluster
	chats  []*chat
	agent  string // the agent's token
	stop   chan struct{}
	wg     sync.WaitGroup
	period time.Duration
}

func startLoad(t *testing.T, c *Cluster, n int, period time.Duration) *load {
	t.Helper()
	l := &load{t: t, c: c, stop: make(chan struct{}), period: period}
	var agentID string
	l.agent, agentID = Agent(t, c.Edges[1], "load-agent", n+10)
	agentSock := Dial(t, c.Edges[1], "/v1/ws/agent", l.agent)
	for i := range n {
		token, conv := Visitor(t, c.Edges[i%len(c.Edges)])
		ch := &chat{conv: conv, userToken: token, acked: map[string]int64{}, ackedAt: map[string]time.Time{}}
		l.chats = append(l.chats, ch)
		// Escalate with a first message, so the agent serves it and the
		// bot stays quiet.
		user := Dial(t, c.Edges[0], "/v1/ws/user", token)
		f := mustSend(t, user, conv, "hello", "人工客服")
		ch.record("hello", f.Seq)
		user.Close()
		if _, ok := agentSock.Next(func(f Frame) bool { return f.Type == "notice" && f.Kind == "assigned" && f.Conv == conv }, 30*time.Second); !ok {
			t.Fatalf("conversation %d was not assigned to %s", i, agentID)
		}
	}
	agentSock.Close()
	for _, ch := range l.chats {
		l.wg.Add(1)
		go l.run(ch.userToken, "/v1/ws/user", 0, []*chat{ch})
	}
	l.wg.Add(1)
	go l.run(l.agent, "/v1/ws/agent", 1, l.chats)
	return l
}

// run sends, in turn, one message to each of chats per period through a
// socket on the edges (starting with edge first%2), until stop.
func (l *load) run(token, path string, first int, chats []*chat) {
	defer l.wg.Done()
	var sock *Socket
	edge := first
	defer func() {
		if sock != nil {
			sock.Close()
		}
	}()
	who := "u"
	if path == "/v1/ws/agent" {
		who = "a"
	}
	for n := 1; ; n++ {
		ch := chats[n%len(chats)]
		cmid := fmt.Sprintf("%s-%d", who, n)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			if sock == nil {
				s, err := TryDial(l.c.Edges[edge%len(l.c.Edges)], path, token)
				if err != nil {
					edge++ // that edge is gone: the other one
					time.Sleep(100 * time.Millisecond)
					continue
				}
				sock = s
			}
			if sock.Send(map[string]any{"type": "send", "conv": ch.conv, "client_msg_id": cmid, "body": map[string]string{"type": "text", "text": "load " + cmid}}) != nil {
				sock.Close()
				sock = nil
				continue
			}
			f, ok := sock.Next(func(f Frame) bool { return f.ClientMsgID == cmid && (f.Type == "ack" || f.Type == "error") }, 3*time.Second)
			if ok && f.Type == "ack" {
				ch.record(cmid, f.Seq)
				break
			}
			if ok { // refused for now (unavailable while a node fails over): resend shortly
				time.Sleep(100 * time.Millisecond)
				continue
			}
			{
				select {
				case <-sock.Ended():
					sock = nil
				default: // no answer in time: resend the same id
				}
			}
		}
		select {
		case <-l.stop:
			return
		case <-time.After(l.period): // the pace of the load, not a wait for a result
		}
	}
}

// halt stops the load and waits for every sender.
func (l *load) halt() {
	close(l.stop)
	l.wg.Wait()
}

// recovery measures, for a failure at t, how long until every chat
// accepted a message again; it waits up to d for all of them.
func (l *load) recovery(t time.Time, d time.Duration) time.Duration {
	l.t.Helper()
	deadline := time.Now().Add(d)
	for {
		worst, all := time.Duration(0), true
		for _, ch := range l.chats {
			at, ok := ch.firstAckAfter(t)
			if !ok {
				all = false
				break
			}
			worst = max(worst, at.Sub(t))
		}
		if all {
			return worst
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("some conversations accepted no message in %v after the failure", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verify checks what the store holds against what was acked: every
// conversation's seqs are 1..n without a gap, every acked message is there
// exactly once under its acked seq, and a client that resumes from 0 on
// either edge sees exactly that history.
func (l *load) verify() {
	t := l.t
	t.Helper()
	admin, _ := StaffLogin(t, l.c.Edges[0], "admin", AdminPassword)
	total := 0
	for i, ch := range l.chats {
		stored := history(t, l.c.Edges[i%2], admin, ch.conv)
		seen := map[string]int{}
		for j, m := range stored {
			if m.Seq != int64(j+1) {
				t.Fatalf("conversation %s: seq %d at position %d: the seqs have a gap", ch.conv, m.Seq, j+1)
			}
			seen[m.From.Role+"/"+m.ClientMsgID]++
		}
		ch.mu.Lock()
		for cmid, seq := range ch.acked {
			who := "user"
			if cmid[0] == 'a' {
				who = "agent"
			}
			if n := seen[who+"/"+cmid]; n != 1 {
				t.Errorf("conversation %s: acked %s is stored %d times", ch.conv, cmid, n)
			} else if stored[seq-1].ClientMsgID != cmid {
				t.Errorf("conversation %s: %s was acked as seq %d, which holds %s", ch.conv, cmid, seq, stored[seq-1].ClientMsgID)
			}
		}
		total += len(ch.acked)
		ch.mu.Unlock()
		for edge := range l.c.Edges {
			s := Dial(t, l.c.Edges[edge], "/v1/ws/user", ch.userToken)
			got, ok := s.Resume(ch.conv, 0)
			s.Close()
			if !ok || !slices.EqualFunc(got, stored, func(a, b Message) bool { return a.Seq == b.Seq && a.ClientMsgID == b.ClientMsgID }) {
				t.Fatalf("conversation %s: a customer resuming on %s sees %d messages, the store holds %d", ch.conv, l.c.Edges[edge].Name, len(got), len(stored))
			}
		}
	}
	t.Logf("%d conversations, %d acked messages: all stored once, in gapless order, and replayed the same on every edge", len(l.chats), total)
}

// history pages a conversation's stored messages through REST.
func history(t testing.TB, n *Node, token, conv string) []Message {
	t.Helper()
	var out []Message
	for after := int64(0); ; {
		var page struct {
			Messages []Message `json:"messages"`
		}
		mustAPI(t, n, "GET", fmt.Sprintf("/v1/conversations/%s/messages?after_seq=%d&limit=200", conv, after), token, nil, &page)
		out = append(out, page.Messages...)
		if len(page.Messages) < 200 {
			return out
		}
		after = page.Messages[len(page.Messages)-1].Seq
	}
}

// follower is an agent's socket that resumed some of the load's
// conversations from the start and then only listens: it records every
// message the server sends it on them, from the history pages and as
// pushes, in arrival order. It never resumes again by itself, so it holds
// every message exactly once only if its session follows each
// conversation to its next activation after a failure.
type follower struct {
	t    *testing.T
	sock *Socket
	mu   sync.Mutex
	got  map[string][]Message // by conversation, in arrival order
	errs []Frame              // error frames about the conversations
}

// follow opens the follower on n and resumes chats from seq 0.
func (l *load) follow(n *Node, chats []*chat) *follower {
	l.t.Helper()
	f := &follower{t: l.t, sock: Dial(l.t, n, "/v1/ws/agent", l.agent), got: map[string][]Message{}}
	for _, ch := range chats {
		f.got[ch.conv] = []Message{}
		f.resume(ch.conv, 0)
	}
	go f.sock.Next(func(fr Frame) bool { f.record(fr); return false }, time.Hour) // reads until the socket ends
	return f
}

func (f *follower) resume(conv string, after int64) {
	id := fmt.Sprintf("follow-%s-%d", conv, after)
	if err := f.sock.Send(map[string]any{"type": "resume", "id": id, "conv": conv, "last_seq": after, "limit": 200}); err != nil {
		f.t.Errorf("follower: resume %s: %v", conv, err)
	}
}

func (f *follower) record(fr Frame) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.got[fr.Conv]; !ok {
		return
	}
	switch fr.Type {
	case "history":
		f.got[fr.Conv] = append(f.got[fr.Conv], fr.Messages...)
		if fr.More && len(fr.Messages) > 0 {
			f.resume(fr.Conv, fr.Messages[len(fr.Messages)-1].Seq)
		}
	case "message":
		f.got[fr.Conv] = append(f.got[fr.Conv], fr.Msg)
	case "error":
		f.errs = append(f.errs, fr)
	}
}

// verify waits until the follower received as many messages of each
// conversation as the store holds, and checks it received each of them
// exactly once, in seq order. since (the first failure) is when the
// report starts counting the customers' messages it received live.
func (f *follower) verify(l *load, since time.Time) {
	t := f.t
	t.Helper()
	admin, _ := StaffLogin(t, l.c.Edges[0], "admin", AdminPassword)
	deadline := time.Now().Add(15 * time.Second)
	pushed := 0
	f.mu.Lock()
	convs := slices.Collect(maps.Keys(f.got)) // record assigns to f.got while pushes arrive
	f.mu.Unlock()
	for _, conv := range convs {
		stored := history(t, l.c.Edges[0], admin, conv)
		var got []Message
		for {
			f.mu.Lock()
			got = slices.Clone(f.got[conv])
			f.mu.Unlock()
			if len(got) >= len(stored) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond) // polling for pushes still on their way
		}
		same := func(a, b Message) bool { return a.Seq == b.Seq && a.ClientMsgID == b.ClientMsgID }
		if !slices.EqualFunc(got, stored, same) {
			t.Errorf("conversation %s: the following agent's socket received %d messages (seqs %v), the store holds %d (seqs 1..%d): not each exactly once, in order",
				conv, len(got), seqsOf(got), len(stored), len(stored))
			continue
		}
		for _, ch := range l.chats {
			if ch.conv == conv {
				pushed += ch.userMessagesAckedAfter(since)
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.errs {
		t.Errorf("the following agent's socket got an error about %s: %s", e.Conv, e.Code)
	}
	if t.Failed() {
		return
	}
	t.Logf("a socket following %d conversations received every stored message exactly once, in order, %d of its customers' messages after the first failure among them", len(f.got), pushed)
}

// userMessagesAckedAfter counts the customer's messages acked after t.
func (ch *chat) userMessagesAckedAfter(t time.Time) int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	n := 0
	for cmid, at := range ch.ackedAt {
		if cmid[0] == 'u' && at.After(t) {
			n++
		}
	}
	return n
}

func seqsOf(msgs []Message) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}
