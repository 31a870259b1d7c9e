package sqlite

import "strings"

// Every statement the adapter runs after Open is here, so that
// TestQueryPlans can check each one uses an index.

// Writes: prepared on the writer's connection, run by the writer goroutine.
const (
	sqlBegin       = `BEGIN IMMEDIATE`
	sqlCommit      = `COMMIT`
	sqlRollback    = `ROLLBACK`
	sqlSavepoint   = `SAVEPOINT op`
	sqlRelease     = `RELEASE op`
	sqlRollbackToS = `ROLLBACK TO op`

	sqlInsertMessage = `INSERT INTO messages
	(tenant, conv, seq, client_msg_id, from_role, from_id, body_type, body, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// Run after a failed insert, inside the same transaction, to tell a
	// duplicate from a seq conflict.
	sqlSeqByClientID = `SELECT seq, from_role, from_id, created_at FROM messages WHERE tenant = ? AND conv = ? AND client_msg_id = ?`

	sqlInsertConversation = `INSERT INTO conversations
	(tenant, id, user_id, state, agent_id, invited, group_id, priority, queued_at, created_at, updated_at,
		rating_score, rating_comment, rating_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// max() keeps the pointer from moving backwards even when two updates
	// race: the writer applies them one after the other.
	sqlUpsertReadPointer = `INSERT INTO read_pointers (tenant, conv, role, party_id, seq)
	VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (tenant, conv, role, party_id) DO UPDATE SET seq = max(seq, excluded.seq)
	RETURNING seq`
	sqlInsertTenant = `INSERT INTO tenants (id, name, app_id, created_at) VALUES (?, ?, ?, ?)`
	sqlInsertStaff  = `INSERT INTO staff
	(tenant, id, username, display_name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`
	sqlInsertSettingIfAbsent = `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`
	sqlUpdateConversation    = `UPDATE conversations SET state = ?, agent_id = ?, invited = ?, group_id = ?, priority = ?,
	queued_at = ?, updated_at = ?, rating_score = ?, rating_comment = ?, rating_at = ? WHERE tenant = ? AND id = ?`
	sqlInsertEvent = `INSERT INTO conv_events
	(tenant, conv, n, type, from_state, to_state, by_role, by_id, reason, agent_id, group_id, note, at, score)
	VALUES (?1, ?2, coalesce((SELECT max(n) FROM conv_events WHERE tenant = ?1 AND conv = ?2), 0) + 1,
		?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)`
	sqlUpsertFAQ = `INSERT INTO faq_entries
	(tenant, id, category, question, similar, answer, tags, enabled, updated_at, version)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (tenant, id) DO UPDATE SET category = excluded.category, question = excluded.question,
		similar = excluded.similar, answer = excluded.answer, tags = excluded.tags,
		enabled = excluded.enabled, updated_at = excluded.updated_at, version = excluded.version`
	sqlDeleteFAQ    = `DELETE FROM faq_entries WHERE tenant = ? AND id = ?`
	sqlSettingValue = `SELECT value FROM settings WHERE key = ?`

	sqlUpsertAgentProfile = `INSERT INTO agent_profiles (tenant, id, doc) VALUES (?, ?, ?)
	ON CONFLICT (tenant, id) DO UPDATE SET doc = excluded.doc`
	sqlUpsertGroup = `INSERT INTO skill_groups (tenant, id, doc) VALUES (?, ?, ?)
	ON CONFLICT (tenant, id) DO UPDATE SET doc = excluded.doc`
	sqlDeleteGroup          = `DELETE FROM skill_groups WHERE tenant = ? AND id = ?`
	sqlUpsertTenantSettings = `INSERT INTO tenant_settings (tenant, doc) VALUES (?, ?)
	ON CONFLICT (tenant) DO UPDATE SET doc = excluded.doc`
	sqlUpdateStaff   = `UPDATE staff SET display_name = ?, role = ?, password_hash = ? WHERE tenant = ? AND id = ?`
	sqlUpsertSession = `INSERT INTO staff_sessions (tenant, staff_id, id, expires_at, doc) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (tenant, staff_id, id) DO UPDATE SET expires_at = excluded.expires_at, doc = excluded.doc`
	sqlPruneSessions    = `DELETE FROM staff_sessions WHERE tenant = ? AND staff_id = ? AND expires_at < ?`
	sqlUpsertLoginState = `INSERT INTO login_states (tenant, staff_id, doc) VALUES (?, ?, ?)
	ON CONFLICT (tenant, staff_id) DO UPDATE SET doc = excluded.doc`
	sqlUpsertTenantCredentials = `INSERT INTO tenant_credentials (tenant, doc) VALUES (?, ?)
	ON CONFLICT (tenant) DO UPDATE SET doc = excluded.doc`
	sqlUpsertCustomer = `INSERT INTO customers (tenant, id, doc) VALUES (?, ?, ?)
	ON CONFLICT (tenant, id) DO UPDATE SET doc = excluded.doc`
	sqlInsertNote = `INSERT INTO notes (tenant, conv, id, author_role, author_id, text, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?)`
	sqlUpsertTimer = `INSERT INTO timers (tenant, conv, kind, due_at) VALUES (?, ?, ?, ?)
	ON CONFLICT (tenant, conv, kind) DO UPDATE SET due_at = excluded.due_at`
	sqlDeleteTimer = `DELETE FROM timers WHERE tenant = ? AND conv = ? AND kind = ?`
	sqlInsertAudit = `INSERT INTO audit_log (tenant, id, at, actor_role, actor_id, ip, action, target, detail)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

	sqlUpsertCanned = `INSERT INTO canned_responses (tenant, id, owner, shortcut, doc) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (tenant, id) DO UPDATE SET owner = excluded.owner, shortcut = excluded.shortcut, doc = excluded.doc`
	sqlDeleteCanned = `DELETE FROM canned_responses WHERE tenant = ? AND id = ?`

	sqlInsertDataKeyIfAbsent = `INSERT INTO data_keys (tenant, version, master_key_id, wrapped, created_at)
	VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, version) DO NOTHING`
	sqlDataKey       = `SELECT master_key_id, wrapped, created_at FROM data_keys WHERE tenant = ? AND version = ?`
	sqlRewrapDataKey = `UPDATE data_keys SET master_key_id = ?, wrapped = ? WHERE tenant = ? AND version = ?`
)

// Reads: prepared on the read pool.
//
// The message and read-pointer reads start from the conversation row and
// LEFT JOIN into the children, so one statement (one snapshot) tells an
// unknown conversation (no row: ErrNotFound) from an empty one (one row of
// NULLs).
const (
	msgColumns = `m.seq, m.client_msg_id, m.from_role, m.from_id, m.body, m.created_at`

	sqlMessagesAfter = `SELECT ` + msgColumns + `
	FROM conversations c LEFT JOIN messages m
		ON m.tenant = c.tenant AND m.conv = c.id AND m.seq > ?
	WHERE c.tenant = ? AND c.id = ?
	ORDER BY m.seq LIMIT ?`
	// Newest first; Recent reverses the page in Go rather than sorting twice.
	sqlMessagesRecent = `SELECT ` + msgColumns + `
	FROM conversations c LEFT JOIN messages m
		ON m.tenant = c.tenant AND m.conv = c.id
	WHERE c.tenant = ? AND c.id = ?
	ORDER BY m.seq DESC LIMIT ?`
	sqlLastSeq = `SELECT coalesce((SELECT m.seq FROM messages m
		WHERE m.tenant = c.tenant AND m.conv = c.id ORDER BY m.seq DESC LIMIT 1), 0)
	FROM conversations c WHERE c.tenant = ? AND c.id = ?`
	sqlMessageByClientID = `SELECT ` + msgColumns + `
	FROM messages m WHERE m.tenant = ? AND m.conv = ? AND m.client_msg_id = ?`

	// Of conversations c, which ListConversations may join.
	convColumns = `c.tenant, c.id, c.user_id, c.state, c.agent_id, c.invited, c.group_id, c.priority, c.queued_at,
	c.created_at, c.updated_at, c.rating_score, c.rating_comment, c.rating_at`
	sqlConversation = `SELECT ` + convColumns + ` FROM conversations c WHERE c.tenant = ? AND c.id = ?`

	sqlReadPointers = `SELECT r.role, r.party_id, r.seq
	FROM conversations c LEFT JOIN read_pointers r
		ON r.tenant = c.tenant AND r.conv = c.id
	WHERE c.tenant = ? AND c.id = ?
	ORDER BY r.role, r.party_id`

	sqlTenant = `SELECT id, name, app_id, created_at FROM tenants WHERE id = ?`
	// Counting every tenant reads the whole (small) table by nature: the one
	// query TestQueryPlans allows to scan.
	sqlCountTenants    = `SELECT count(*) FROM tenants`
	staffColumns       = `tenant, id, username, display_name, role, password_hash, created_at`
	sqlStaffByUsername = `SELECT ` + staffColumns + ` FROM staff WHERE tenant = ? AND username = ?`
	sqlStaffByID       = `SELECT ` + staffColumns + ` FROM staff WHERE tenant = ? AND id = ?`
	sqlListStaff       = `SELECT ` + staffColumns + ` FROM staff WHERE tenant = ? ORDER BY username`
	sqlEvents          = `SELECT type, from_state, to_state, by_role, by_id, reason, agent_id, group_id, note, at, score
	FROM conv_events WHERE tenant = ? AND conv = ? ORDER BY n`
	sqlFAQEntries = `SELECT id, category, question, similar, answer, tags, enabled, updated_at, version
	FROM faq_entries WHERE tenant = ? ORDER BY id`

	sqlAgentProfile      = `SELECT doc FROM agent_profiles WHERE tenant = ? AND id = ?`
	sqlAgentProfiles     = `SELECT doc FROM agent_profiles WHERE tenant = ? ORDER BY id`
	sqlGroups            = `SELECT doc FROM skill_groups WHERE tenant = ? ORDER BY id`
	sqlTenantSettings    = `SELECT doc FROM tenant_settings WHERE tenant = ?`
	sqlStaffSessions     = `SELECT doc FROM staff_sessions WHERE tenant = ? AND staff_id = ? ORDER BY id`
	sqlLoginState        = `SELECT doc FROM login_states WHERE tenant = ? AND staff_id = ?`
	sqlTenantCredentials = `SELECT doc FROM tenant_credentials WHERE tenant = ?`
	sqlCustomer          = `SELECT doc FROM customers WHERE tenant = ? AND id = ?`
	// The tenant's own (owner '') first, then the owner's, each by
	// shortcut: canned_by_shortcut in order.
	sqlCanned = `SELECT doc FROM canned_responses WHERE tenant = ? AND owner IN ('', ?)
	ORDER BY owner, shortcut`
	sqlNotes = `SELECT id, author_role, author_id, text, created_at
	FROM notes WHERE tenant = ? AND conv = ? ORDER BY created_at, id`
	sqlTimers    = `SELECT kind, due_at FROM timers WHERE tenant = ? AND conv = ? ORDER BY kind`
	sqlDueTimers = `SELECT tenant, conv, kind, due_at FROM timers WHERE due_at <= ?
	ORDER BY due_at, tenant, conv, kind LIMIT ?`

	dataKeyColumns = `tenant, version, master_key_id, wrapped, created_at`
	sqlDataKeys    = `SELECT ` + dataKeyColumns + ` FROM data_keys WHERE tenant = ? ORDER BY version`
	// Every tenant's keys: read at start and by a rotation, so it reads the
	// whole (small) table by nature.
	sqlAllDataKeys = `SELECT ` + dataKeyColumns + ` FROM data_keys ORDER BY tenant, version`
)

// listFilter is a bit set of the optional ListConversations filters; each of
// its 64 values has its own prepared statement.
type listFilter uint8

const (
	listByUser listFilter = 1 << iota
	listByAgent
	listByGroup
	listByState
	listBefore
	listByInvited
	numListFilters = 1 << iota
)

// listConversationsSQL builds the ListConversations statement for filter f.
// Arguments: tenant, [invitee's staff id], [user_id], [agent_id],
// [group_id], [state], [before ms], limit.
//
// SQLite has no statistics to tell a selective filter from a broad one, so
// the most selective filter given leads: a member of staff is invited to a
// handful of open conversations, a user has a handful of conversations, an
// agent holds tens at a time, a group's queue or a state may hold
// thousands. A unary + keeps the other filters from choosing an index,
// except the state after an agent or a group, whose indexes include it. An
// invitee leads from conv_invitees, joined to each conversation by its key
// (CROSS JOIN keeps SQLite from reordering the two).
func listConversationsSQL(f listFilter) string {
	var lead listFilter
	switch {
	case f&listByInvited != 0:
		lead = listByInvited
	case f&listByUser != 0:
		lead = listByUser
	case f&listByAgent != 0:
		lead = listByAgent
	case f&listByGroup != 0:
		lead = listByGroup
	}
	var b strings.Builder
	created, id := `c.created_at`, `c.id` // the sort order of conversations_by_*
	if lead == listByInvited {
		b.WriteString(`SELECT ` + convColumns + ` FROM conv_invitees i CROSS JOIN conversations c
	ON c.tenant = i.tenant AND c.id = i.conv WHERE i.tenant = ? AND i.staff_id = ?`)
		created, id = `i.created_at`, `i.conv` // conv_invitees_by_staff's
	} else {
		b.WriteString(`SELECT ` + convColumns + ` FROM conversations c WHERE c.tenant = ?`)
	}
	for _, t := range []struct {
		bit    listFilter
		column string
	}{{listByUser, "user_id"}, {listByAgent, "agent_id"}, {listByGroup, "group_id"}, {listByState, "state"}} {
		if f&t.bit == 0 {
			continue
		}
		indexed := t.bit == lead || (t.bit == listByState && lead != listByUser && lead != listByInvited)
		b.WriteString(` AND `)
		if !indexed {
			b.WriteString(`+`)
		}
		b.WriteString(`c.` + t.column + ` = ?`)
	}
	if f&listBefore != 0 {
		b.WriteString(` AND ` + created + ` < ?`)
	}
	b.WriteString(` ORDER BY ` + created + ` DESC, ` + id + ` DESC LIMIT ?`)
	return b.String()
}

// auditFilter is a bit set of the optional AuditLog filters; each of its 16
// values has its own prepared statement.
type auditFilter uint8

const (
	auditByAction auditFilter = 1 << iota
	auditByActor
	auditByTarget
	auditBefore
	numAuditFilters = 1 << iota
)

// auditLogSQL builds the AuditLog statement for filter f. Arguments:
// tenant, [action], [actor_id], [target], [before ms], limit.
//
// As in listConversationsSQL, the most selective filter given leads and a
// unary + keeps the others from choosing an index: a target (one
// conversation, one setting) has few entries, an actor more, an action
// may have most of the log.
func auditLogSQL(f auditFilter) string {
	var lead auditFilter
	switch {
	case f&auditByTarget != 0:
		lead = auditByTarget
	case f&auditByActor != 0:
		lead = auditByActor
	case f&auditByAction != 0:
		lead = auditByAction
	}
	var b strings.Builder
	b.WriteString(`SELECT id, at, actor_role, actor_id, ip, action, target, detail FROM audit_log WHERE tenant = ?`)
	for _, t := range []struct {
		bit    auditFilter
		column string
	}{{auditByAction, "action"}, {auditByActor, "actor_id"}, {auditByTarget, "target"}} {
		if f&t.bit == 0 {
			continue
		}
		b.WriteString(` AND `)
		if t.bit != lead {
			b.WriteString(`+`)
		}
		b.WriteString(t.column + ` = ?`)
	}
	if f&auditBefore != 0 {
		b.WriteString(` AND at < ?`)
	}
	b.WriteString(` ORDER BY at DESC, id DESC LIMIT ?`)
	return b.String()
}
