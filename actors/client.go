package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/engine"
)

// Client is the edge's narrow way into the cluster: it never touches a
// database, only actors. It is safe for concurrent use.
type Client struct {
	system  *actor.ActorSystem
	cluster *cluster.Cluster
	routes  *routes
	timeout time.Duration
	log     *slog.Logger
}

// NewClient returns a client of the member c. timeout bounds one request.
// Make the first client of a member before it joins: from then on the
// member follows the cluster's topology, so that requests to a member that
// died or left fail over at once instead of waiting their timeout.
func NewClient(c *cluster.Cluster, timeout time.Duration, logger *slog.Logger) *Client {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{system: c.ActorSystem, cluster: c, routes: routesFor(c), timeout: timeout, log: logger}
}

// ErrUnavailable is returned, wrapped, when the cluster does not answer.
var ErrUnavailable = engine.NewError(engine.CodeUnavailable, "the service did not answer in time; try again")

// request sends msg to a virtual actor and waits for its reply. A request
// that finds the activation gone (a dead letter: it was never delivered)
// is retried on a fresh lookup. An idempotent request (reads, and creates
// keyed by id) is also retried after a timeout, and at once when the
// member it went to leaves the cluster. A write is not: a timeout does not
// say whether it was applied, and a member that leaves gracefully still
// answers what it received, so a write waits for its answer or its
// timeout.
func (c *Client) request(ctx context.Context, kind, identity string, msg any) (any, error) {
	return c.call(ctx, kind, identity, msg, true)
}

// write is request for a message that must not be applied twice.
func (c *Client) write(ctx context.Context, kind, identity string, msg any) (any, error) {
	return c.call(ctx, kind, identity, msg, false)
}

func (c *Client) call(ctx context.Context, kind, identity string, msg any, idempotent bool) (any, error) {
	timeout := c.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	var lastErr error
	for attempt := range 3 {
		if attempt > 0 && !errors.Is(lastErr, errMemberLeft) {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
			case <-time.After(time.Duration(attempt*attempt) * 50 * time.Millisecond):
			}
		}
		pid, _ := c.cluster.PidCache.Get(identity, kind)
		if pid == nil {
			var err error
			if pid, err = c.routes.resolve(identity, kind, timeout); err != nil {
				lastErr = err
				continue
			}
			c.cluster.PidCache.Set(identity, kind, pid)
		}
		f := c.system.Root.RequestFuture(pid, msg, timeout)
		var res any
		var err error
		if idempotent {
			res, err = c.routes.await(f, pid.Address)
		} else {
			res, err = f.Result()
		}
		if err == nil {
			return res, nil
		}
		lastErr = err
		c.cluster.PidCache.RemoveByValue(identity, kind, pid)
		if !errors.Is(err, actor.ErrDeadLetter) && !(idempotent && (errors.Is(err, actor.ErrTimeout) || errors.Is(err, errMemberLeft))) {
			break
		}
	}
	c.log.Warn("cluster request failed", "kind", kind, "identity", identity, "err", lastErr)
	return nil, fmt.Errorf("%w (%v)", ErrUnavailable, lastErr)
}

// CreateConversation opens a new conversation for the calling customer.
func (c *Client) CreateConversation(ctx context.Context, caller Caller) (engine.Conversation, error) {
	id := engine.NewID(time.Now())
	res, err := c.request(ctx, KindConversation, ConversationIdentity(caller.Tenant, id), &actorpb.CreateConversation{Caller: callerToPB(caller)})
	if err != nil {
		return engine.Conversation{}, err
	}
	resp := res.(*actorpb.ConversationResponse)
	if err := errFromPB(resp.Error); err != nil {
		return engine.Conversation{}, err
	}
	return ConversationFromPB(resp.Conversation), nil
}

// HistoryPage is one page of a conversation's messages.
type HistoryPage struct {
	Messages []engine.Message     `json:"messages"`
	More     bool                 `json:"more"`
	LastSeq  int64                `json:"last_seq"`
	State    engine.ConvState     `json:"state"`
	Read     []engine.ReadPointer `json:"read"`
}

// History returns up to limit messages after afterSeq.
func (c *Client) History(ctx context.Context, caller Caller, conv string, afterSeq int64, limit int) (HistoryPage, error) {
	req := &actorpb.Resume{Caller: callerToPB(caller), LastSeq: afterSeq, Limit: int32(limit)}
	res, err := c.request(ctx, KindConversation, ConversationIdentity(caller.Tenant, conv), req)
	if err != nil {
		return HistoryPage{}, err
	}
	resp := res.(*actorpb.ResumeResponse)
	if err := errFromPB(resp.Error); err != nil {
		return HistoryPage{}, err
	}
	page := HistoryPage{More: resp.More, LastSeq: resp.LastSeq, State: engine.ConvState(resp.State),
		Messages: make([]engine.Message, len(resp.Messages)), Read: make([]engine.ReadPointer, len(resp.Read))}
	for i, m := range resp.Messages {
		page.Messages[i] = messageFromPB(caller.Tenant, m)
	}
	for i, rp := range resp.Read {
		page.Read[i] = engine.ReadPointer{Party: partyFromPB(rp.By), Seq: rp.Seq}
	}
	return page, nil
}

// SignIn is a member of staff's signed-in session.
type SignIn struct {
	Staff            engine.Staff
	Session          string // the sid of the access tokens to issue
	RefreshToken     string
	RefreshExpiresAt time.Time
}

func signInFromPB(tenant string, resp *actorpb.LoginResponse) (SignIn, error) {
	if err := errFromPB(resp.Error); err != nil {
		return SignIn{}, err
	}
	s := resp.Staff
	return SignIn{
		Staff:   engine.Staff{Tenant: tenant, ID: s.Id, Username: s.Username, DisplayName: s.DisplayName, Role: engine.StaffRole(s.Role)},
		Session: resp.SessionId, RefreshToken: resp.RefreshToken, RefreshExpiresAt: time.UnixMilli(resp.RefreshExpiresMs).UTC(),
	}, nil
}

// Login checks a member of staff's password and opens a session. ip and
// userAgent describe the client, for the session list and the audit log.
func (c *Client) Login(ctx context.Context, tenant, username, password, ip, userAgent string) (SignIn, error) {
	res, err := c.write(ctx, KindTenant, tenant, &actorpb.Login{Username: username, Password: password, Ip: ip, UserAgent: userAgent})
	if err != nil {
		return SignIn{}, err
	}
	return signInFromPB(tenant, res.(*actorpb.LoginResponse))
}

// Refresh trades a refresh token (auth.RefreshToken's parts) for the next
// one. Presenting a token that was already traded revokes the session.
func (c *Client) Refresh(ctx context.Context, tenant, staffID, session, secret, ip string) (SignIn, error) {
	res, err := c.write(ctx, KindAgent, AgentIdentity(tenant, staffID), &actorpb.RefreshSession{SessionId: session, Secret: secret, Ip: ip})
	if err != nil {
		return SignIn{}, err
	}
	return signInFromPB(tenant, res.(*actorpb.LoginResponse))
}

// CheckSession returns the caller, whose token names a staff session, with
// the account's current role and groups, or CodeUnauthenticated when the
// session was revoked or has expired.
func (c *Client) CheckSession(ctx context.Context, caller Caller) (Caller, error) {
	res, err := c.request(ctx, KindAgent, AgentIdentity(caller.Tenant, caller.Party.ID), &actorpb.CheckSession{SessionId: caller.Session})
	if err != nil {
		return Caller{}, err
	}
	resp := res.(*actorpb.CheckSessionResponse)
	if err := errFromPB(resp.Error); err != nil {
		return Caller{}, err
	}
	caller.StaffRole, caller.Groups = engine.StaffRole(resp.Role), resp.Groups
	return caller, nil
}

// Logout revokes the caller's session, or with all every session of the
// account staffID (the caller's own, or anyone's for an admin), and closes
// the sockets opened under them.
func (c *Client) Logout(ctx context.Context, caller Caller, staffID string, all bool) error {
	res, err := c.request(ctx, KindAgent, AgentIdentity(caller.Tenant, staffID), &actorpb.Logout{Caller: callerToPB(caller), SessionId: caller.Session, All: all})
	if err != nil {
		return err
	}
	return errFromPB(res.(*actorpb.LogoutResponse).Error)
}

// ChangePassword sets staffID's password and revokes all their sessions.
// The account's owner gives the current password; an admin need not.
func (c *Client) ChangePassword(ctx context.Context, caller Caller, staffID, current, next string) error {
	res, err := c.write(ctx, KindAgent, AgentIdentity(caller.Tenant, staffID), &actorpb.ChangePassword{Caller: callerToPB(caller), CurrentPassword: current, NewPassword: next})
	if err != nil {
		return err
	}
	return errFromPB(res.(*actorpb.ChangePasswordResponse).Error)
}

// UserIdentity checks a customer's proof of identity (see
// actorpb.UserIdentity) and returns their user id.
func (c *Client) UserIdentity(ctx context.Context, tenant string, proof *actorpb.UserIdentity) (string, error) {
	res, err := c.request(ctx, KindTenant, tenant, proof)
	if err != nil {
		return "", err
	}
	resp := res.(*actorpb.UserIdentityResponse)
	return resp.UserId, errFromPB(resp.Error)
}

// CheckTenant returns nil if the tenant exists.
func (c *Client) CheckTenant(ctx context.Context, tenant string) error {
	res, err := c.request(ctx, KindTenant, tenant, &actorpb.CheckTenant{})
	if err != nil {
		return err
	}
	return errFromPB(res.(*actorpb.CheckTenantResponse).Error)
}

// ListConversations lists the tenant's conversations for a member of staff.
func (c *Client) ListConversations(ctx context.Context, caller Caller, q engine.ConversationQuery) ([]engine.Conversation, error) {
	req := &actorpb.ListConversations{Caller: callerToPB(caller), State: string(q.State), Limit: int32(q.Limit), AgentId: q.AgentID,
		InvitedId: q.InvitedID, Group: q.Group}
	if !q.Before.IsZero() {
		req.BeforeMs = q.Before.UnixMilli()
	}
	res, err := c.request(ctx, KindTenant, caller.Tenant, req)
	if err != nil {
		return nil, err
	}
	resp := res.(*actorpb.ListConversationsResponse)
	if err := errFromPB(resp.Error); err != nil {
		return nil, err
	}
	out := make([]engine.Conversation, len(resp.Conversations))
	for i, conv := range resp.Conversations {
		out[i] = ConversationFromPB(conv)
	}
	return out, nil
}

// Session is the handle of one connected client's session actor.
type Session struct {
	pid  *actor.PID
	root *actor.RootContext
}

// StartSession spawns the session actor of a newly authenticated socket.
func (c *Client) StartSession(caller Caller, out Outbox) *Session {
	props := actor.PropsFromProducer(func() actor.Actor {
		return &sessionActor{caller: caller, out: out, cl: c.cluster, routes: c.routes, timeout: c.timeout, log: c.log, links: make(map[string]*convLink)}
	})
	return &Session{pid: c.system.Root.Spawn(props), root: c.system.Root}
}

// Deliver hands a validated client frame to the session. It never blocks.
func (s *Session) Deliver(f engine.ClientFrame) { s.root.Send(s.pid, &inbound{frame: f}) }

// Stop ends the session; its subscriptions are dropped.
func (s *Session) Stop() { s.root.Stop(s.pid) }

// KBEntries returns the tenant's knowledge base as kb JSON.
func (c *Client) KBEntries(ctx context.Context, caller Caller) ([]byte, error) {
	res, err := c.request(ctx, KindTenant, caller.Tenant, &actorpb.KBList{Caller: callerToPB(caller)})
	if err != nil {
		return nil, err
	}
	resp := res.(*actorpb.KBListResponse)
	return resp.EntriesJson, errFromPB(resp.Error)
}

// KBPut creates or replaces entries (kb JSON); with replace, the others are
// deleted. It returns how many entries were written.
func (c *Client) KBPut(ctx context.Context, caller Caller, entriesJSON []byte, replace bool) (int, error) {
	res, err := c.write(ctx, KindTenant, caller.Tenant, &actorpb.KBPut{Caller: callerToPB(caller), EntriesJson: entriesJSON, Replace: replace})
	if err != nil {
		return 0, err
	}
	resp := res.(*actorpb.KBPutResponse)
	return int(resp.Count), errFromPB(resp.Error)
}

// KBDelete deletes one entry.
func (c *Client) KBDelete(ctx context.Context, caller Caller, id string) error {
	res, err := c.write(ctx, KindTenant, caller.Tenant, &actorpb.KBDelete{Caller: callerToPB(caller), Id: id})
	if err != nil {
		return err
	}
	return errFromPB(res.(*actorpb.KBDeleteResponse).Error)
}

// AssistSuggestion is a knowledge-base answer offered to an agent.
type AssistSuggestion struct {
	EntryID    string  `json:"entry_id"`
	Question   string  `json:"question"`
	Answer     string  `json:"answer"`
	Confidence float64 `json:"confidence"`
}

// Assist returns the best knowledge-base answers for the conversation's
// latest customer message, and that message.
func (c *Client) Assist(ctx context.Context, caller Caller, conv string, limit int) (string, []AssistSuggestion, error) {
	res, err := c.request(ctx, KindConversation, ConversationIdentity(caller.Tenant, conv), &actorpb.Assist{Caller: callerToPB(caller), Limit: int32(limit)})
	return assistFrom(res, err)
}

// KBSearch returns the best knowledge-base answers to a member of staff's
// free query, found as Assist finds them; none is an empty slice.
func (c *Client) KBSearch(ctx context.Context, caller Caller, query string, limit int) ([]AssistSuggestion, error) {
	res, err := c.request(ctx, KindTenant, caller.Tenant, &actorpb.KBSearch{Caller: callerToPB(caller), Query: query, Limit: int32(limit)})
	_, out, err := assistFrom(res, err)
	return out, err
}

// assistFrom reads an AssistResponse: the query and the suggestions.
func assistFrom(res any, err error) (string, []AssistSuggestion, error) {
	if err != nil {
		return "", nil, err
	}
	resp := res.(*actorpb.AssistResponse)
	if err := errFromPB(resp.Error); err != nil {
		return "", nil, err
	}
	out := make([]AssistSuggestion, len(resp.Suggestions))
	for i, s := range resp.Suggestions {
		out[i] = AssistSuggestion{EntryID: s.EntryId, Question: s.Question, Answer: s.Answer, Confidence: s.Confidence}
	}
	return resp.Query, out, nil
}

// Op runs a lifecycle operation (OpAccept, OpTransfer, ...) on a
// conversation and returns it afterwards. Operations are not retried after
// a timeout: whether one was applied is then unknown.
func (c *Client) Op(ctx context.Context, caller Caller, conv string, op *actorpb.ConvOp) (engine.Conversation, error) {
	op.Caller = callerToPB(caller)
	res, err := c.write(ctx, KindConversation, ConversationIdentity(caller.Tenant, conv), op)
	if err != nil {
		return engine.Conversation{}, err
	}
	resp := res.(*actorpb.ConvOpResponse)
	if err := errFromPB(resp.Error); err != nil {
		return engine.Conversation{}, err
	}
	return ConversationFromPB(resp.Conversation), nil
}

// AddNote stores a private note on a conversation.
func (c *Client) AddNote(ctx context.Context, caller Caller, conv, text string) (engine.Note, error) {
	res, err := c.write(ctx, KindConversation, ConversationIdentity(caller.Tenant, conv), &actorpb.AddNote{Caller: callerToPB(caller), Text: text})
	if err != nil {
		return engine.Note{}, err
	}
	resp := res.(*actorpb.AddNoteResponse)
	if err := errFromPB(resp.Error); err != nil {
		return engine.Note{}, err
	}
	return NoteFromPB(conv, resp.Note), nil
}

// Notes returns a conversation's private notes.
func (c *Client) Notes(ctx context.Context, caller Caller, conv string) ([]engine.Note, error) {
	res, err := c.request(ctx, KindConversation, ConversationIdentity(caller.Tenant, conv), &actorpb.ListNotes{Caller: callerToPB(caller)})
	if err != nil {
		return nil, err
	}
	resp := res.(*actorpb.ListNotesResponse)
	if err := errFromPB(resp.Error); err != nil {
		return nil, err
	}
	out := make([]engine.Note, len(resp.Notes))
	for i, n := range resp.Notes {
		out[i] = NoteFromPB(conv, n)
	}
	return out, nil
}

// Events returns a conversation's lifecycle events as a JSON array.
func (c *Client) Events(ctx context.Context, caller Caller, conv string) (json.RawMessage, error) {
	res, err := c.request(ctx, KindConversation, ConversationIdentity(caller.Tenant, conv), &actorpb.ListEvents{Caller: callerToPB(caller)})
	if err != nil {
		return nil, err
	}
	resp := res.(*actorpb.ListEventsResponse)
	return resp.EventsJson, errFromPB(resp.Error)
}

// Queue returns a skill group's queue as staff see it, as JSON (QueueView).
func (c *Client) Queue(ctx context.Context, caller Caller, group string) (json.RawMessage, error) {
	res, err := c.request(ctx, KindQueue, QueueIdentity(caller.Tenant, group), &actorpb.QueueSnapshot{Caller: callerToPB(caller)})
	if err != nil {
		return nil, err
	}
	resp := res.(*actorpb.QueueSnapshotResponse)
	return resp.Json, errFromPB(resp.Error)
}

// AgentStatus returns an agent's live status: presence, load, conversations.
func (c *Client) AgentStatus(ctx context.Context, tenant, agent string) (*actorpb.AgentStatus, error) {
	res, err := c.request(ctx, KindAgent, AgentIdentity(tenant, agent), &actorpb.GetAgentStatus{})
	if err != nil {
		return nil, err
	}
	return res.(*actorpb.AgentStatus), nil
}

// Config reads or writes the tenant's routing configuration (see
// TenantConfig): kind and op name the request, body and the result are
// JSON of the engine types.
func (c *Client) Config(ctx context.Context, caller Caller, kind, op, id string, body []byte) (json.RawMessage, error) {
	msg := &actorpb.TenantConfig{Caller: callerToPB(caller), Kind: kind, Op: op, Id: id, Json: body}
	call := c.request
	if op != ConfigGet && op != ConfigList {
		call = c.write
	}
	res, err := call(ctx, KindTenant, caller.Tenant, msg)
	if err != nil {
		return nil, err
	}
	resp := res.(*actorpb.TenantConfigResponse)
	return resp.Json, errFromPB(resp.Error)
}

// RecordAudit appends entries to the tenant's audit log; the tenant actor
// gives each an id and, when At is zero, the time. It returns once the
// actor has queued them, not once they are stored: recording never waits
// for the disk, and a later store failure is logged entry by entry. It is
// not retried after a timeout, which could record an entry twice.
func (c *Client) RecordAudit(ctx context.Context, tenant string, entries ...engine.AuditEntry) error {
	msg := &actorpb.AppendAudit{Entries: make([]*actorpb.AuditEntry, len(entries))}
	for i, e := range entries {
		msg.Entries[i] = auditToPB(e)
	}
	res, err := c.write(ctx, KindTenant, tenant, msg)
	if err != nil {
		return err
	}
	return errFromPB(res.(*actorpb.AppendAuditResponse).Error)
}

// AuditLog reads the caller's tenant's audit log, newest first: admins
// only (forbidden otherwise).
func (c *Client) AuditLog(ctx context.Context, caller Caller, q engine.AuditQuery) ([]engine.AuditEntry, error) {
	req := &actorpb.ListAudit{Caller: callerToPB(caller), Action: string(q.Action), ActorId: q.ActorID, Target: q.Target,
		BeforeMs: msOrZero(q.Before), Limit: int32(q.Limit)}
	res, err := c.request(ctx, KindTenant, caller.Tenant, req)
	if err != nil {
		return nil, err
	}
	resp := res.(*actorpb.ListAuditResponse)
	if err := errFromPB(resp.Error); err != nil {
		return nil, err
	}
	out := make([]engine.AuditEntry, len(resp.Entries))
	for i, e := range resp.Entries {
		out[i] = auditFromPB(caller.Tenant, e)
	}
	return out, nil
}
