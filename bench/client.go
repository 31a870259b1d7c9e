package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

// Roles of the harness's clients, as the server names their messages'
// senders.
const (
	roleUser  = "user"
	roleAgent = "agent"
	roleBot   = "bot"
)

type eventKind int

const (
	evSend      eventKind = iota // a plain message
	evFAQ                        // a customer question the bot should answer
	evReconnect                  // drop the socket, reconnect and resume
	evEscalate                   // a customer asks for a person
)

// event is one scheduled action for one client. due is its instant as an
// offset from the start of the load.
type event struct {
	kind eventKind
	view *view
	n    int64
	due  time.Duration
}

// view is one client's knowledge of one conversation. Guarded by its
// client's mu.
type view struct {
	conv      string
	known     []bool  // by seq: the client has this message (received, or its own and acked)
	recv      []uint8 // by seq: how often a message of the other side arrived (pushes and history)
	delivered int64   // every seq up to this one is known
	faqDue    []time.Duration

	escalation bool   // a conversation of the escalations' pool
	escalated  bool   // the customer sent escalate
	state      string // the conversation's state in the last history page
}

func (v *view) grow(seq int64) {
	for int64(len(v.known)) <= seq {
		v.known = append(v.known, false)
		v.recv = append(v.recv, 0)
	}
}

// markKnown records seq as present at the client and advances delivered.
func (v *view) markKnown(seq int64) {
	v.grow(seq)
	v.known[seq] = true
	for int64(len(v.known)) > v.delivered+1 && v.known[v.delivered+1] {
		v.delivered++
	}
}

// pending is a sent message waiting for its ack.
type pending struct {
	view  *view
	n     int64
	due   time.Duration
	frame []byte
}

// inFrame is any server frame, decoded loosely.
type inFrame struct {
	Type        string    `json:"type"`
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`  // of a notice
	Op          string    `json:"op"`    // of a done
	State       string    `json:"state"` // of a history page or a done
	Code        string    `json:"code"`
	Message     string    `json:"message"`
	Conv        string    `json:"conv"`
	ClientMsgID string    `json:"client_msg_id"`
	Seq         int64     `json:"seq"`
	Dup         bool      `json:"dup"`
	Msg         message   `json:"msg"`
	Messages    []message `json:"messages"`
	More        bool      `json:"more"`
}

// client is one logical customer or agent across its reconnections. The
// writer goroutine (loop) owns conn and every write; a reader goroutine per
// socket hands frames to the shared state under mu.
type client struct {
	r        *runner
	n        int
	role     string
	path     string
	token    string
	presence string // an agent's: away, or online for a routed agent

	views  []*view
	byConv map[string]*view

	events  chan event
	resends chan string  // client_msg_ids to send again (the server asked to retry)
	pages   chan inFrame // history and resume errors, for the writer
	// A routed agent's conversations to answer, and to close once the
	// answer is acked; nil for other clients.
	assigned chan assignment
	toClose  chan string

	conn       *websocket.Conn // owned by the writer goroutine
	readerDone chan struct{}
	limit      *pacer // paces frames the client sends outside the schedule
	resumeN    int

	mu      sync.Mutex
	pending map[string]*pending
}

func newClient(r *runner, n int, role, token string) *client {
	path := "/v1/ws/user"
	if role == roleAgent {
		path = "/v1/ws/agent"
	}
	return &client{
		r: r, n: n, role: role, path: path, token: token,
		byConv: make(map[string]*view), events: make(chan event, 1024),
		resends: make(chan string, 1024), pages: make(chan inFrame, 16),
		pending: make(map[string]*pending),
	}
}

func (c *client) follow(conv string) *view {
	v := &view{conv: conv}
	c.views = append(c.views, v)
	c.byConv[conv] = v
	return v
}

// connect opens the socket, starts its reader and resumes every followed
// conversation from what the client has, then resends what is unacked.
func (c *client) connect(ctx context.Context) error {
	var conn *websocket.Conn
	var w welcome
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		if conn, w, err = c.r.dl.dial(ctx, c.path, c.token, c.presence, c.n); err == nil {
			break
		}
		c.r.errs.add("dial")
		if errors.Is(err, ErrFileLimit) || errors.Is(err, ErrNoPorts) {
			return err
		}
	}
	if err != nil {
		return err
	}
	c.r.noteWelcome(w)
	if c.limit == nil {
		c.limit = newPacer(w.RatePerSec)
	}
	c.conn = conn
	c.readerDone = make(chan struct{})
	go c.read(conn, c.readerDone)
	c.mu.Lock()
	views := slices.Clone(c.views) // a routed agent's reader follows more
	c.mu.Unlock()
	for _, v := range views {
		if err := c.resume(ctx, v); err != nil {
			return err
		}
	}
	c.mu.Lock()
	resend := make([]*pending, 0, len(c.pending))
	for _, p := range c.pending {
		resend = append(resend, p)
	}
	c.mu.Unlock()
	slices.SortFunc(resend, func(a, b *pending) int { return int(a.n - b.n) })
	for _, p := range resend {
		c.limit.wait(ctx)
		if err := c.write(p.frame); err != nil {
			return err
		}
	}
	// An escalate the server never took: the conversation is still with the bot.
	c.mu.Lock()
	var again []string
	for _, v := range c.views {
		if v.escalated && v.state == "BOT" {
			again = append(again, v.conv)
		}
	}
	c.mu.Unlock()
	for _, conv := range again {
		c.limit.wait(ctx)
		if err := c.write(escalateFrame(conv)); err != nil {
			return err
		}
	}
	return nil
}

// resume pages v's history from the last contiguous seq the client has.
func (c *client) resume(ctx context.Context, v *view) error {
	c.mu.Lock()
	last := v.delivered
	c.mu.Unlock()
	for {
		c.resumeN++
		id := "r" + strconv.Itoa(c.resumeN)
		frame, _ := json.Marshal(map[string]any{"type": "resume", "id": id, "conv": v.conv, "last_seq": last, "limit": 200})
		c.limit.wait(ctx)
		if err := c.write(frame); err != nil {
			return err
		}
		page, err := c.waitPage(ctx, id)
		if err != nil {
			return err
		}
		if !page.More || len(page.Messages) == 0 {
			return nil
		}
		last = page.Messages[len(page.Messages)-1].Seq
	}
}

var errSocketGone = errors.New("bench: the socket closed")

func (c *client) waitPage(ctx context.Context, id string) (inFrame, error) {
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case f := <-c.pages:
			if f.ID != id {
				continue // an answer to an earlier socket's request
			}
			if f.Type == "error" {
				return f, fmt.Errorf("bench: resume %s refused: %s %s", f.Conv, f.Code, f.Message)
			}
			return f, nil
		case <-c.readerDone:
			return inFrame{}, errSocketGone
		case <-timeout.C:
			return inFrame{}, fmt.Errorf("bench: no history page within 30s (%s)", c.role)
		case <-ctx.Done():
			return inFrame{}, ctx.Err()
		}
	}
}

func (c *client) write(frame []byte) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, frame)
}

// loop is the client's writer goroutine: it sends what the pacer schedules
// (until events is closed) and what the server asked to have resent,
// reconnecting when asked or when the socket fails, until stop is closed.
func (c *client) loop(ctx context.Context, stop <-chan struct{}) {
	events := c.events
	broken := false
	for {
		var err error
		dropped := c.readerDone
		var retry <-chan time.Time
		if broken {
			dropped = nil
			retry = time.After(500 * time.Millisecond)
		}
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil // the load is over; keep resending until stop
				continue
			}
			switch ev.kind {
			case evReconnect:
				err = c.reconnect(ctx)
			case evEscalate:
				if broken {
					err = c.reconnect(ctx)
				}
				c.escalate(ev.view, &err)
			default:
				if broken {
					err = c.reconnect(ctx)
				}
				c.send(ev, &err)
			}
			c.r.handled.Add(1)
		case a := <-c.assigned:
			err = c.answer(ctx, a, broken)
		case conv := <-c.toClose:
			if broken {
				err = c.reconnect(ctx)
			}
			if err == nil {
				c.limit.wait(ctx)
				err = c.write(closeFrame(conv))
			}
		case id := <-c.resends:
			c.mu.Lock()
			p := c.pending[id]
			c.mu.Unlock()
			if p != nil && !broken {
				time.Sleep(20 * time.Millisecond) // the server asked to slow down
				err = c.write(p.frame)
			}
		case <-dropped:
			c.r.errs.add("connection_dropped")
			err = c.reconnect(ctx)
		case <-retry:
			err = c.reconnect(ctx)
		case <-stop:
			return
		case <-ctx.Done():
			return
		}
		broken = err != nil
		if err != nil && ctx.Err() == nil {
			c.r.errs.add("write_or_reconnect")
			c.r.logf("%s %d: %v", c.role, c.n, err)
		}
	}
}

// send writes one scheduled message. It is registered as pending first:
// its ack may arrive before the write returns.
func (c *client) send(ev event, err *error) {
	id := c.r.msgID(ev.n, ev.due)
	bodies := questionBodies
	if c.role == roleAgent {
		bodies = answerBodies
	} else if ev.kind == evFAQ {
		bodies = faqBodies
	}
	// Built by hand: conversation and message ids need no escaping, and
	// the bodies are encoded once. The harness shares the machine's cores
	// with the server; every microsecond it spends is taken from Kefu.
	frame := make([]byte, 0, 96+len(ev.view.conv)+len(id)+128)
	frame = append(frame, `{"type":"send","conv":"`...)
	frame = append(frame, ev.view.conv...)
	frame = append(frame, `","client_msg_id":"`...)
	frame = append(frame, id...)
	frame = append(frame, `","body":`...)
	frame = append(frame, bodies[ev.n%int64(len(bodies))]...)
	frame = append(frame, '}')
	c.mu.Lock()
	c.pending[id] = &pending{view: ev.view, n: ev.n, due: ev.due, frame: frame}
	if ev.kind == evFAQ {
		ev.view.faqDue = append(ev.view.faqDue, ev.due)
	}
	c.mu.Unlock()
	c.r.sent.Add(1)
	if *err != nil {
		return // resent after the next successful reconnection
	}
	*err = c.write(frame)
}

// reconnect drops the socket the way a phone losing its network does (no
// close frame), reconnects and resumes.
func (c *client) reconnect(ctx context.Context) error {
	start := time.Now()
	if c.conn != nil {
		c.conn.Close()
		<-c.readerDone
	}
	if err := c.connect(ctx); err != nil {
		return err
	}
	c.r.resumeH.record(time.Since(start))
	c.r.reconnects.Add(1)
	return nil
}

// close ends the socket with a normal close frame and waits for its reader.
func (c *client) close() {
	if c.conn == nil {
		return
	}
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	select {
	case <-c.readerDone:
	case <-time.After(2 * time.Second):
	}
	c.conn.Close()
	<-c.readerDone
}

// read is one socket's reader goroutine.
func (c *client) read(conn *websocket.Conn, done chan<- struct{}) {
	defer close(done)
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		now := c.r.since()
		var f inFrame
		if err := json.Unmarshal(data, &f); err != nil {
			c.r.errs.add("undecodable_frame")
			continue
		}
		switch f.Type {
		case "ack":
			c.onAck(f, now)
		case "message":
			c.onMessage(f.Msg, now)
		case "history":
			c.mu.Lock()
			if v := c.byConv[f.Conv]; v != nil {
				v.state = f.State
				for _, m := range f.Messages {
					c.onStored(v, m, now, false)
				}
			}
			c.mu.Unlock()
			c.page(f)
		case "notice":
			if f.Kind == "assigned" && c.assigned != nil {
				c.onAssigned(f.Conv, now)
			}
		case "done":
			if f.Op == "close" && f.State == "CLOSED" {
				c.r.esc.closed.Add(1)
			}
		case "error":
			c.r.errs.add(f.Code)
			c.r.logf("%s %d: error frame: %s %s (conv %s, client_msg_id %s)", c.role, c.n, f.Code, f.Message, f.Conv, f.ClientMsgID)
			switch {
			case f.ID != "":
				c.page(f)
			case f.ClientMsgID != "" && (f.Code == "rate_limited" || f.Code == "unavailable"):
				select {
				case c.resends <- f.ClientMsgID:
				default: // resent after the next reconnection at the latest
				}
			}
		}
	}
}

// page hands a resume answer to the writer. It never blocks the reader: an
// answer nobody waits for is dropped, and a writer that misses one times
// out and reconnects.
func (c *client) page(f inFrame) {
	select {
	case c.pages <- f:
	default:
		c.r.errs.add("history_page_dropped")
	}
}

func (c *client) onAck(f inFrame, now time.Duration) {
	c.r.ledger.ack(f.Conv, f.ClientMsgID, f.Seq)
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.byConv[f.Conv]; v != nil && f.Seq > 0 {
		v.markKnown(f.Seq)
	}
	p := c.pending[f.ClientMsgID]
	if p == nil {
		return // a second ack of a resend
	}
	delete(c.pending, f.ClientMsgID)
	c.r.acked.Add(1)
	c.r.lastAck.Store(int64(now))
	if p.view.escalation {
		// A routed agent's answer: unscheduled, so not timed; the
		// conversation is served.
		c.toClose <- p.view.conv // never blocks: room for the whole pool
		return
	}
	c.r.ackH.record(now - p.due)
}

func (c *client) onMessage(m message, now time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.byConv[m.Conv]
	if v == nil {
		c.r.errs.add("push_for_unknown_conversation")
		return
	}
	c.onStored(v, m, now, true)
}

// onStored records a message that reached the client by push (live) or in
// a history page. Only live pushes are timed; a history page counts only
// messages the client did not have, since the client chose where it
// starts. Caller holds mu.
func (c *client) onStored(v *view, m message, now time.Duration, live bool) {
	if m.Seq < 1 {
		c.r.errs.add("message_without_seq")
		return
	}
	v.grow(m.Seq)
	if m.From.Role == c.role {
		v.markKnown(m.Seq) // its own, from before a reconnection or another device
		return
	}
	if !live && v.recv[m.Seq] > 0 {
		return
	}
	if v.recv[m.Seq] < 255 {
		v.recv[m.Seq]++
	}
	v.markKnown(m.Seq)
	if v.escalation && m.From.Role == roleAgent {
		// The routed agent's answer to the customer's escalate.
		if v.recv[m.Seq] == 1 {
			c.r.esc.answered.Add(1)
			if due, ok := c.r.dueOf(m.ClientMsgID); ok && live {
				c.r.escH.record(now - due)
			}
		}
		return
	}
	if !live || v.recv[m.Seq] > 1 {
		return
	}
	switch {
	case m.From.Role == roleBot && len(v.faqDue) > 0:
		c.r.botH.record(now - v.faqDue[0])
		v.faqDue = v.faqDue[1:]
	case m.From.Role == roleBot:
	default:
		due, ok := c.r.dueOf(m.ClientMsgID)
		if !ok {
			return
		}
		if c.role == roleAgent {
			c.r.u2aH.record(now - due)
		} else {
			c.r.a2uH.record(now - due)
		}
	}
}

// pacer spaces the frames a client sends outside the schedule (resumes,
// resends) under the server's per-connection rate, allowing a burst.
type pacer struct {
	interval time.Duration
	burst    int
	next     time.Time
}

func newPacer(ratePerSec int) *pacer {
	if ratePerSec <= 0 {
		ratePerSec = 20
	}
	return &pacer{interval: time.Duration(float64(time.Second) / (0.8 * float64(ratePerSec))), burst: min(ratePerSec, 30)}
}

func (p *pacer) wait(ctx context.Context) {
	now := time.Now()
	if floor := now.Add(-time.Duration(p.burst) * p.interval); p.next.Before(floor) {
		p.next = floor
	}
	p.next = p.next.Add(p.interval)
	if d := p.next.Sub(now); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
}

// Texts the load sends: ordinary customer messages, knowledge-base
// questions and agent answers.
var (
	questions = []string{"你好，我想问一下发货时间", "我的快递到哪了？", "可以开发票吗", "这个尺码偏大还是偏小", "订单号 20261121-0042，能帮我查一下吗", "Hello, is this item in stock?"}
	faqs      = []string{"怎么退货？", "运费怎么算", "支持货到付款吗", "多久能到货", "How do I change my delivery address?"}
	answers   = []string{"您好，已为您查询，预计明天送达。", "可以的，请在订单页申请开票。", "建议按平时尺码选择。", "好的，请稍等，我帮您确认一下。", "Yes, it ships within 24 hours."}
)

var questionBodies, faqBodies, answerBodies = encodeBodies(questions), encodeBodies(faqs), encodeBodies(answers)

// encodeBodies encodes each text as a protocol text body.
func encodeBodies(texts []string) [][]byte {
	out := make([][]byte, len(texts))
	for i, t := range texts {
		out[i], _ = json.Marshal(map[string]string{"type": "text", "text": t})
	}
	return out
}

// parseMsgID reads n and the due offset back from an id made by msgID.
func parseMsgID(tag, id string) (n int64, due time.Duration, ok bool) {
	rest, ok := strings.CutPrefix(id, tag+"-")
	if !ok {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, 0, false
	}
	n, err1 := strconv.ParseInt(a, 10, 64)
	us, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return n, time.Duration(us) * time.Microsecond, true
}
