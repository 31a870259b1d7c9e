package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storemetrics"
)

// appendOp is one Append call queued for the writer. The caller fills in the
// request, sends it, and reads the result fields only after done is closed;
// the writer touches the op only between receiving it and closing done.
type appendOp struct {
	ctx          context.Context // the caller's; checked before the batch, never passed to the driver
	tenant, conv string
	docs         []messageDoc
	done         chan struct{}

	// Results.
	n   int   // leading messages stored
	err error // why docs[n] was not, unless refusedAt says the caller must find out
	// refusedAt is the index of the first message a unique index refused,
	// or -1. The caller tells a duplicate from a seq conflict (Append).
	refusedAt int
}

// writer is the goroutine that inserts the appends in groups: one ordered
// InsertMany for everything queued, across conversations and tenants (more
// rounds only after a refused message).
type writer struct {
	s        *Store
	ops      <-chan *appendOp
	maxBatch int
	timeout  time.Duration
	done     chan struct{} // closed when run returns
	hooks    testHooks
}

// run is the writer goroutine. It returns when ops is closed and drained, so
// every op queued before Close is inserted.
func (w *writer) run() {
	defer close(w.done)
	batch := make([]*appendOp, 0, w.maxBatch)
	for {
		first, ok := <-w.ops
		if !ok {
			return
		}
		batch = w.fill(append(batch[:0], first))
		w.commitBatch(batch)
		clear(batch) // let the ops be collected
	}
}

// fill adds whatever is queued to batch, up to maxBatch, without waiting: the
// ops that queued up while the previous batch was being inserted ride along
// in this one. A lone caller never waits for company.
func (w *writer) fill(batch []*appendOp) []*appendOp {
	for len(batch) < w.maxBatch {
		select {
		case o, ok := <-w.ops:
			if !ok {
				return batch // run sees the close on its next receive
			}
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// commitBatch inserts batch and reports each op's result.
func (w *writer) commitBatch(batch []*appendOp) {
	if w.hooks.beforeBatch != nil {
		w.hooks.beforeBatch(len(batch))
	}
	start := time.Now()
	live := make([]*appendOp, 0, len(batch))
	for _, o := range batch {
		o.refusedAt = -1
		if err := o.ctx.Err(); err != nil {
			o.err = err // the caller gave up before the batch: skip it
			continue
		}
		live = append(live, o)
	}
	if len(live) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
		if err := w.insert(ctx, live); err == nil {
			w.s.metrics.CommitSeconds.Observe(time.Since(start).Seconds())
		}
		cancel()
	}
	w.s.metrics.BatchOps.Observe(float64(len(batch)))
	for _, o := range batch {
		w.s.metrics.Ops[storemetrics.OpAppend].Inc()
		close(o.done)
	}
}

// insert checks that the ops' conversations exist and inserts every message
// of the ops that pass, keeping each op's prefix guarantee. It returns an
// error when the whole batch failed.
func (w *writer) insert(ctx context.Context, ops []*appendOp) error {
	if err := w.checkConversations(ctx, ops); err != nil {
		w.s.log.Error("mongo: group commit failed", "ops", len(ops), "err", err)
		for _, o := range ops {
			o.err = err
		}
		return err
	}
	type owner struct {
		o *appendOp
		i int // the message's index in o.docs
	}
	var docs []any
	var owners []owner
	for _, o := range ops {
		if o.err != nil {
			continue
		}
		for i := range o.docs {
			docs = append(docs, &o.docs[i])
			owners = append(owners, owner{o, i})
		}
	}
	// Ordered inserts, in rounds: the server stops at the first refused
	// message, so nothing after it is ever stored, even for a moment (a
	// racing activation that reads the conversation meanwhile must never
	// see a message that is about to be removed: it would number after it
	// and leave a gap). The messages of other ops after the refusal are
	// inserted in the next round; a round costs one round trip, and rounds
	// beyond the first happen only when a message is refused.
	for len(docs) > 0 {
		_, err := w.s.c.messages.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
		if err == nil {
			for _, ow := range owners {
				ow.o.n = ow.i + 1
			}
			return nil
		}
		bwe, isBulk := errors.AsType[mongo.BulkWriteException](err)
		if !isBulk || bwe.WriteConcernError != nil || len(bwe.WriteErrors) != 1 {
			// The outcome is unknown: some messages may be stored, and a
			// write concern error does not say they will stay. Report it; a
			// resend resolves it (see doc.go).
			err = fmt.Errorf("mongo: append: outcome unknown: %w", err)
			w.s.log.Error("mongo: group commit failed", "ops", len(ops), "err", err)
			for _, ow := range owners {
				if ow.o.err == nil {
					ow.o.err = err
				}
			}
			return err
		}
		we := bwe.WriteErrors[0]
		for _, ow := range owners[:we.Index] { // stored before the refusal
			ow.o.n = ow.i + 1
		}
		bad := owners[we.Index]
		bad.o.n = bad.i
		if we.HasErrorCode(11000) {
			bad.o.refusedAt = bad.i
		} else {
			bad.o.err = fmt.Errorf("mongo: append %s/%s seq %d: %w", bad.o.tenant, bad.o.conv, bad.o.docs[bad.i].Seq, we.WriteError)
		}
		// The next round: what followed the refusal, less the rest of the
		// refused op, which must not be stored after its failed message.
		nextDocs, nextOwners := docs[:0:0], owners[:0:0]
		for x := we.Index + 1; x < len(owners); x++ {
			if owners[x].o != bad.o {
				nextDocs = append(nextDocs, docs[x])
				nextOwners = append(nextOwners, owners[x])
			}
		}
		docs, owners = nextDocs, nextOwners
	}
	return nil
}

// checkConversations fails, with engine.ErrNotFound, each op whose
// conversation does not exist. One query serves the whole batch; the
// conversations already known to exist are not asked for.
func (w *writer) checkConversations(ctx context.Context, ops []*appendOp) error {
	exists := map[*appendOp]bool{}
	byTenant := map[string][]string{}
	for _, o := range ops {
		if w.s.known.has(o.tenant, o.conv) {
			exists[o] = true
		} else {
			byTenant[o.tenant] = append(byTenant[o.tenant], o.conv)
		}
	}
	if len(byTenant) > 0 {
		var or bson.A
		for tenant, convs := range byTenant {
			or = append(or, bson.D{{Key: "tenant", Value: tenant}, {Key: "id", Value: bson.D{{Key: "$in", Value: convs}}}})
		}
		// conversations_by_id serves each clause.
		cur, err := w.s.c.conversations.Find(ctx, bson.D{{Key: "$or", Value: or}},
			options.Find().SetProjection(bson.D{{Key: "_id", Value: 0}, {Key: "tenant", Value: 1}, {Key: "id", Value: 1}}))
		if err != nil {
			return fmt.Errorf("mongo: append: look up conversations: %w", err)
		}
		var found []conversationDoc
		if err := cur.All(ctx, &found); err != nil {
			return fmt.Errorf("mongo: append: look up conversations: %w", err)
		}
		got := map[string]bool{}
		for _, c := range found {
			got[knownKey(c.Tenant, c.ID)] = true
			w.s.known.add(c.Tenant, c.ID)
		}
		for _, o := range ops {
			if got[knownKey(o.tenant, o.conv)] {
				exists[o] = true
			}
		}
	}
	for _, o := range ops {
		if !exists[o] {
			o.err = fmt.Errorf("mongo: append: conversation %s/%s: %w", o.tenant, o.conv, engine.ErrNotFound)
		}
	}
	return nil
}
