package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migration is one step of the schema. Steps are never edited once released:
// a database records the versions it has applied, and a changed step would
// leave old and new databases with different schemas under the same number.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations is the schema's history, oldest first, versions 1, 2, 3, ...
//
// Times are INTEGER milliseconds since the epoch (UTC), the protocol's form.
// Every table is keyed by tenant first so that each query can be an index
// search scoped to one tenant (DESIGN.md §4: tenants are isolated).
var migrations = []migration{
	{1, "initial schema", `
CREATE TABLE tenants (
	id         TEXT    NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	app_id     TEXT    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE staff (
	tenant        TEXT    NOT NULL REFERENCES tenants (id),
	id            TEXT    NOT NULL,
	username      TEXT    NOT NULL,
	display_name  TEXT    NOT NULL,
	role          TEXT    NOT NULL,
	password_hash TEXT    NOT NULL,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (tenant, id),
	UNIQUE (tenant, username)
) STRICT;

CREATE TABLE conversations (
	tenant     TEXT    NOT NULL REFERENCES tenants (id),
	id         TEXT    NOT NULL,
	user_id    TEXT    NOT NULL,
	state      TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
) STRICT;
-- ListConversations: newest first, optionally by user or by state. Each
-- index ends in the sort order so paging never sorts in a temp B-tree.
CREATE INDEX conversations_by_created ON conversations (tenant, created_at DESC, id DESC);
CREATE INDEX conversations_by_user    ON conversations (tenant, user_id, created_at DESC, id DESC);
CREATE INDEX conversations_by_state   ON conversations (tenant, state, created_at DESC, id DESC);

-- WITHOUT ROWID clusters a conversation's messages by seq, so a history page
-- is one contiguous B-tree range. client_msg_id is NULL when a message has
-- none (bot and system messages), which the unique index lets repeat.
CREATE TABLE messages (
	tenant        TEXT    NOT NULL,
	conv          TEXT    NOT NULL,
	seq           INTEGER NOT NULL,
	client_msg_id TEXT,
	from_role     TEXT    NOT NULL,
	from_id       TEXT    NOT NULL,
	body_type     TEXT    NOT NULL,
	body          TEXT    NOT NULL,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (tenant, conv, seq),
	FOREIGN KEY (tenant, conv) REFERENCES conversations (tenant, id)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX messages_by_client_id ON messages (tenant, conv, client_msg_id);

CREATE TABLE read_pointers (
	tenant   TEXT    NOT NULL,
	conv     TEXT    NOT NULL,
	role     TEXT    NOT NULL,
	party_id TEXT    NOT NULL,
	seq      INTEGER NOT NULL,
	PRIMARY KEY (tenant, conv, role, party_id),
	FOREIGN KEY (tenant, conv) REFERENCES conversations (tenant, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE settings (
	key   TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
`},
	{2, "conversation owner, lifecycle events, FAQ entries", `
ALTER TABLE conversations ADD COLUMN agent_id TEXT NOT NULL DEFAULT '';

-- n orders a conversation's events; the single writer assigns max(n)+1.
CREATE TABLE conv_events (
	tenant     TEXT    NOT NULL,
	conv       TEXT    NOT NULL,
	n          INTEGER NOT NULL,
	type       TEXT    NOT NULL,
	from_state TEXT    NOT NULL,
	to_state   TEXT    NOT NULL,
	by_role    TEXT    NOT NULL,
	by_id      TEXT    NOT NULL,
	reason     TEXT    NOT NULL,
	at         INTEGER NOT NULL,
	PRIMARY KEY (tenant, conv, n),
	FOREIGN KEY (tenant, conv) REFERENCES conversations (tenant, id)
) STRICT, WITHOUT ROWID;

-- similar and tags are JSON arrays of strings.
CREATE TABLE faq_entries (
	tenant     TEXT    NOT NULL REFERENCES tenants (id),
	id         TEXT    NOT NULL,
	category   TEXT    NOT NULL,
	question   TEXT    NOT NULL,
	similar    TEXT    NOT NULL,
	answer     TEXT    NOT NULL,
	tags       TEXT    NOT NULL,
	enabled    INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	version    INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
) STRICT, WITHOUT ROWID;
`},
	{3, "routing fields, event details, profiles, groups, tenant settings, customers, notes, timers", `
-- invited is a JSON array of staff ids; queued_at is NULL while the
-- conversation has never been queued. The defaults are what rows written
-- before this step mean.
ALTER TABLE conversations ADD COLUMN invited   TEXT    NOT NULL DEFAULT '[]';
ALTER TABLE conversations ADD COLUMN group_id  TEXT    NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN priority  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN queued_at INTEGER;
-- ListConversations by owner or by group, with or without a state (an
-- agent's open conversations, a group's queue). As in step 1 each index
-- ends in the sort order; without the state-less ones, a query without a
-- state would sort the owner's or group's whole history.
CREATE INDEX conversations_by_agent       ON conversations (tenant, agent_id, created_at DESC, id DESC);
CREATE INDEX conversations_by_agent_state ON conversations (tenant, agent_id, state, created_at DESC, id DESC);
CREATE INDEX conversations_by_group       ON conversations (tenant, group_id, created_at DESC, id DESC);
CREATE INDEX conversations_by_group_state ON conversations (tenant, group_id, state, created_at DESC, id DESC);

ALTER TABLE conv_events ADD COLUMN agent_id TEXT NOT NULL DEFAULT '';
ALTER TABLE conv_events ADD COLUMN group_id TEXT NOT NULL DEFAULT '';
ALTER TABLE conv_events ADD COLUMN note     TEXT NOT NULL DEFAULT '';

-- Small records read and written whole: doc is the engine type as JSON.
CREATE TABLE agent_profiles (
	tenant TEXT NOT NULL REFERENCES tenants (id),
	id     TEXT NOT NULL,
	doc    TEXT NOT NULL,
	PRIMARY KEY (tenant, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE skill_groups (
	tenant TEXT NOT NULL REFERENCES tenants (id),
	id     TEXT NOT NULL,
	doc    TEXT NOT NULL,
	PRIMARY KEY (tenant, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE tenant_settings (
	tenant TEXT NOT NULL PRIMARY KEY REFERENCES tenants (id),
	doc    TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE customers (
	tenant TEXT NOT NULL REFERENCES tenants (id),
	id     TEXT NOT NULL,
	doc    TEXT NOT NULL,
	PRIMARY KEY (tenant, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE notes (
	tenant      TEXT    NOT NULL,
	conv        TEXT    NOT NULL,
	id          TEXT    NOT NULL,
	author_role TEXT    NOT NULL,
	author_id   TEXT    NOT NULL,
	text        TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	PRIMARY KEY (tenant, conv, id),
	FOREIGN KEY (tenant, conv) REFERENCES conversations (tenant, id)
) STRICT, WITHOUT ROWID;
-- Notes, oldest first.
CREATE INDEX notes_by_time ON notes (tenant, conv, created_at, id);

-- One timer of each kind per conversation. DueTimers reads every tenant's
-- earliest timers, so its index starts with due_at.
CREATE TABLE timers (
	tenant TEXT    NOT NULL,
	conv   TEXT    NOT NULL,
	kind   TEXT    NOT NULL,
	due_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, conv, kind),
	FOREIGN KEY (tenant, conv) REFERENCES conversations (tenant, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX timers_by_due ON timers (due_at, tenant, conv, kind);
`},
	{4, "staff sessions, login state and tenant credentials", `
-- A member of staff's sign-ins (refresh tokens) and failed-login count,
-- read whole by their agent actor; doc is the engine type as JSON.
CREATE TABLE staff_sessions (
	tenant     TEXT    NOT NULL,
	staff_id   TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	expires_at INTEGER NOT NULL,
	doc        TEXT    NOT NULL,
	PRIMARY KEY (tenant, staff_id, id),
	FOREIGN KEY (tenant, staff_id) REFERENCES staff (tenant, id)
) STRICT, WITHOUT ROWID;

-- doc is engine.TenantCredentials as JSON.
CREATE TABLE tenant_credentials (
	tenant TEXT NOT NULL PRIMARY KEY REFERENCES tenants (id),
	doc    TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE login_states (
	tenant   TEXT NOT NULL,
	staff_id TEXT NOT NULL,
	doc      TEXT NOT NULL,
	PRIMARY KEY (tenant, staff_id),
	FOREIGN KEY (tenant, staff_id) REFERENCES staff (tenant, id)
) STRICT, WITHOUT ROWID;
`},
	{5, "audit log", `
-- The audit log is append-only, and the database enforces it: the triggers
-- refuse any UPDATE or DELETE, and an insert of a key that exists, which
-- would let INSERT OR REPLACE delete the old row without firing the
-- DELETE trigger. actor_role and actor_id are '' for Kefu itself; ip,
-- target and detail are '' when absent.
CREATE TABLE audit_log (
	tenant     TEXT    NOT NULL REFERENCES tenants (id),
	id         TEXT    NOT NULL,
	at         INTEGER NOT NULL,
	actor_role TEXT    NOT NULL,
	actor_id   TEXT    NOT NULL,
	ip         TEXT    NOT NULL,
	action     TEXT    NOT NULL,
	target     TEXT    NOT NULL,
	detail     TEXT    NOT NULL,
	PRIMARY KEY (tenant, id)
) STRICT, WITHOUT ROWID;
-- AuditLog: newest first, optionally by action, actor or target. As for
-- conversations, each index ends in the sort order.
CREATE INDEX audit_by_time   ON audit_log (tenant, at DESC, id DESC);
CREATE INDEX audit_by_action ON audit_log (tenant, action, at DESC, id DESC);
CREATE INDEX audit_by_actor  ON audit_log (tenant, actor_id, at DESC, id DESC);
CREATE INDEX audit_by_target ON audit_log (tenant, target, at DESC, id DESC);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
WHEN EXISTS (SELECT 1 FROM audit_log WHERE tenant = NEW.tenant AND id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: the id is taken'); END;
`},
	{6, "data keys", `
-- Each tenant's data keys (store/sealed), wrapped by the master key that
-- master_key_id names; the database never holds a key in clear.
CREATE TABLE data_keys (
	tenant        TEXT    NOT NULL REFERENCES tenants (id),
	version       INTEGER NOT NULL,
	master_key_id TEXT    NOT NULL,
	wrapped       BLOB    NOT NULL,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (tenant, version)
) STRICT, WITHOUT ROWID;
`},
	{7, "ratings and canned responses", `
-- A conversation's rating: rating_score is NULL while it has none;
-- rating_comment is sealed (store/sealed) like event notes. An event's
-- score is a rating's, 0 for every other event.
ALTER TABLE conversations ADD COLUMN rating_score   INTEGER;
ALTER TABLE conversations ADD COLUMN rating_comment TEXT NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN rating_at      INTEGER;
ALTER TABLE conv_events   ADD COLUMN score          INTEGER NOT NULL DEFAULT 0;

-- Canned responses: owner is '' for the tenant's own, else the staff id
-- of a personal one. The unique index keeps a shortcut unique among the
-- tenant's and among each owner's, and serves CannedResponses (the
-- tenant's and one owner's, each by shortcut); doc is the engine type as
-- JSON.
CREATE TABLE canned_responses (
	tenant   TEXT NOT NULL REFERENCES tenants (id),
	id       TEXT NOT NULL,
	owner    TEXT NOT NULL,
	shortcut TEXT NOT NULL,
	doc      TEXT NOT NULL,
	PRIMARY KEY (tenant, id)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX canned_by_shortcut ON canned_responses (tenant, owner, shortcut);
`},
	{8, "conversation invitees", `
-- One row per staff id of a conversation's invited array, kept by the
-- triggers, so that ListConversations by invitee is an index search, not
-- a scan of every conversation's JSON. created_at is the conversation's
-- (which never changes), so the index ends in the sort order.
CREATE TABLE conv_invitees (
	tenant     TEXT    NOT NULL,
	conv       TEXT    NOT NULL,
	staff_id   TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, conv, staff_id),
	FOREIGN KEY (tenant, conv) REFERENCES conversations (tenant, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX conv_invitees_by_staff ON conv_invitees (tenant, staff_id, created_at DESC, conv DESC);

INSERT OR IGNORE INTO conv_invitees (tenant, conv, staff_id, created_at)
SELECT c.tenant, c.id, j.value, c.created_at FROM conversations c, json_each(c.invited) j;

CREATE TRIGGER conversations_invitees_insert AFTER INSERT ON conversations
BEGIN
	INSERT OR IGNORE INTO conv_invitees (tenant, conv, staff_id, created_at)
	SELECT NEW.tenant, NEW.id, value, NEW.created_at FROM json_each(NEW.invited);
END;
CREATE TRIGGER conversations_invitees_update AFTER UPDATE OF invited ON conversations
WHEN OLD.invited IS NOT NEW.invited
BEGIN
	DELETE FROM conv_invitees WHERE tenant = OLD.tenant AND conv = OLD.id;
	INSERT OR IGNORE INTO conv_invitees (tenant, conv, staff_id, created_at)
	SELECT NEW.tenant, NEW.id, value, NEW.created_at FROM json_each(NEW.invited);
END;
`},
}

const (
	sqlCreateMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`
	sqlSchemaVersion   = `SELECT coalesce(max(version), 0) FROM schema_migrations`
	sqlInsertMigration = `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`
)

// migrate brings the database on conn up to the newest migration, one
// transaction per step so that a failed step leaves the previous version
// intact. It returns the versions it applied. It refuses a database written
// by a newer build: running old code on a newer schema could corrupt it.
func migrate(ctx context.Context, conn *sql.Conn, now func() time.Time) (applied []int, err error) {
	if _, err := conn.ExecContext(ctx, sqlCreateMigrations); err != nil {
		return nil, fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	var current int
	if err := conn.QueryRowContext(ctx, sqlSchemaVersion).Scan(&current); err != nil {
		return nil, fmt.Errorf("sqlite: read schema version: %w", err)
	}
	if latest := migrations[len(migrations)-1].version; current > latest {
		return nil, fmt.Errorf("sqlite: database schema version %d is newer than this build's %d", current, latest)
	}
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		if err := applyMigration(ctx, conn, m, now()); err != nil {
			return applied, err
		}
		applied = append(applied, m.version)
	}
	return applied, nil
}

func applyMigration(ctx context.Context, conn *sql.Conn, m migration, now time.Time) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migration %d: begin: %w", m.version, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("sqlite: migration %d (%s): %w", m.version, m.name, err)
	}
	if _, err := tx.ExecContext(ctx, sqlInsertMigration, m.version, m.name, now.UnixMilli()); err != nil {
		return fmt.Errorf("sqlite: migration %d: record: %w", m.version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: migration %d: commit: %w", m.version, err)
	}
	return nil
}
