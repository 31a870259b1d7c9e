package storetest

import (
	"context"
	"sync"

	"github.com/kefu-dev/kefu/engine"
)

// Held wraps a store and, while shut, holds the calls the actors make
// behind their mailboxes: a conversation's UpdateConversation and
// SetTimers, an agent's PutSession and PutLoginState. Tests of the
// store's users put it around a real store to keep such writes running for
// as long as they need, without racing them.
type Held struct {
	engine.Store
	mu   sync.Mutex
	gate chan struct{}
}

// Shut holds those calls from now on, until the returned channel is closed.
func (h *Held) Shut() chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gate = make(chan struct{})
	return h.gate
}

// wait returns once the gate is open, or with ctx's error.
func (h *Held) wait(ctx context.Context) error {
	h.mu.Lock()
	gate := h.gate
	h.mu.Unlock()
	return Pass(ctx, gate)
}

// Pass waits for gate to be closed, if there is one, or for ctx to end:
// how a test store holds a call.
func Pass(ctx context.Context, gate chan struct{}) error {
	if gate == nil {
		return nil
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Held) UpdateConversation(ctx context.Context, c engine.Conversation, ev engine.ConvEvent) error {
	if err := h.wait(ctx); err != nil {
		return err
	}
	return h.Store.UpdateConversation(ctx, c, ev)
}

func (h *Held) SetTimers(ctx context.Context, tenant, conv string, changes ...engine.TimerChange) error {
	if err := h.wait(ctx); err != nil {
		return err
	}
	return h.Store.SetTimers(ctx, tenant, conv, changes...)
}

func (h *Held) PutSession(ctx context.Context, s engine.StaffSession) error {
	if err := h.wait(ctx); err != nil {
		return err
	}
	return h.Store.PutSession(ctx, s)
}

func (h *Held) PutLoginState(ctx context.Context, s engine.LoginState) error {
	if err := h.wait(ctx); err != nil {
		return err
	}
	return h.Store.PutLoginState(ctx, s)
}
