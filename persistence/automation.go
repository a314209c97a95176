package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// InboxSettings are an inbox's automation settings (docs/api.md "Automation").
// Nil durations are off. Version grows with every change.
type InboxSettings struct {
	AutoCloseAfterS   *int64 `json:"auto_close_after_s"`
	SLAFirstResponseS *int64 `json:"sla_first_response_s"`
	AutoAssign        string `json:"auto_assign"`
	Version           int64  `json:"-"`
}

// InboxPatch changes some of an inbox's name and settings. A nil field is
// unchanged; Clear* turn a duration off.
type InboxPatch struct {
	Name              *string
	PhoneNumber       *string // "" removes it
	AutoCloseAfterS   *int64
	ClearAutoClose    bool
	SLAFirstResponseS *int64
	ClearSLA          bool
	AutoAssign        *string
}

// SettingsChannel is the NOTIFY channel an inbox settings change is
// announced on (payload: the inbox id), so every node drops its cached copy.
const SettingsChannel = "inbox_settings"

// GetInboxSettings reads an inbox's automation settings.
func (s *Store) GetInboxSettings(ctx context.Context, inboxID string) (InboxSettings, error) {
	var st InboxSettings
	err := s.pool.QueryRow(ctx, `SELECT auto_close_after_s, sla_first_response_s, auto_assign, settings_version
		FROM inboxes WHERE id = $1`, inboxID).Scan(&st.AutoCloseAfterS, &st.SLAFirstResponseS, &st.AutoAssign, &st.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("persistence: inbox %s: %w", inboxID, ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("persistence: inbox settings %s: %w", inboxID, err)
	}
	return st, nil
}

// UpdateInbox applies a patch to an inbox of the account (ErrNotFound
// otherwise) and returns the inbox with its settings. A change of the
// settings bumps their version and is announced on SettingsChannel in the
// same transaction. timersChanged tells the caller to re-arm (RearmInbox).
func (s *Store) UpdateInbox(ctx context.Context, accountID, inboxID string, p InboxPatch) (in Inbox, st InboxSettings, timersChanged bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var old InboxSettings
		err := tx.QueryRow(ctx, `SELECT name, coalesce(phone_number, ''), auto_close_after_s, sla_first_response_s,
				auto_assign, settings_version
			FROM inboxes WHERE id = $1 AND account_id = $2 FOR UPDATE`, inboxID, accountID).
			Scan(&in.Name, &in.PhoneNumber, &old.AutoCloseAfterS, &old.SLAFirstResponseS, &old.AutoAssign, &old.Version)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("inbox %s: %w", inboxID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		in.ID, in.AccountID = inboxID, accountID
		st = old
		if p.Name != nil {
			in.Name = *p.Name
		}
		if p.PhoneNumber != nil {
			in.PhoneNumber = *p.PhoneNumber
		}
		switch {
		case p.ClearAutoClose:
			st.AutoCloseAfterS = nil
		case p.AutoCloseAfterS != nil:
			st.AutoCloseAfterS = p.AutoCloseAfterS
		}
		switch {
		case p.ClearSLA:
			st.SLAFirstResponseS = nil
		case p.SLAFirstResponseS != nil:
			st.SLAFirstResponseS = p.SLAFirstResponseS
		}
		if p.AutoAssign != nil {
			st.AutoAssign = *p.AutoAssign
		}
		timersChanged = !sameInt(old.AutoCloseAfterS, st.AutoCloseAfterS) || !sameInt(old.SLAFirstResponseS, st.SLAFirstResponseS)
		changed := timersChanged || old.AutoAssign != st.AutoAssign
		if changed {
			st.Version++
		}
		if _, err := tx.Exec(ctx, `UPDATE inboxes SET name = $2, auto_close_after_s = $3, sla_first_response_s = $4,
				auto_assign = $5, settings_version = $6, phone_number = NULLIF($7, '') WHERE id = $1`,
			inboxID, in.Name, st.AutoCloseAfterS, st.SLAFirstResponseS, st.AutoAssign, st.Version, in.PhoneNumber); err != nil {
			return err
		}
		if changed {
			_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, SettingsChannel, inboxID)
		}
		return err
	})
	if err != nil {
		return Inbox{}, InboxSettings{}, false, fmt.Errorf("persistence: update inbox %s: %w", inboxID, err)
	}
	return in, st, timersChanged, nil
}

func sameInt(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// RearmInbox makes every conversation of the inbox that is not closed due
// now, batch rows at a time, each batch its own short transaction (an inbox
// may hold 100,000 open conversations: one statement would lock them all
// at once). The timer scanner then wakes each, and its state machine
// re-derives its timers under the new settings. Call it after the settings
// change committed.
//
// A command decided under the old settings may commit after that. One whose
// statement starts after the change sees the new version and stores its
// due time as now (Append.SettingsVersion, SetDue); RearmInbox first waits
// for the transactions already running, whose statements may not, so that
// the scan sees what they wrote.
func (s *Store) RearmInbox(ctx context.Context, inboxID string, batch int) (int, error) {
	if err := s.awaitRunningTransactions(ctx, rearmWaitMax); err != nil {
		return 0, fmt.Errorf("persistence: re-arm inbox %s: %w", inboxID, err)
	}
	return s.rearmBatches(ctx, inboxID, batch)
}

// rearmBatches is RearmInbox after its wait. It skips the rows another
// transaction holds: every such transaction began after the wait began,
// so after the settings change committed, and its statements see the new
// settings and store the row's due time under them (or now, for a
// decision made under the old ones), as the re-arm would. Waiting for
// them instead took row locks in a cycle with the writer's batches and
// with concurrent re-arms of the inbox: PostgreSQL broke the deadlocks by
// failing a settings change (503, after it had committed) or a batch of
// appends, which the writer then retried for every caller in it.
func (s *Store) rearmBatches(ctx context.Context, inboxID string, batch int) (int, error) {
	total, after := 0, ""
	for {
		var n int
		var last *string
		err := s.pool.QueryRow(ctx, `WITH picked AS (
				SELECT id FROM conversations WHERE inbox_id = $1 AND status <> 'closed' AND id > $2
				ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED
			), armed AS (
				UPDATE conversations c SET due_at = now() FROM picked WHERE c.id = picked.id RETURNING c.id
			)
			SELECT count(*), max(id) FROM armed`, inboxID, after, batch).Scan(&n, &last)
		if err != nil {
			return total, fmt.Errorf("persistence: re-arm inbox %s: %w", inboxID, err)
		}
		total += n
		if n > 0 {
			// Wake the scanner for this batch now rather than at its next poll.
			if _, err := s.pool.Exec(ctx, notifyTimersSQL, TimersPayload(time.Now())); err != nil {
				return total, fmt.Errorf("persistence: re-arm inbox %s: notify: %w", inboxID, err)
			}
		}
		if n < batch || last == nil {
			return total, nil
		}
		after = *last
	}
}

// rearmWaitMax bounds RearmInbox's wait for the transactions running when
// it starts. The writer's take milliseconds; one that runs longer is not
// an append (a backup, an idle session left in a transaction), and waiting
// on it would hold the settings change's answer for nothing.
const rearmWaitMax = 10 * time.Second

// awaitRunningTransactions returns once every transaction running in the
// database when it was called has ended, or after max, or when ctx ends.
// Every transaction holds a lock on its own virtual transaction id, even
// before it writes anything, so pg_locks lists them all; PostgreSQL offers
// no wait on another session's transaction from SQL, hence the polling.
func (s *Store) awaitRunningTransactions(ctx context.Context, max time.Duration) error {
	// Clients of this database only: not autovacuum, nor other databases
	// of the server.
	var running []string
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(array_agg(l.virtualxid), '{}')
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'virtualxid' AND l.pid <> pg_backend_pid()
			AND a.datname = current_database() AND a.backend_type = 'client backend'`).Scan(&running); err != nil {
		return fmt.Errorf("list running transactions: %w", err)
	}
	deadline := time.Now().Add(max)
	for wait := time.Millisecond; len(running) > 0 && time.Now().Before(deadline); wait = min(2*wait, 50*time.Millisecond) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		if err := s.pool.QueryRow(ctx, `SELECT coalesce(array_agg(virtualxid), '{}') FROM pg_locks
			WHERE locktype = 'virtualxid' AND virtualxid = ANY($1)`, running).Scan(&running); err != nil {
			return fmt.Errorf("wait for running transactions: %w", err)
		}
	}
	return nil
}

// SetDue rewrites a conversation's due time when a tick decided nothing
// (early, repeated, or re-armed with settings that change nothing); the
// version guard keeps a stale activation from overwriting a newer row.
// settingsVersion is the version of the settings due was decided under:
// when the inbox's are newer, the row is made due now instead, as the
// writer does for an append (Append.SettingsVersion).
func (s *Store) SetDue(ctx context.Context, conversationID string, version int64, due *time.Time, settingsVersion int64) error {
	const dueSQL = `CASE WHEN $4 < (SELECT i.settings_version FROM inboxes i WHERE i.id = conversations.inbox_id)
		THEN now() ELSE $3 END`
	var err error
	if due != nil && due.Before(time.Now().Add(TimersHorizon)) {
		// Soon: announce it to the scanner in the same statement (TimersChannel).
		_, err = s.pool.Exec(ctx, `WITH upd AS (
				UPDATE conversations SET due_at = `+dueSQL+` WHERE id = $1 AND version = $2 RETURNING 1
			)
			SELECT pg_notify('`+TimersChannel+`', $5) FROM upd`, conversationID, version, due, settingsVersion, TimersPayload(*due))
	} else {
		_, err = s.pool.Exec(ctx, `UPDATE conversations SET due_at = `+dueSQL+` WHERE id = $1 AND version = $2`,
			conversationID, version, due, settingsVersion)
	}
	if err != nil {
		return fmt.Errorf("persistence: set due %s@%d: %w", conversationID, version, err)
	}
	return nil
}

// Agent statuses.
const (
	AgentAvailable = "available"
	AgentAway      = "away"
)

// AgentPatch is a change to an agent: each field set is written.
type AgentPatch struct {
	Status, Name, Email *string
}

// UpdateAgent changes an agent of the account and returns the agent
// (ErrNotFound for an agent outside the account).
func (s *Store) UpdateAgent(ctx context.Context, accountID, agentID string, p AgentPatch) (Agent, error) {
	if p.Status != nil && *p.Status != AgentAvailable && *p.Status != AgentAway {
		return Agent{}, fmt.Errorf("persistence: agent status %q: %w", *p.Status, ErrInvalid)
	}
	ag := Agent{ID: agentID, AccountID: accountID}
	err := s.pool.QueryRow(ctx, `WITH upd AS (
			UPDATE agents SET status = coalesce($3, status), name = coalesce($4, name), email = coalesce($5, email)
			WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL RETURNING id, name, email, status
		)
		SELECT upd.name, upd.email, upd.status,
			coalesce((SELECT array_agg(inbox_id ORDER BY inbox_id) FROM agent_inboxes WHERE agent_id = upd.id), '{}')
		FROM upd`, agentID, accountID, p.Status, p.Name, p.Email).Scan(&ag.Name, &ag.Email, &ag.Status, &ag.InboxIDs)
	if errors.Is(err, pgx.ErrNoRows) {
		return Agent{}, fmt.Errorf("persistence: agent %s: %w", agentID, ErrNotFound)
	}
	if err != nil {
		return Agent{}, fmt.Errorf("persistence: update agent %s: %w", agentID, err)
	}
	return ag, nil
}

// NextRoundRobin picks the inbox's next available agent in rotation — the
// first in id order after the one picked last, wrapping around — and records
// it as the rotation's position, in one statement, so the position survives
// restarts. ok is false when no agent of the inbox is available.
func (s *Store) NextRoundRobin(ctx context.Context, inboxID string) (agentID string, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `WITH pos AS (
			SELECT coalesce(rr_last_agent, '') AS last FROM inboxes WHERE id = $1
		), pick AS (
			SELECT a.id FROM agents a JOIN agent_inboxes ai ON ai.agent_id = a.id, pos
			WHERE ai.inbox_id = $1 AND a.status = 'available'
			ORDER BY a.id <= pos.last, a.id
			LIMIT 1
		)
		UPDATE inboxes SET rr_last_agent = pick.id FROM pick WHERE inboxes.id = $1 RETURNING pick.id`, inboxID).Scan(&agentID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("persistence: round-robin %s: %w", inboxID, err)
	}
	return agentID, true, nil
}
