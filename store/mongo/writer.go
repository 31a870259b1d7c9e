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

// writer is the goroutine that inserts the appends in groups: one unordered
// InsertMany for everything queued, across conversations and tenants.
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

// insert checks that the ops' conversations exist, inserts every message of
// the ops that pass, and restores each op's prefix guarantee. It returns an
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
	if len(docs) == 0 {
		return nil
	}
	_, err := w.s.c.messages.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	bwe, isBulk := errors.AsType[mongo.BulkWriteException](err)
	switch {
	case err == nil:
		for _, o := range ops {
			if o.err == nil {
				o.n = len(o.docs)
			}
		}
		return nil
	case !isBulk || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0:
		// The outcome is unknown: some messages may be stored, and a
		// write concern error does not say they will stay. Report it; a
		// resend resolves it (see doc.go).
		err = fmt.Errorf("mongo: append: outcome unknown: %w", err)
		w.s.log.Error("mongo: group commit failed", "ops", len(ops), "err", err)
		for _, o := range ops {
			if o.err == nil {
				o.err = err
			}
		}
		return err
	}

	// Some messages were refused, each by itself. An op's first refused
	// message ends its stored prefix; its later messages must not stay.
	refused := make(map[int]mongo.WriteError, len(bwe.WriteErrors))
	for _, we := range bwe.WriteErrors {
		refused[we.Index] = we.WriteError
	}
	var undo []bson.ObjectID
	undoOps := map[*appendOp]bool{}
	for _, o := range ops {
		if o.err == nil {
			o.n = len(o.docs)
		}
	}
	for k, ow := range owners {
		o := ow.o
		we, bad := refused[k]
		switch {
		case ow.i > o.n: // after the op's first refusal
			if !bad {
				undo = append(undo, o.docs[ow.i].ID)
				undoOps[o] = true
			}
		case bad: // the op's first refusal: owners are in op order
			o.n = ow.i
			if we.HasErrorCode(11000) {
				o.refusedAt = ow.i
			} else {
				o.err = fmt.Errorf("mongo: append %s/%s seq %d: %w", o.tenant, o.conv, o.docs[ow.i].Seq, we)
			}
		}
	}
	if len(undo) > 0 {
		if err := w.undo(undo); err != nil {
			err = fmt.Errorf("mongo: append: removing messages stored after a refused one: %w", err)
			w.s.log.Error("mongo: clean-up after refused messages failed", "messages", len(undo), "err", err)
			for o := range undoOps {
				o.err, o.refusedAt = err, -1
			}
		}
	}
	return nil
}

// undo deletes the documents with the given ids, which this writer inserted
// and no caller was told of. It retries a few times: the documents left
// behind would break an op's prefix guarantee.
func (w *writer) undo(ids []bson.ObjectID) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
		_, err = w.s.c.messages.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
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
