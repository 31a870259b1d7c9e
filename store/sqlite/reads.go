package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// readStmts are the statements prepared on the read pool. database/sql
// re-prepares each lazily on every pool connection it runs on and keeps it.
type readStmts struct {
	messagesAfter, messagesRecent, lastSeq, messageByClientID *sql.Stmt
	conversation, readPointers                                *sql.Stmt
	tenant, countTenants, staffByUsername                     *sql.Stmt
	events, faqEntries, staffByID, listStaff                  *sql.Stmt
	agentProfile, agentProfiles, groups, tenantSettings       *sql.Stmt
	customer, notes, timers, dueTimers                        *sql.Stmt
	staffSessions, loginState, tenantCredentials              *sql.Stmt
	dataKeys, allDataKeys, canned                             *sql.Stmt
	list                                                      [numListFilters]*sql.Stmt
	audit                                                     [numAuditFilters]*sql.Stmt
}

func prepareReadStmts(ctx context.Context, db *sql.DB) (*readStmts, error) {
	var s readStmts
	type prep struct {
		dst   **sql.Stmt
		query string
	}
	list := []prep{
		{&s.messagesAfter, sqlMessagesAfter}, {&s.messagesRecent, sqlMessagesRecent},
		{&s.lastSeq, sqlLastSeq}, {&s.messageByClientID, sqlMessageByClientID},
		{&s.conversation, sqlConversation}, {&s.readPointers, sqlReadPointers},
		{&s.tenant, sqlTenant}, {&s.countTenants, sqlCountTenants}, {&s.staffByUsername, sqlStaffByUsername},
		{&s.events, sqlEvents}, {&s.faqEntries, sqlFAQEntries},
		{&s.staffByID, sqlStaffByID}, {&s.listStaff, sqlListStaff},
		{&s.agentProfile, sqlAgentProfile}, {&s.agentProfiles, sqlAgentProfiles},
		{&s.groups, sqlGroups}, {&s.tenantSettings, sqlTenantSettings},
		{&s.customer, sqlCustomer}, {&s.notes, sqlNotes},
		{&s.timers, sqlTimers}, {&s.dueTimers, sqlDueTimers},
		{&s.staffSessions, sqlStaffSessions}, {&s.loginState, sqlLoginState}, {&s.tenantCredentials, sqlTenantCredentials},
		{&s.dataKeys, sqlDataKeys}, {&s.allDataKeys, sqlAllDataKeys}, {&s.canned, sqlCanned},
	}
	for f := range listFilter(numListFilters) {
		list = append(list, prep{&s.list[f], listConversationsSQL(f)})
	}
	for f := range auditFilter(numAuditFilters) {
		list = append(list, prep{&s.audit[f], auditLogSQL(f)})
	}
	for _, p := range list {
		st, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("sqlite: prepare %q: %w", p.query, err)
		}
		*p.dst = st
	}
	return &s, nil
}

func (s *readStmts) close() {
	all := []*sql.Stmt{
		s.messagesAfter, s.messagesRecent, s.lastSeq, s.messageByClientID,
		s.conversation, s.readPointers, s.tenant, s.countTenants, s.staffByUsername,
		s.events, s.faqEntries, s.staffByID, s.listStaff,
		s.agentProfile, s.agentProfiles, s.groups, s.tenantSettings,
		s.customer, s.notes, s.timers, s.dueTimers,
		s.staffSessions, s.loginState, s.tenantCredentials,
		s.dataKeys, s.allDataKeys, s.canned,
	}
	for _, st := range append(append(all, s.list[:]...), s.audit[:]...) {
		if st != nil {
			st.Close()
		}
	}
}
