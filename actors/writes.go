package actors

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Write-behind, and what happens to it when an actor stops.
//
// An actor that owns state stores it behind its mailbox: the store call
// runs in a goroutine and its result comes back as a message; a queue of
// ordered writes starts the next one only then. When the actor stops (the
// node shuts down, or the cluster moves the activation elsewhere)
// Proto.Actor delivers *actor.Stopping and then *actor.Stopped, and no
// other message reaches it any more: a write's result would be lost, and
// the writes queued behind it never run. So in Stopping the actor finishes
// its writes itself, in order, on its own goroutine: it waits for the one
// running and runs the rest, each bounded by the store timeout, logging
// any that fails. This is the one place an actor blocks its mailbox on the
// store; it is acceptable because the actor is going away and nothing
// waits behind it but its own stop. cluster.Node.Shutdown waits for every
// activation to stop before the process closes the store.

// logFinishing is what an actor logs, at Info, as it starts finishing its
// writes on stop.
const logFinishing = "finishing store writes before stopping"

// errStillRunning ends a write the stopping actor stopped waiting for: its
// store call may still land, but the actor no longer knows.
var errStillRunning = errors.New("actors: the store call was still running when the store timeout passed")

// storeCall is a store call running off the mailbox.
type storeCall[T any] struct {
	done chan struct{}
	res  T // set before done is closed
}

// goStore runs f off the mailbox with a deadline of timeout and delivers
// msg(result) to the actor. The call can also be waited for, by an actor
// that stops before that message reaches it.
func goStore[T any](ctx actor.Context, timeout time.Duration, f func(context.Context) T, msg func(T) any) *storeCall[T] {
	call := &storeCall[T]{done: make(chan struct{})}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		call.res = storeNow(timeout, f)
		close(call.done)
		root.Send(self, msg(call.res))
	}()
	return call
}

// wait waits at most d for the call to end; ok is false if it had not.
func (c *storeCall[T]) wait(d time.Duration) (res T, ok bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return c.res, true
	case <-t.C:
		return res, false
	}
}

// storeNow runs f with a deadline of timeout on the caller's goroutine: off
// the mailbox, or on it only while the actor stops.
func storeNow[T any](timeout time.Duration, f func(context.Context) T) T {
	c, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return f(c)
}

// writeQueue is an actor's ordered store writes of one kind: they run one
// at a time, off the mailbox, in the order they were queued, so the store
// sees them in that order. pending[0] is being (or about to be) written.
// The actor hands each writtenMsg and retryWriteMsg of the queue to it and
// calls finish when it stops.
type writeQueue struct {
	timeout time.Duration // bounds one write
	log     *slog.Logger
	// retry: a failed write is tried again a second later, the later ones
	// waiting behind it. Otherwise the failure is logged and handed to the
	// write's then.
	retry bool
	// hold, if set, keeps the next write from starting while it reports
	// true; whoever ends the hold calls next.
	hold func() bool

	pending  []storeWrite
	busy     bool              // pending[0] is running
	running  *storeCall[error] // its call, while busy
	stopping bool              // finish runs the writes: add only queues
}

// storeWrite is one ordered write. start runs on the mailbox when the
// write's turn comes (a conversation's state change takes the header as it
// is then) and returns the store call; then, if set, runs on the mailbox
// once the write is done. A write without start stores nothing: it is a
// place in the queue whose then runs once the writes before it are done.
type storeWrite struct {
	what  string // for the log
	start func() func(context.Context) error
	then  func(ctx actor.Context, err error)
}

type (
	// writtenMsg reports that q's running write ended.
	writtenMsg struct {
		q   *writeQueue
		err error
	}
	// retryWriteMsg tells q to try its failed write again.
	retryWriteMsg struct{ q *writeQueue }
)

// add queues w behind the earlier writes.
func (q *writeQueue) add(ctx actor.Context, w storeWrite) {
	q.pending = append(q.pending, w)
	q.next(ctx)
}

// afterStored runs f once every write queued so far is done: at once if
// none is.
func (q *writeQueue) afterStored(ctx actor.Context, f func(ctx actor.Context)) {
	if q.idle() {
		f(ctx)
		return
	}
	q.add(ctx, storeWrite{what: "a wait for earlier writes", then: func(ctx actor.Context, _ error) { f(ctx) }})
}

// next starts the oldest write unless one is running.
func (q *writeQueue) next(ctx actor.Context) {
	for !q.busy && !q.stopping && len(q.pending) > 0 {
		if q.hold != nil && q.hold() {
			return
		}
		if q.pending[0].start == nil {
			q.pop(ctx, nil)
			continue
		}
		q.busy = true
		q.running = goStore(ctx, q.timeout, q.pending[0].start(), func(err error) any { return &writtenMsg{q: q, err: err} })
	}
}

// written ends the running write and starts the next.
func (q *writeQueue) written(ctx actor.Context, err error) {
	q.busy, q.running = false, nil
	if err != nil && q.retry {
		q.log.Error("storing "+q.pending[0].what+"; retrying", "err", err)
		later(ctx, time.Second, &retryWriteMsg{q: q})
		return
	}
	q.pop(ctx, err)
	q.next(ctx)
}

// pop removes the oldest write, which ended with err, and runs its then.
func (q *writeQueue) pop(ctx actor.Context, err error) {
	w := q.pending[0]
	q.pending = q.pending[1:]
	if err != nil {
		msg := "storing " + w.what
		if q.stopping {
			msg += " as the actor stopped"
		}
		q.log.Error(msg, "err", err)
	}
	if w.then != nil {
		w.then(ctx, err)
	}
}

// idle reports whether no write is queued or running.
func (q *writeQueue) idle() bool { return !q.busy && len(q.pending) == 0 }

// finish stores what the queue still holds when the actor stops, in order
// (see the top of this file): it waits for the running write, then runs the
// others on the caller's goroutine, the mailbox's. A failed write is tried
// once more if the queue retries. Only for *actor.Stopping.
func (q *writeQueue) finish(ctx actor.Context) {
	if q.idle() {
		return
	}
	q.log.Info(logFinishing, "queued", len(q.pending), "what", q.pending[0].what)
	q.stopping = true
	if q.busy {
		err, ok := q.running.wait(q.timeout)
		q.busy, q.running = false, nil
		switch {
		case !ok:
			q.pop(ctx, errStillRunning)
		case err != nil && q.retry:
			q.log.Error("storing "+q.pending[0].what+"; trying once more as the actor stops", "err", err)
		default:
			q.pop(ctx, err)
		}
	}
	for len(q.pending) > 0 { // a then may queue more
		var err error
		if start := q.pending[0].start; start != nil {
			err = storeNow(q.timeout, start())
		}
		q.pop(ctx, err)
	}
}
