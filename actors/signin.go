package actors

import (
	"context"
	"crypto/subtle"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/auth"
	"github.com/kefu-dev/kefu/engine"
)

// A member of staff's agent actor is the single writer of their sign-in
// state: sessions (refresh tokens), the failed-login count and the
// password. Logins, refreshes, session checks, logouts and password
// changes of one account are therefore serialised, the lockout count
// cannot be raced past, and revoking a session reaches every socket opened
// under it, because those sockets registered here as devices.

// Results of sign-in work done off the mailbox.
type (
	passwordCheckedMsg struct {
		sender *actor.PID
		m      *actorpb.Authenticate
		ok     bool
	}
	passwordChangeMsg struct {
		sender *actor.PID
		caller Caller
		hash   string // the new password's hash; empty when refused
		err    *engine.Error
	}
)

var (
	errDenied      = engine.NewError(engine.CodeUnauthenticated, "wrong username or password")
	errSessionGone = engine.NewError(engine.CodeUnauthenticated, "the session was revoked or has expired; sign in again")
	errTryAgain    = engine.NewError(engine.CodeUnavailable, "try again")
)

// persist queues a write of sign-in state behind the earlier ones, so the
// store sees them in the order they were made; then runs once it is done
// (a failure is logged), even if the actor is stopping (writes.go).
func (a *agentActor) persist(ctx actor.Context, run func(context.Context) error, then func(ctx actor.Context, err error)) {
	a.credWrites.add(ctx, storeWrite{what: "sign-in state", start: func() func(context.Context) error { return run }, then: then})
}

func (a *agentActor) saveLoginState(ctx actor.Context) {
	ls, st := a.login, a.d.Store
	a.persist(ctx, func(c context.Context) error { return st.PutLoginState(c, ls) }, nil)
}

func (a *agentActor) saveSession(ctx actor.Context, s engine.StaffSession, then func(ctx actor.Context, err error)) {
	st := a.d.Store
	a.persist(ctx, func(c context.Context) error { return st.PutSession(c, s) }, then)
}

// authenticate checks a password, unless the account is locked. The
// argon2id check runs off the mailbox, at most one per core on the node.
func (a *agentActor) authenticate(ctx actor.Context, sender *actor.PID, m *actorpb.Authenticate) {
	if a.missing {
		reply(ctx, sender, &actorpb.LoginResponse{Error: errToPB(errDenied)})
		return
	}
	now := a.d.Clock.Now()
	if now.Before(a.login.LockedUntil) {
		a.audit(ctx, engine.AuditLoginFailed, m.Ip, "account locked")
		reply(ctx, sender, &actorpb.LoginResponse{Error: errToPB(lockedError(a.login.LockedUntil))})
		return
	}
	select {
	case passwordChecks <- struct{}{}:
	default:
		reply(ctx, sender, &actorpb.LoginResponse{Error: errToPB(engine.NewError(engine.CodeRateLimited, "too many logins at once; try again shortly"))})
		return
	}
	hash := a.staff.PasswordHash
	async(ctx, a.d.StoreTimeout, func(context.Context) any {
		defer func() { <-passwordChecks }()
		ok, err := auth.VerifyPassword(hash, m.Password)
		return &passwordCheckedMsg{sender: sender, m: m, ok: ok && err == nil}
	})
}

func lockedError(until time.Time) *engine.Error {
	return engine.Errorf(engine.CodeAccountLocked, "too many failed logins: the account is locked until %s", until.UTC().Format(time.RFC3339))
}

func (a *agentActor) onPasswordChecked(ctx actor.Context, r *passwordCheckedMsg) {
	now := a.d.Clock.Now()
	if !r.ok {
		a.audit(ctx, engine.AuditLoginFailed, r.m.Ip, "wrong password")
		if now.Before(a.login.LockedUntil) { // locked by a concurrent attempt
			reply(ctx, r.sender, &actorpb.LoginResponse{Error: errToPB(errDenied)})
			return
		}
		a.login.FailedLogins++
		resp := errDenied
		if a.login.FailedLogins >= a.d.SignIn.LockoutThreshold {
			a.login.FailedLogins, a.login.LockedUntil = 0, now.Add(a.d.SignIn.LockoutDuration)
			resp = lockedError(a.login.LockedUntil)
			a.accountLocked(ctx, r.m.Ip)
		}
		a.saveLoginState(ctx)
		reply(ctx, r.sender, &actorpb.LoginResponse{Error: errToPB(resp)})
		return
	}
	if a.login.FailedLogins > 0 {
		a.login.FailedLogins = 0
		a.saveLoginState(ctx)
	}
	secret := auth.GenerateSecret(32)
	s := engine.StaffSession{
		Tenant: a.tenant, StaffID: a.id, ID: engine.NewID(now), RefreshHash: auth.HashSecret(secret),
		CreatedAt: now, ExpiresAt: now.Add(a.d.SignIn.RefreshTTL), IP: r.m.Ip, UserAgent: r.m.UserAgent,
	}
	a.saveSession(ctx, s, func(ctx actor.Context, err error) {
		if err != nil {
			reply(ctx, r.sender, &actorpb.LoginResponse{Error: errToPB(errTryAgain)})
			return
		}
		a.sessions[s.ID] = &s
		a.audit(ctx, engine.AuditLoginSucceeded, r.m.Ip, "")
		reply(ctx, r.sender, a.signedIn(s, secret))
	})
}

// noticeAccountLocked is the kind of the alert supervisors get when an
// account locks.
const noticeAccountLocked = "account_locked"

// accountLocked raises an alert to the tenant's supervisors and records it.
func (a *agentActor) accountLocked(ctx actor.Context, ip string) {
	a.audit(ctx, engine.AuditAccountLocked, ip, "locked until "+a.login.LockedUntil.UTC().Format(time.RFC3339))
	tell(ctx, KindTenant, a.tenant, &actorpb.Notice{
		Kind: noticeAccountLocked, AgentId: a.id,
		Text: "account " + a.staff.Username + " is locked after repeated failed logins",
	})
}

func (a *agentActor) signedIn(s engine.StaffSession, secret string) *actorpb.LoginResponse {
	rt := auth.RefreshToken{Tenant: a.tenant, StaffID: a.id, Session: s.ID, Secret: secret}
	return &actorpb.LoginResponse{
		Staff:     &actorpb.StaffInfo{Id: a.staff.ID, Username: a.staff.Username, DisplayName: a.staff.DisplayName, Role: string(a.staff.Role)},
		SessionId: s.ID, RefreshToken: rt.String(), RefreshExpiresMs: s.ExpiresAt.UnixMilli(),
	}
}

// refresh trades a refresh token for the next one. A token that was
// already traded means two parties hold it: the session is revoked.
func (a *agentActor) refresh(ctx actor.Context, sender *actor.PID, m *actorpb.RefreshSession) {
	now := a.d.Clock.Now()
	s := a.sessions[m.SessionId]
	if a.missing || s == nil || !s.Active(now) {
		reply(ctx, sender, &actorpb.LoginResponse{Error: errToPB(errSessionGone)})
		return
	}
	h := auth.HashSecret(m.Secret)
	switch {
	case subtle.ConstantTimeCompare([]byte(h), []byte(s.RefreshHash)) == 1:
	case s.PrevHash != "" && subtle.ConstantTimeCompare([]byte(h), []byte(s.PrevHash)) == 1:
		a.audit(ctx, engine.AuditSessionsRevoked, m.Ip, "a used refresh token was presented again")
		a.revoke(ctx, []string{s.ID}, "the session's refresh token was used twice", func(actor.Context) {
			reply(ctx, sender, &actorpb.LoginResponse{Error: errToPB(errSessionGone)})
		})
		return
	default:
		reply(ctx, sender, &actorpb.LoginResponse{Error: errToPB(errSessionGone)})
		return
	}
	secret := auth.GenerateSecret(32)
	next := *s
	next.PrevHash, next.RefreshHash, next.RefreshedAt = s.RefreshHash, auth.HashSecret(secret), now
	a.sessions[s.ID] = &next // at once: a second use of the old token is reuse
	a.saveSession(ctx, next, func(ctx actor.Context, err error) {
		if err != nil {
			// The client never got the new token: its retry with the old
			// one is not a reuse. Unless something replaced the session
			// meanwhile (a revocation), the old token stays the valid one.
			if a.sessions[s.ID] == &next {
				a.sessions[s.ID] = s
			}
			reply(ctx, sender, &actorpb.LoginResponse{Error: errToPB(errTryAgain)})
			return
		}
		reply(ctx, sender, a.signedIn(next, secret))
	})
}

// checkSession answers whether a session still authorises its tokens,
// with the account's current role and groups: a role changed since the
// token was issued applies at once.
func (a *agentActor) checkSession(ctx actor.Context, sender *actor.PID, m *actorpb.CheckSession) {
	s := a.sessions[m.SessionId]
	if a.missing || s == nil || !s.Active(a.d.Clock.Now()) {
		reply(ctx, sender, &actorpb.CheckSessionResponse{Error: errToPB(errSessionGone)})
		return
	}
	reply(ctx, sender, &actorpb.CheckSessionResponse{Role: string(a.staff.Role), Groups: a.profile.Groups()})
}

// logout revokes the caller's session, or every session of the account.
// An admin may sign anyone of the tenant out of everywhere.
func (a *agentActor) logout(ctx actor.Context, sender *actor.PID, m *actorpb.Logout) {
	caller := callerFromPB(m.Caller)
	self := caller.Tenant == a.tenant && caller.Party.ID == a.id
	admin := caller.Tenant == a.tenant && caller.StaffRole == engine.StaffAdmin
	if a.missing {
		reply(ctx, sender, &actorpb.LogoutResponse{Error: errToPB(engine.NewError(engine.CodeNotFound, "no such member of staff"))})
		return
	}
	if !self && !(admin && m.All) {
		reply(ctx, sender, &actorpb.LogoutResponse{Error: errToPB(engine.NewError(engine.CodeForbidden, "only an admin may sign others out"))})
		return
	}
	ids := []string{m.SessionId}
	if m.All {
		ids = a.activeSessions()
	}
	detail := "signed out"
	if m.All {
		detail = "signed out everywhere"
	}
	a.audit(ctx, engine.AuditLogout, caller.IP, detail)
	a.revoke(ctx, ids, "signed out", func(ctx actor.Context) { reply(ctx, sender, &actorpb.LogoutResponse{}) })
}

func (a *agentActor) activeSessions() []string {
	now := a.d.Clock.Now()
	var ids []string
	for id, s := range a.sessions {
		if s.Active(now) {
			ids = append(ids, id)
		}
	}
	return ids
}

// revoke ends sessions at once, in memory, so no request is authorised by
// them from now on, closes the sockets opened under them, and stores the
// revocations; done runs once they are stored (or failed to be: the
// sessions stay revoked here, and a retry of the request stores them).
func (a *agentActor) revoke(ctx actor.Context, ids []string, reason string, done func(ctx actor.Context)) {
	now := a.d.Clock.Now()
	gone := make(map[string]bool, len(ids))
	var writes []engine.StaffSession
	for _, id := range ids {
		if s := a.sessions[id]; s != nil && s.RevokedAt.IsZero() {
			next := *s
			next.RevokedAt = now
			a.sessions[id] = &next
			writes = append(writes, next)
		}
		gone[id] = true
	}
	closed := false
	for key, pid := range a.devices {
		if gone[a.deviceSessions[key]] {
			ctx.Send(pid, &actorpb.SessionRevoked{Reason: reason})
			delete(a.devices, key)
			delete(a.deviceSessions, key)
			ctx.Unwatch(pid)
			closed = true
		}
	}
	if closed { // presence may have changed; otherwise queues need not hear
		a.changed(ctx)
	}
	if len(writes) == 0 {
		done(ctx)
		return
	}
	st := a.d.Store
	a.persist(ctx, func(c context.Context) error {
		for _, s := range writes {
			if err := st.PutSession(c, s); err != nil {
				return err
			}
		}
		return nil
	}, func(ctx actor.Context, _ error) { done(ctx) })
}

// Bounds of a password.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 1024
)

// changePassword sets a new password and revokes every session. The
// account's owner proves the current password; an admin of the tenant
// resets another's without it.
func (a *agentActor) changePassword(ctx actor.Context, sender *actor.PID, m *actorpb.ChangePassword) {
	caller := callerFromPB(m.Caller)
	self := caller.Tenant == a.tenant && caller.Party.ID == a.id
	admin := caller.Tenant == a.tenant && caller.StaffRole == engine.StaffAdmin
	fail := func(e *engine.Error) { reply(ctx, sender, &actorpb.ChangePasswordResponse{Error: errToPB(e)}) }
	switch {
	case a.missing:
		fail(engine.NewError(engine.CodeNotFound, "no such member of staff"))
		return
	case !self && !admin:
		fail(engine.NewError(engine.CodeForbidden, "only the account's owner or an admin may set its password"))
		return
	case len(m.NewPassword) < MinPasswordLen || len(m.NewPassword) > MaxPasswordLen:
		fail(engine.Errorf(engine.CodeInvalidField, "a password is %d to %d bytes", MinPasswordLen, MaxPasswordLen))
		return
	}
	select {
	case passwordChecks <- struct{}{}:
	default:
		fail(engine.NewError(engine.CodeRateLimited, "too many password checks at once; try again shortly"))
		return
	}
	hash, checkCurrent := a.staff.PasswordHash, self
	async(ctx, a.d.StoreTimeout, func(context.Context) any {
		defer func() { <-passwordChecks }()
		if checkCurrent {
			if ok, err := auth.VerifyPassword(hash, m.CurrentPassword); err != nil || !ok {
				return &passwordChangeMsg{sender: sender, caller: caller, err: engine.NewError(engine.CodeForbidden, "the current password is wrong")}
			}
		}
		next, err := auth.HashPassword(m.NewPassword)
		if err != nil {
			return &passwordChangeMsg{sender: sender, caller: caller, err: errTryAgain}
		}
		return &passwordChangeMsg{sender: sender, caller: caller, hash: next}
	})
}

func (a *agentActor) onPasswordChange(ctx actor.Context, r *passwordChangeMsg) {
	if r.err != nil {
		reply(ctx, r.sender, &actorpb.ChangePasswordResponse{Error: errToPB(r.err)})
		return
	}
	staff, st := a.staff, a.d.Store
	staff.PasswordHash = r.hash
	a.persist(ctx, func(c context.Context) error { return st.UpdateStaff(c, staff) }, func(ctx actor.Context, err error) {
		if err != nil {
			reply(ctx, r.sender, &actorpb.ChangePasswordResponse{Error: errToPB(errTryAgain)})
			return
		}
		a.staff = staff
		a.login = engine.LoginState{Tenant: a.tenant, StaffID: a.id}
		a.saveLoginState(ctx)
		a.audit(ctx, engine.AuditPasswordChanged, r.caller.IP, "by "+r.caller.Party.ID)
		a.revoke(ctx, a.activeSessions(), "the password was changed", func(ctx actor.Context) {
			reply(ctx, r.sender, &actorpb.ChangePasswordResponse{})
		})
	})
}

// connectDevice registers a staff socket, unless its session is no longer
// active: then the socket is told so and closes.
func (a *agentActor) connectDevice(ctx actor.Context, m *actorpb.AgentConnect) {
	pid := pidFromRef(m.Device)
	if pid == nil || a.missing {
		return
	}
	if s := a.sessions[m.SessionId]; s == nil || !s.Active(a.d.Clock.Now()) {
		ctx.Send(pid, &actorpb.SessionRevoked{Reason: "the session was revoked or has expired"})
		return
	}
	a.devices[pid.String()] = pid
	a.deviceSessions[pid.String()] = m.SessionId
	ctx.Watch(pid)
	ctx.Request(pid, &actorpb.Registered{Kind: KindAgent}) // from this activation: the session watches it
	a.changed(ctx)
}

// audit records what happened to this account in the tenant's audit log.
func (a *agentActor) audit(ctx actor.Context, action engine.AuditAction, ip, detail string) {
	e := engine.AuditEntry{Actor: engine.Party{Role: engine.RoleAgent, ID: a.id}, IP: ip, Action: action,
		Target: a.id, Detail: detail, At: a.d.Clock.Now()}
	tell(ctx, KindTenant, a.tenant, &actorpb.AppendAudit{Entries: []*actorpb.AuditEntry{auditToPB(e)}})
}
