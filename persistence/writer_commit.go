package persistence

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// batchTimeout bounds one batch transaction, so a hung connection cannot
// stall the writer (and Close) forever.
const batchTimeout = 30 * time.Second

// maxBatchAttempts: a batch is re-run when it failed as a whole for a reason
// that a re-run resolves (a concurrent transaction inserted one of its
// idempotency keys, a deadlock): nothing of a failed transaction was written.
const maxBatchAttempts = 3

type outcome uint8

const (
	outcomeFenced outcome = iota
	outcomeOK
	outcomeDuplicate
	// outcomeInvalid: PostgreSQL refused the append's own values.
	outcomeInvalid
)

// answer is one append's reply and its appends_total result.
type answer struct {
	err    error
	result string
}

// commit runs one batch and returns each append's answer.
func (w *Writer) commit(batch []*request) []answer {
	start := time.Now()
	outcomes := make([]outcome, len(batch))
	errs := make([]error, len(batch))
	w.execIsolated(batch, outcomes, errs)
	d := time.Since(start)
	w.m.duration.Observe(d.Seconds())
	w.commitP99.Observe(d, time.Now())
	answers := make([]answer, len(batch))
	for i, r := range batch {
		id, v := r.a.Summary.ID, r.a.Event.Version
		switch {
		case errs[i] != nil:
			answers[i] = answer{fmt.Errorf("persistence: append %s@%d: %w", id, v, errs[i]), resultError}
		case outcomes[i] == outcomeOK:
			answers[i] = answer{nil, resultOK}
		case outcomes[i] == outcomeDuplicate:
			answers[i] = answer{fmt.Errorf("persistence: append %s@%d: %w", id, v, ErrDuplicate), resultDuplicate}
		case outcomes[i] == outcomeInvalid:
			// About the caller's own values only: the database's text may
			// describe another append of the batch.
			answers[i] = answer{fmt.Errorf("persistence: append %s@%d: the database refused a value of this event: %w", id, v, ErrInvalid), resultInvalid}
		default:
			answers[i] = answer{fmt.Errorf("persistence: append %s@%d epoch %d: %w", id, v, r.a.Epoch, ErrFenced), resultFenced}
		}
	}
	return answers
}

// execIsolated runs batch so that one append PostgreSQL refuses for its data
// cannot fail the others (docs/architecture.md, invariant 11): a batch that fails with a
// data error wrote nothing, so it is cut in two and each half runs on its
// own, down to the single append that is answered ErrInvalid. Every other
// append commits exactly once, in whichever part holds it; no part is re-run
// after it committed. An error of unknown outcome (a broken connection) is
// reported for every append of the part it hit, as before.
func (w *Writer) execIsolated(batch []*request, outcomes []outcome, errs []error) {
	out, err := w.execWithRetry(batch)
	switch {
	case err == nil:
		copy(outcomes, out)
	case !isDataError(err):
		for i := range errs {
			errs[i] = fmt.Errorf("batch of %d: %w", len(batch), err)
		}
	case len(batch) == 1:
		outcomes[0] = outcomeInvalid
		w.refused.Add(1)
		r := batch[0]
		w.cfg.Log.Warn("the database refused an append for its data", "conversation", r.a.Summary.ID,
			"account", r.a.Summary.AccountID, "version", r.a.Event.Version, "err", err)
	default:
		w.splits.Add(1)
		mid := len(batch) / 2
		w.execIsolated(batch[:mid], outcomes[:mid], errs[:mid])
		w.execIsolated(batch[mid:], outcomes[mid:], errs[mid:])
	}
}

func (w *Writer) execWithRetry(batch []*request) ([]outcome, error) {
	n := int64(len(batch))
	w.batches.Add(1)
	w.appends.Add(n)
	for {
		l := w.largest.Load()
		if n <= l || w.largest.CompareAndSwap(l, n) {
			break
		}
	}
	w.m.batch.Observe(float64(n))
	args := w.stmt.args(batch)
	due, armsSoon := soonDue(batch, time.Now())
	for attempt := 1; ; attempt++ {
		outcomes, err := w.exec(args, len(batch), due, armsSoon)
		if err == nil || attempt == maxBatchAttempts || !retryable(err) {
			return outcomes, err
		}
		w.retries.Add(1)
		w.m.retries.Inc()
	}
}

// retryable: the transaction failed as a whole, wrote nothing, and a re-run
// can succeed — a concurrent writer (another node) committed one of the
// batch's idempotency keys first (the re-run reports that append as a
// duplicate), or PostgreSQL broke a deadlock between two nodes' batches.
func retryable(err error) bool {
	switch pgCode(err) {
	case "23505":
		return isKeyConflict(err)
	case "40P01", "40001":
		return true
	}
	return false
}

// isKeyConflict: the unique violation is on an idempotency key, the one
// conflict the batch statement expects from a concurrent writer.
func isKeyConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.TableName == "idempotency_keys"
}

// isDataError: PostgreSQL refused values of the statement itself, not the
// transaction's circumstances — class 22 (data exception: a NUL in a
// jsonb string, invalid text), class 23 (integrity) other than the key
// conflict handled by a re-run, class 54 (program limit: a value too long
// for an index). The same statement with the same values fails again, so
// the culprit is found by splitting, never by retrying.
func isDataError(err error) bool {
	code := pgCode(err)
	switch {
	case strings.HasPrefix(code, "22"), strings.HasPrefix(code, "54"):
		return true
	case strings.HasPrefix(code, "23"):
		return !(code == "23505" && isKeyConflict(err))
	}
	return false
}

// exec commits one batch; armsSoon adds the TimersChannel announcement of
// due (see soonDue) to the wake-ups that follow its commit.
func (w *Writer) exec(args []any, n int, due time.Time, armsSoon bool) (outcomes []outcome, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	defer func() {
		if err != nil {
			rollbackLeftOpen(ctx, conn)
		}
	}()
	// One round trip: the pipeline carries the whole transaction, then the
	// wake-ups in a transaction of their own, when this commit carries the
	// journal notice (see notices) or arms a timer soon. NOTIFY inside the
	// batch's transaction would take PostgreSQL's database-wide notify lock
	// at commit and hold it across the WAL flush, so the committers' flushes
	// would run one after the other instead of sharing one fsync. After the
	// COMMIT, with synchronous_commit off (a lost wake-up costs a poll
	// interval, never an entry: consumers read the journal, not the
	// notification), the lock is held for microseconds.
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(genericPlanSQL)
	b.Queue(w.stmt.sql, args...)
	b.Queue("COMMIT")
	carry := w.notices.claim(time.Now()) || armsSoon
	if carry {
		queueWake(b, armsSoon, due)
	}
	br := conn.SendBatch(ctx, b)
	defer func() {
		cerr := br.Close()
		if cerr != nil && err == nil && outcomes == nil {
			err = fmt.Errorf("commit batch: %w", cerr)
		}
	}()
	for _, step := range []string{"begin", "plan mode"} {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("%s: %w", step, err)
		}
	}
	got := make([]outcome, n)
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("append batch: %w", err)
	}
	for rows.Next() {
		var idx int64
		var ok bool
		if err := rows.Scan(&idx, &ok); err != nil {
			rows.Close()
			return nil, fmt.Errorf("append batch: %w", err)
		}
		if idx < 1 || idx > int64(n) {
			rows.Close()
			return nil, fmt.Errorf("append batch: result index %d out of range", idx)
		}
		if ok {
			got[idx-1] = outcomeOK
		} else {
			got[idx-1] = outcomeDuplicate
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("append batch: %w", err)
	}
	tag, err := br.Exec()
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	if tag.String() != "COMMIT" {
		return nil, fmt.Errorf("commit: transaction rolled back (%s)", tag)
	}
	// Committed: from here on nothing fails the batch. A failed wake-up
	// leaves its transaction aborted; end it so the connection goes back
	// to the pool clean.
	outcomes = got
	if !carry {
		w.notices.owe(time.Now())
		return outcomes, nil
	}
	if werr := w.wake(br, armsSoon); werr != nil {
		w.m.wakeFailures.Inc()
		_ = br.Close()
		rollbackLeftOpen(ctx, conn)
	}
	return outcomes, nil
}

// genericPlanSQL keeps the batch statement on its prepared (generic) plan.
// PostgreSQL plans a prepared statement anew for its parameters until the
// generic plan looks no dearer than those; a lone append (an idle node's
// every commit) always looked cheaper planned for one row, so each paid a
// full planning of this statement: 1.6 ms per one-append batch instead of
// 0.7 ms. The generic plan is the same shape at any batch size (index
// probes per row), so nothing is lost for large batches.
const genericPlanSQL = "SET LOCAL plan_cache_mode = force_generic_plan"

// queueWake queues the wake-up transaction: the journal notice, and the
// timers' when armsSoon.
func queueWake(b *pgx.Batch, armsSoon bool, due time.Time) {
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit = off")
	b.Queue("NOTIFY journal_appended")
	if armsSoon {
		b.Queue(notifyTimersSQL, TimersPayload(due))
	}
	b.Queue("COMMIT")
}

// notify sends the journal notice owed to commits that carried none.
func (w *Writer) notify() {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	b := &pgx.Batch{}
	queueWake(b, false, time.Time{})
	if err := w.pool.SendBatch(ctx, b).Close(); err != nil {
		w.m.wakeFailures.Inc()
		w.cfg.Log.Warn("journal notice not sent; consumers find the commits at their next poll", "err", err)
	}
}

// wake reads the results of the wake-up transaction exec queued after the
// batch's COMMIT.
func (w *Writer) wake(br pgx.BatchResults, armsSoon bool) error {
	steps := []string{"begin", "set", "notify journal"}
	if armsSoon {
		steps = append(steps, "notify timers")
	}
	for _, step := range append(steps, "commit") {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("wake-up %s: %w", step, err)
		}
	}
	return nil
}

// batchStatement is the statement a batch runs: its SQL answers one row
// (index, ok) per append that committed or was a duplicate; args lays the
// batch out as its parameters.
type batchStatement struct {
	sql  string
	args func([]*request) []any
}

// appendStatement writes everything an append commits (appendBatchSQL).
var appendStatement = batchStatement{sql: appendBatchSQL, args: batchArgs}

// batchArgs lays the batch out as column arrays for unnest.
func batchArgs(batch []*request) []any {
	n := len(batch)
	var (
		conv, account, inbox, etype, contactKey, status, channel, tags = make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n)
		// JSON goes as bytes: no copy into strings.
		event, item, summary = make([][]byte, n), make([][]byte, n), make([][]byte, n)
		withSummary          = make([]bool, n)
		epoch, version       = make([]int64, n), make([]int64, n)
		itemSeq              = make([]pgtype.Int8, n)
		addressed            = make([]bool, n)
		assignee             = make([]pgtype.Text, n)
		lastActivity         = make([]time.Time, n)
		waiting              = make([]pgtype.Timestamptz, n)
		due                  = make([]pgtype.Timestamptz, n) // automation: due_at
		keyIdx               []int64
		keyScope, keys       []string
	)
	for i, r := range batch {
		s := &r.a.Summary
		conv[i], account[i], inbox[i] = s.ID, s.AccountID, s.InboxID
		epoch[i], version[i] = r.a.Epoch, r.a.Event.Version
		etype[i], event[i], withSummary[i] = string(r.a.Event.Type), r.event, r.withSummary
		if r.a.Item != nil {
			itemSeq[i] = pgtype.Int8{Int64: r.a.Item.Seq, Valid: true}
			item[i] = r.item
		} else {
			item[i] = jsonNull
		}
		contactKey[i], status[i], channel[i], summary[i] = r.a.ContactKey, string(s.Status), string(s.Channel), r.sum
		addressed[i] = s.Addressed
		// Tags travel as one string per append (a 2-D array cannot be
		// unnested row by row); the separator is rejected in tags.
		tags[i] = strings.Join(s.Tags, tagSeparator)
		if s.AssigneeID != nil {
			assignee[i] = pgtype.Text{String: *s.AssigneeID, Valid: true}
		}
		lastActivity[i] = s.LastActivityAt
		if s.WaitingSince != nil {
			waiting[i] = pgtype.Timestamptz{Time: *s.WaitingSince, Valid: true}
		}
		if r.a.DueAt != nil {
			due[i] = pgtype.Timestamptz{Time: *r.a.DueAt, Valid: true}
		}
		for _, k := range r.keys {
			keyIdx = append(keyIdx, int64(i+1))
			keyScope = append(keyScope, k.Scope)
			keys = append(keys, k.Key)
		}
	}
	if keyIdx == nil {
		keyIdx, keyScope, keys = []int64{}, []string{}, []string{}
	}
	return []any{conv, epoch, version, account, inbox, etype, event, itemSeq, item, contactKey,
		status, addressed, assignee, channel, lastActivity, waiting, summary, keyIdx, keyScope, keys, tags, due, withSummary}
}

var jsonNull = []byte("null")

// appendBatchSQL applies a whole batch in one statement. Each append either
// lands completely or not at all, independently of the others:
//
//   - dup: appends with an idempotency key that already exists, each key
//     looked up in the index. As a plain join the planner hashed the
//     whole key table when it believed it small, and a prepared statement
//     keeps the plan it chose then: every batch read every key ever stored
//     (6 ms for 10,000 keys, growing). A LATERAL subquery with a LIMIT is
//     never flattened, so it stays one index probe per key at any size;
//   - advanced: the conditional head move — the fencing check. Under READ
//     COMMITTED a head row changed by a concurrent transaction (a newer
//     activation's ClaimEpoch) is re-checked against its new values, so a
//     stale activation can never slip through;
//   - journal, items, read model and keys are written only for the appends
//     whose head advanced. The journal's event gets its summary from the
//     one the read model stores: sent once and parsed once, not twice (it
//     is over half of an event's bytes).
//
// The result has one row per append that committed (ok) or was a duplicate
// of an append whose head still matched (not ok); any other append was
// fenced. Fencing wins over duplication, because a fenced activation must
// stop whatever its command was.
const appendBatchSQL = `
WITH input AS MATERIALIZED (
	SELECT t.*, t.summary_text::jsonb AS summary FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::int8[], $9::text[], $10::text[], $11::text[], $12::bool[], $13::text[], $14::text[],
		$15::timestamptz[], $16::timestamptz[], $17::text[], $21::text[], $22::timestamptz[], $23::bool[])
		WITH ORDINALITY AS t(conv, epoch, version, account_id, inbox_id, event_type, event,
			item_seq, item, contact_key, status, addressed, assignee_id, channel,
			last_activity_at, waiting_since, summary_text, tags, due_at, with_summary, idx)
),
keys AS (
	SELECT * FROM unnest($18::int8[], $19::text[], $20::text[]) AS k(idx, scope, key)
),
dup AS (
	SELECT DISTINCT k.idx FROM keys k
	CROSS JOIN LATERAL (SELECT FROM idempotency_keys ik WHERE ik.scope = k.scope AND ik.key = k.key LIMIT 1) hit
),
advanced AS (
	UPDATE conversation_heads h SET version = i.version
	FROM input i
	WHERE h.conversation_id = i.conv AND h.epoch = i.epoch AND h.version = i.version - 1
		AND NOT EXISTS (SELECT 1 FROM dup WHERE dup.idx = i.idx)
	RETURNING i.*
),
journal_rows AS (
	INSERT INTO journal (conversation_id, version, account_id, inbox_id, event_type, event)
	SELECT conv, version, account_id, inbox_id, event_type,
		CASE WHEN with_summary THEN event::jsonb || jsonb_build_object('summary', summary) ELSE event::jsonb END
	FROM advanced
),
item_rows AS (
	INSERT INTO items (conversation_id, seq, account_id, item)
	SELECT conv, item_seq, account_id, item::jsonb FROM advanced WHERE item_seq IS NOT NULL
	ON CONFLICT (conversation_id, seq) DO UPDATE SET item = excluded.item
),
read_model AS (
	INSERT INTO conversations (id, account_id, inbox_id, contact_key, version, status, addressed,
		assignee_id, channel, tags, last_activity_at, waiting_since, summary, due_at)
	SELECT conv, account_id, inbox_id, contact_key, version, status, addressed, assignee_id, channel,
		string_to_array(tags, E'\x1f'), last_activity_at, waiting_since, summary, due_at
	FROM advanced
	ON CONFLICT (id) DO UPDATE SET ` + conversationUpdateSet + `,
		due_at = excluded.due_at -- automation: the timer scanner's due index
	WHERE conversations.version < excluded.version
),
key_rows AS (
	INSERT INTO idempotency_keys (scope, key, account_id, conversation_id, version)
	SELECT k.scope, k.key, a.account_id, a.conv, a.version FROM keys k JOIN advanced a ON a.idx = k.idx
)
SELECT idx, true FROM advanced
UNION ALL
SELECT i.idx, false FROM dup JOIN input i ON i.idx = dup.idx
	JOIN conversation_heads h ON h.conversation_id = i.conv AND h.epoch = i.epoch AND h.version = i.version - 1
`

// saveSnapshotsSQL stores a set of snapshots (one per conversation), each
// only over an older one: a stale activation finishing late must not move
// the restore point backwards.
const saveSnapshotsSQL = `
INSERT INTO snapshots (conversation_id, version, state)
SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[])
ON CONFLICT (conversation_id) DO UPDATE SET version = excluded.version, state = excluded.state, created_at = now()
	WHERE snapshots.version < excluded.version`

// writeSnapshots writes snapshots in one statement.
func (w *Writer) writeSnapshots(snaps []snapshot) {
	n := len(snaps)
	convs, versions, states := make([]string, n), make([]int64, n), make([][]byte, n)
	for i, s := range snaps {
		convs[i], versions[i], states[i] = s.conv, s.version, s.state
		if states[i] == nil {
			states[i] = []byte{}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	if _, err := w.pool.Exec(ctx, saveSnapshotsSQL, convs, versions, states); err != nil {
		w.m.snapshots.WithLabelValues("failed").Add(float64(n))
		w.cfg.Log.Warn("snapshots not written; the journal still has every event", "snapshots", n, "err", err)
		return
	}
	w.snapshots.Add(int64(n))
	w.m.snapshots.WithLabelValues("ok").Add(float64(n))
}
