package bench

import (
	"maps"
	"slices"
	"sync"
)

// ledger keeps every ack the harness received: client_msg_id -> seq per
// conversation. It is safe for concurrent use.
type ledger struct {
	mu        sync.Mutex
	convs     map[string]*convAcks
	conflicts int64 // one client_msg_id acked with two seqs, or one seq with two ids
}

type convAcks struct {
	byID  map[string]int64
	bySeq map[int64]string
}

func newLedger() *ledger { return &ledger{convs: make(map[string]*convAcks)} }

func (l *ledger) ack(conv, id string, seq int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.convs[conv]
	if c == nil {
		c = &convAcks{byID: make(map[string]int64), bySeq: make(map[int64]string)}
		l.convs[conv] = c
	}
	if old, ok := c.byID[id]; ok && old != seq {
		l.conflicts++
	}
	if old, ok := c.bySeq[seq]; ok && old != id {
		l.conflicts++
	}
	c.byID[id], c.bySeq[seq] = seq, id
}

// lastSeq is the highest acked seq of conv.
func (l *ledger) lastSeq(conv string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.convs[conv]
	if c == nil {
		return 0
	}
	var last int64
	for seq := range c.bySeq {
		last = max(last, seq)
	}
	return last
}

// Check is what the end-of-run comparison with the server's history found.
// Lost and Duplicated in the report are the sums of their parts here.
type Check struct {
	Conversations int   `json:"conversations"`
	Stored        int64 `json:"stored"` // messages in the histories
	Acked         int64 `json:"acked"`  // distinct acked client_msg_ids
	// LostAcked: acked, but not in the history at the acked seq.
	LostAcked int64 `json:"lost_acked"`
	// Undelivered: in the history, from the other side, but never reached
	// the client following the conversation (by push or resume).
	Undelivered int64 `json:"undelivered"`
	// DupStored: a client_msg_id stored more than once.
	DupStored int64 `json:"dup_stored"`
	// DupAcked: a client_msg_id acked with two seqs, or a seq with two ids.
	DupAcked int64 `json:"dup_acked"`
	// DupDelivered: a message pushed to the same client more than once.
	DupDelivered int64 `json:"dup_delivered"`
	// SeqGaps: seqs missing from 1..last in a history.
	SeqGaps int64 `json:"seq_gaps"`
	// Unacked: sends that never got an ack before the drain ended.
	Unacked int64 `json:"unacked"`
	// BotUnanswered: FAQ questions the bot did not answer.
	BotUnanswered int64 `json:"bot_unanswered"`
}

func (c Check) lost() int64       { return c.LostAcked + c.Undelivered }
func (c Check) duplicated() int64 { return c.DupStored + c.DupAcked + c.DupDelivered }

// checkConversation compares one conversation's history with the acks and
// with what its two followers (the user's and the agent's view) received.
func (l *ledger) checkConversation(ck *Check, conv string, hist []message, followers map[string]*view) {
	l.mu.Lock()
	acks := l.convs[conv]
	var byID map[string]int64
	if acks != nil {
		byID = maps.Clone(acks.byID)
	}
	l.mu.Unlock()

	ck.Conversations++
	ck.Stored += int64(len(hist))
	atSeq := make(map[int64]message, len(hist))
	ids := make(map[string]int, len(hist))
	for _, m := range hist {
		atSeq[m.Seq] = m
		ids[m.ClientMsgID]++
	}
	for _, n := range ids {
		if n > 1 {
			ck.DupStored += int64(n - 1)
		}
	}
	if len(hist) > 0 {
		last := slices.MaxFunc(hist, func(a, b message) int { return int(a.Seq - b.Seq) }).Seq
		ck.SeqGaps += last - int64(len(atSeq))
	}
	for id, seq := range byID {
		ck.Acked++
		if m, ok := atSeq[seq]; !ok || m.ClientMsgID != id {
			ck.LostAcked++
		}
	}
	for role, v := range followers {
		for _, m := range hist {
			if m.From.Role == role {
				continue // its own side's messages are acked, not pushed
			}
			var n uint8
			if m.Seq < int64(len(v.recv)) {
				n = v.recv[m.Seq]
			}
			switch {
			case n == 0:
				ck.Undelivered++
			case n > 1:
				ck.DupDelivered += int64(n - 1)
			}
		}
	}
}
