package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/auth"
	"github.com/kefu-dev/kefu/engine"
)

// Tenant configuration kinds and operations (TenantConfig).
const (
	ConfigSettings = "settings"
	ConfigGroup    = "group"
	ConfigAgent    = "agent"
	ConfigStaff    = "staff"
	ConfigCustomer = "customer"
	// ConfigCredentials are the tenant's secrets (admins only): put
	// replaces the secrets given, get says which are set, never what.
	ConfigCredentials = "credentials"
	// ConfigCanned are canned responses (tenant_canned.go): list, create,
	// put and delete.
	ConfigCanned = "canned"

	ConfigGet    = "get"
	ConfigList   = "list"
	ConfigPut    = "put"
	ConfigCreate = "create" // with a new id the tenant actor makes
	ConfigDelete = "delete"
	ConfigTag    = "tag"
)

// AgentInfo is a member of staff with their routing profile.
type AgentInfo struct {
	Staff   engine.Staff        `json:"staff"`
	Profile engine.AgentProfile `json:"profile"`
}

// NewStaff is an account to create.
type NewStaff struct {
	Username    string           `json:"username"`
	Password    string           `json:"password"`
	DisplayName string           `json:"display_name"`
	Role        engine.StaffRole `json:"role"`
}

// CredentialsChange sets a tenant's secrets; empty fields stay as they are.
type CredentialsChange struct {
	WeChatAppSecret string `json:"wechat_app_secret"`
	IdentitySecret  string `json:"identity_secret"`
}

// CredentialsStatus says which of the tenant's secrets are set.
type CredentialsStatus struct {
	WeChatAppSecretSet bool      `json:"wechat_app_secret_set"`
	IdentitySecretSet  bool      `json:"identity_secret_set"`
	UpdatedAt          time.Time `json:"updated_at,omitzero"`
}

func credentialsStatus(tc engine.TenantCredentials) CredentialsStatus {
	return CredentialsStatus{WeChatAppSecretSet: tc.WeChatAppSecret != "", IdentitySecretSet: tc.IdentitySecret != "", UpdatedAt: tc.UpdatedAt}
}

// MinIdentitySecretLen is the shortest identity secret accepted: 256 bits
// of base64.
const MinIdentitySecretLen = 32

// CustomerInfo is a customer's profile and their conversations.
type CustomerInfo struct {
	Customer      engine.Customer       `json:"customer"`
	Conversations []engine.Conversation `json:"conversations"`
}

// TagChange adds and removes a customer's tags.
type TagChange struct {
	Add    []string `json:"add"`
	Remove []string `json:"remove"`
}

func configErr(err error) *actorpb.TenantConfigResponse {
	return &actorpb.TenantConfigResponse{Error: errToPB(err)}
}

// config answers a configuration request. Reads run off the mailbox at
// once; writes run one at a time, in order, so read-modify-writes (tags)
// never lose an update.
func (a *tenantActor) config(ctx actor.Context, m *actorpb.TenantConfig) {
	caller := callerFromPB(m.Caller)
	if caller.Tenant != a.tenant || !caller.IsStaff() {
		ctx.Respond(configErr(engine.NewError(engine.CodeForbidden, "staff only")))
		return
	}
	if m.Id != "" && !engine.ValidID(m.Id) {
		ctx.Respond(configErr(engine.NewError(engine.CodeInvalidField, "id is not a valid id")))
		return
	}
	admin := caller.StaffRole == engine.StaffAdmin
	manager := admin || caller.StaffRole == engine.StaffSupervisor
	forbidden := configErr(engine.NewError(engine.CodeForbidden, "your role may not do this"))
	write := m.Op == ConfigPut || m.Op == ConfigCreate || m.Op == ConfigDelete || m.Op == ConfigTag
	switch {
	case write && (m.Kind == ConfigSettings || m.Kind == ConfigStaff) && !admin,
		write && (m.Kind == ConfigGroup || m.Kind == ConfigAgent) && !manager,
		m.Kind == ConfigCustomer && m.Op == ConfigPut && !manager,
		m.Kind == ConfigCredentials && !admin:
		ctx.Respond(forbidden)
		return
	}
	if write {
		a.write(ctx, func(c context.Context) (any, []any) {
			resp, notify, change := a.configWrite(c, m)
			then := make([]any, 0, len(notify)+1)
			for _, n := range notify {
				then = append(then, n)
			}
			if resp.Error == nil && change.Action != "" {
				change.Actor = caller.Party
				then = append(then, &auditMsg{entries: []engine.AuditEntry{change}})
			}
			return resp, then
		})
		return
	}
	a.off(ctx, func(c context.Context) any { return a.configRead(c, m) })
}

// configChanged tells an actor to re-read its configuration.
type configChanged struct{ kind, identity string }

func (a *tenantActor) onConfigChanged(ctx actor.Context, m *configChanged) {
	tell(ctx, m.kind, m.identity, &actorpb.ProfileChanged{})
}

func unavailable(err error, what string, log func(string, ...any)) *actorpb.TenantConfigResponse {
	var e *engine.Error
	switch {
	case errors.As(err, &e):
		return configErr(e)
	case errors.Is(err, engine.ErrNotFound):
		return configErr(engine.NewError(engine.CodeNotFound, "no such "+what))
	case errors.Is(err, engine.ErrExists):
		return configErr(engine.NewError(engine.CodeInvalidField, what+" already exists"))
	}
	log("tenant configuration", "what", what, "err", err)
	return configErr(engine.NewError(engine.CodeUnavailable, "try again"))
}

func jsonResp(v any) *actorpb.TenantConfigResponse {
	b, _ := json.Marshal(v)
	return &actorpb.TenantConfigResponse{Json: b}
}

func (a *tenantActor) configRead(c context.Context, m *actorpb.TenantConfig) *actorpb.TenantConfigResponse {
	st, t, logf := a.d.Store, a.tenant, a.d.Logger.Error
	switch m.Kind + "/" + m.Op {
	case ConfigSettings + "/" + ConfigGet:
		s, err := a.d.Settings.Get(c, t)
		if err != nil {
			return unavailable(err, "settings", logf)
		}
		return jsonResp(s)
	case ConfigGroup + "/" + ConfigList:
		groups, err := st.Groups(c, t)
		if err != nil {
			return unavailable(err, "group", logf)
		}
		if !slices.ContainsFunc(groups, func(g engine.SkillGroup) bool { return g.ID == engine.DefaultGroup }) {
			groups = append([]engine.SkillGroup{{Tenant: t, ID: engine.DefaultGroup, Name: "默认", Policy: engine.PolicyLeastLoad}}, groups...)
		}
		return jsonResp(groups)
	case ConfigAgent + "/" + ConfigList, ConfigAgent + "/" + ConfigGet:
		infos, err := a.agentInfos(c, m.Id)
		if err != nil {
			return unavailable(err, "agent", logf)
		}
		if m.Op == ConfigGet {
			if len(infos) == 0 {
				return unavailable(engine.ErrNotFound, "agent", logf)
			}
			return jsonResp(infos[0])
		}
		return jsonResp(infos)
	case ConfigCredentials + "/" + ConfigGet:
		tc, err := st.TenantCredentials(c, t)
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return unavailable(err, "credentials", logf)
		}
		return jsonResp(credentialsStatus(tc))
	case ConfigCanned + "/" + ConfigList:
		return a.cannedList(c, callerFromPB(m.Caller))
	case ConfigCustomer + "/" + ConfigGet:
		cust, err := st.Customer(c, t, m.Id)
		if errors.Is(err, engine.ErrNotFound) {
			cust, err = engine.Customer{Tenant: t, ID: m.Id, Tags: []string{}}, nil
		}
		if err != nil {
			return unavailable(err, "customer", logf)
		}
		convs, err := st.ListConversations(c, t, engine.ConversationQuery{UserID: m.Id, Limit: 50})
		if err != nil {
			return unavailable(err, "customer", logf)
		}
		if convs == nil {
			convs = []engine.Conversation{}
		}
		return jsonResp(CustomerInfo{Customer: cust, Conversations: convs})
	}
	return configErr(engine.Errorf(engine.CodeInvalidField, "unknown request %s %s", m.Op, m.Kind))
}

// agentInfos lists staff with their profiles (all, or the one with id).
func (a *tenantActor) agentInfos(c context.Context, id string) ([]AgentInfo, error) {
	settings, err := a.d.Settings.Get(c, a.tenant)
	if err != nil {
		return nil, err
	}
	staff, err := a.d.Store.ListStaff(c, a.tenant)
	if err != nil {
		return nil, err
	}
	profiles, err := a.d.Store.AgentProfiles(c, a.tenant)
	if err != nil {
		return nil, err
	}
	out := []AgentInfo{}
	for _, s := range staff {
		if id != "" && s.ID != id {
			continue
		}
		p := engine.DefaultAgentProfile(a.tenant, s.ID, settings.DefaultCapacity)
		if i := slices.IndexFunc(profiles, func(p engine.AgentProfile) bool { return p.ID == s.ID }); i >= 0 {
			p = profiles[i]
		}
		out = append(out, AgentInfo{Staff: s, Profile: p})
	}
	return out, nil
}

// configWrite applies one write and returns the reply, the actors that
// must re-read their configuration and, for the audit log, what changed
// (used only when the reply is not an error and the entry has an action).
func (a *tenantActor) configWrite(c context.Context, m *actorpb.TenantConfig) (*actorpb.TenantConfigResponse, []*configChanged, engine.AuditEntry) {
	st, t, logf, now := a.d.Store, a.tenant, a.d.Logger.Error, a.d.Clock.Now()
	bad := func(err error) *actorpb.TenantConfigResponse {
		return configErr(engine.Errorf(engine.CodeInvalidField, "the body is not valid: %v", err))
	}
	fail := func(resp *actorpb.TenantConfigResponse) (*actorpb.TenantConfigResponse, []*configChanged, engine.AuditEntry) {
		return resp, nil, engine.AuditEntry{}
	}
	switch m.Kind + "/" + m.Op {
	case ConfigCanned + "/" + ConfigCreate, ConfigCanned + "/" + ConfigPut, ConfigCanned + "/" + ConfigDelete:
		resp, change := a.cannedWrite(c, m)
		return resp, nil, change
	case ConfigSettings + "/" + ConfigPut:
		var s engine.TenantSettings
		if err := json.Unmarshal(m.Json, &s); err != nil {
			return fail(bad(err))
		}
		if err := s.Validate(); err != nil {
			return fail(configErr(err))
		}
		s.Tenant, s.UpdatedAt = t, now
		if err := st.PutTenantSettings(c, s); err != nil {
			return fail(unavailable(err, "settings", logf))
		}
		a.d.Settings.Invalidate(t)
		groups, err := st.Groups(c, t)
		if err != nil {
			logf("listing groups", "err", err)
		}
		notify := []*configChanged{{KindQueue, QueueIdentity(t, engine.DefaultGroup)}}
		for _, g := range groups {
			notify = append(notify, &configChanged{KindQueue, QueueIdentity(t, g.ID)})
		}
		return jsonResp(s.WithDefaults()), notify, configAudit(ConfigSettings, "", "put")
	case ConfigGroup + "/" + ConfigPut:
		var g engine.SkillGroup
		if err := json.Unmarshal(m.Json, &g); err != nil {
			return fail(bad(err))
		}
		g.Tenant, g.ID, g.UpdatedAt = t, m.Id, now
		if g.Policy == "" {
			g.Policy = engine.PolicyLeastLoad
		}
		if err := g.Validate(); err != nil {
			return fail(configErr(err))
		}
		if err := st.PutGroup(c, g); err != nil {
			return fail(unavailable(err, "group", logf))
		}
		return jsonResp(g), []*configChanged{{KindQueue, QueueIdentity(t, g.ID)}},
			configAudit(ConfigGroup, g.ID, "put, policy "+string(g.Policy))
	case ConfigGroup + "/" + ConfigDelete:
		if err := st.DeleteGroup(c, t, m.Id); err != nil {
			return fail(unavailable(err, "group", logf))
		}
		return jsonResp(struct{}{}), []*configChanged{{KindQueue, QueueIdentity(t, m.Id)}}, configAudit(ConfigGroup, m.Id, "deleted")
	case ConfigAgent + "/" + ConfigPut:
		var p engine.AgentProfile
		if err := json.Unmarshal(m.Json, &p); err != nil {
			return fail(bad(err))
		}
		p.Tenant, p.ID, p.UpdatedAt = t, m.Id, now
		if err := p.Validate(); err != nil {
			return fail(configErr(err))
		}
		if _, err := st.StaffByID(c, t, m.Id); err != nil {
			return fail(unavailable(err, "agent", logf))
		}
		if err := st.PutAgentProfile(c, p); err != nil {
			return fail(unavailable(err, "agent", logf))
		}
		notify := []*configChanged{{KindAgent, AgentIdentity(t, p.ID)}}
		for _, g := range p.Groups() { // a queue learns of a new member
			notify = append(notify, &configChanged{KindQueue, QueueIdentity(t, g)})
		}
		return jsonResp(p), notify, configAudit(ConfigAgent, p.ID, fmt.Sprintf("capacity %d, %s", p.Capacity, plural(len(p.Skills), "skill group", "skill groups")))
	case ConfigStaff + "/" + ConfigPut:
		resp, s := a.createStaff(c, m)
		if resp.Error != nil {
			return fail(resp)
		}
		// New staff have no profile yet: they belong to the default group.
		return resp, []*configChanged{{KindQueue, QueueIdentity(t, engine.DefaultGroup)}},
			engine.AuditEntry{Action: engine.AuditStaffChanged, Target: s.ID, Detail: fmt.Sprintf("created %s, role %s", s.Username, s.Role)}
	case ConfigCustomer + "/" + ConfigPut:
		var cust engine.Customer
		if err := json.Unmarshal(m.Json, &cust); err != nil {
			return fail(bad(err))
		}
		cust.Tenant, cust.ID, cust.UpdatedAt = t, m.Id, now
		if err := validCustomer(cust); err != nil {
			return fail(configErr(err))
		}
		if err := st.PutCustomer(c, cust); err != nil {
			return fail(unavailable(err, "customer", logf))
		}
		return jsonResp(cust), nil, configAudit(ConfigCustomer, cust.ID, "put")
	case ConfigCredentials + "/" + ConfigPut:
		var ch CredentialsChange
		if err := json.Unmarshal(m.Json, &ch); err != nil {
			return bad(err), nil, engine.AuditEntry{}
		}
		switch {
		case ch.IdentitySecret != "" && (len(ch.IdentitySecret) < MinIdentitySecretLen || len(ch.IdentitySecret) > 256):
			return configErr(engine.Errorf(engine.CodeInvalidField, "identity_secret must be %d to 256 characters", MinIdentitySecretLen)), nil, engine.AuditEntry{}
		case len(ch.WeChatAppSecret) > 128:
			return configErr(engine.NewError(engine.CodeInvalidField, "wechat_app_secret is too long")), nil, engine.AuditEntry{}
		}
		tc, err := st.TenantCredentials(c, t)
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return unavailable(err, "credentials", logf), nil, engine.AuditEntry{}
		}
		tc.Tenant, tc.UpdatedAt = t, now
		if ch.WeChatAppSecret != "" {
			tc.WeChatAppSecret = ch.WeChatAppSecret
		}
		if ch.IdentitySecret != "" {
			tc.IdentitySecret = ch.IdentitySecret
		}
		if err := st.PutTenantCredentials(c, tc); err != nil {
			return unavailable(err, "credentials", logf), nil, engine.AuditEntry{}
		}
		return jsonResp(credentialsStatus(tc)), nil, configAudit(ConfigCredentials, "", "secrets set")
	case ConfigCustomer + "/" + ConfigTag:
		var ch TagChange
		if err := json.Unmarshal(m.Json, &ch); err != nil {
			return fail(bad(err))
		}
		cust, err := st.Customer(c, t, m.Id)
		if errors.Is(err, engine.ErrNotFound) {
			cust, err = engine.Customer{Tenant: t, ID: m.Id}, nil
		}
		if err != nil {
			return fail(unavailable(err, "customer", logf))
		}
		for _, tag := range ch.Add {
			if !slices.Contains(cust.Tags, tag) {
				cust.Tags = append(cust.Tags, tag)
			}
		}
		cust.Tags = slices.DeleteFunc(cust.Tags, func(tag string) bool { return slices.Contains(ch.Remove, tag) })
		cust.UpdatedAt = now
		if err := validCustomer(cust); err != nil {
			return fail(configErr(err))
		}
		if err := st.PutCustomer(c, cust); err != nil {
			return fail(unavailable(err, "customer", logf))
		}
		return jsonResp(cust), nil, configAudit(ConfigCustomer, cust.ID, fmt.Sprintf("tags: %d added, %d removed", len(ch.Add), len(ch.Remove)))
	}
	return fail(configErr(engine.Errorf(engine.CodeInvalidField, "unknown request %s %s", m.Op, m.Kind)))
}

// plural is "1 <one>" or "<n> <many>".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// configAudit is the audit entry of a configuration change: its target is
// kind/id, or the kind alone for the tenant-wide settings.
func configAudit(kind, id, detail string) engine.AuditEntry {
	target := kind
	if id != "" {
		target += "/" + id
	}
	return engine.AuditEntry{Action: engine.AuditConfigChanged, Target: target, Detail: detail}
}

// Bounds of a customer profile.
const (
	maxTags    = 50
	maxTagLen  = 32
	maxAttrs   = 50
	maxNameLen = 64
)

func validCustomer(c engine.Customer) error {
	if len(c.Tags) > maxTags || len(c.Attrs) > maxAttrs {
		return engine.Errorf(engine.CodeInvalidField, "at most %d tags and %d attributes", maxTags, maxAttrs)
	}
	if utf8.RuneCountInString(c.DisplayName) > maxNameLen || c.VIPLevel < 0 || c.VIPLevel > 10 {
		return engine.Errorf(engine.CodeInvalidField, "display_name is at most %d characters and vip_level 0-10", maxNameLen)
	}
	for _, tag := range c.Tags {
		if tag == "" || utf8.RuneCountInString(tag) > maxTagLen || strings.ContainsAny(tag, " \t\n") {
			return engine.Errorf(engine.CodeInvalidField, "a tag is 1-%d characters without spaces", maxTagLen)
		}
	}
	for k, v := range c.Attrs {
		if !engine.ValidID(k) || utf8.RuneCountInString(v) > 256 {
			return engine.NewError(engine.CodeInvalidField, "attribute names are ids and values at most 256 characters")
		}
	}
	return nil
}

// createStaff stores a new account with an argon2id password hash and
// returns it with the reply.
func (a *tenantActor) createStaff(c context.Context, m *actorpb.TenantConfig) (*actorpb.TenantConfigResponse, engine.Staff) {
	var n NewStaff
	if err := json.Unmarshal(m.Json, &n); err != nil {
		return configErr(engine.Errorf(engine.CodeInvalidField, "the body is not valid: %v", err)), engine.Staff{}
	}
	switch {
	case !engine.ValidID(n.Username):
		return configErr(engine.NewError(engine.CodeInvalidField, "username must be 1-64 letters, digits, '-', '_' or '.'")), engine.Staff{}
	case utf8.RuneCountInString(n.Password) < 8 || len(n.Password) > 256:
		return configErr(engine.NewError(engine.CodeInvalidField, "password must be 8-256 characters")), engine.Staff{}
	case n.Role != engine.StaffAgent && n.Role != engine.StaffSupervisor && n.Role != engine.StaffAdmin:
		return configErr(engine.NewError(engine.CodeInvalidField, "role must be agent, supervisor or admin")), engine.Staff{}
	case utf8.RuneCountInString(n.DisplayName) > maxNameLen:
		return configErr(engine.Errorf(engine.CodeInvalidField, "display_name is at most %d characters", maxNameLen)), engine.Staff{}
	}
	passwordChecks <- struct{}{} // argon2id is bounded per core like logins
	hash, err := auth.HashPassword(n.Password)
	<-passwordChecks
	if err != nil {
		return unavailable(err, "staff", a.d.Logger.Error), engine.Staff{}
	}
	now := a.d.Clock.Now()
	s := engine.Staff{Tenant: a.tenant, ID: engine.NewID(time.Now()), Username: n.Username, DisplayName: n.DisplayName, Role: n.Role, PasswordHash: hash, CreatedAt: now}
	if err := a.d.Store.CreateStaff(c, s); err != nil {
		return unavailable(err, "staff "+n.Username, a.d.Logger.Error), engine.Staff{}
	}
	return jsonResp(s), s
}
