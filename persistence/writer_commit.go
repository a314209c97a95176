package persistence

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-dev/switchboard/persistence/pgparams"
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
	p := paramsPool.Get().(*pgparams.Params)
	defer paramsPool.Put(p)
	p.Reset()
	w.stmt.encode(p, batch)
	due, armsSoon := soonDue(batch, time.Now())
	for attempt := 1; ; attempt++ {
		outcomes, err := w.exec(p, len(batch), due, armsSoon)
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

// paramsPool keeps the committers' parameter buffers: each batch encodes
// into memory an earlier batch already grew (see pgparams).
var paramsPool = sync.Pool{New: func() any { return new(pgparams.Params) }}

// exec commits one batch; armsSoon adds the TimersChannel announcement of
// due (see soonDue) to the wake-ups that follow its commit.
//
// One round trip carries the whole transaction and then, when this commit
// carries the journal notice (see notices) or arms a timer soon, the
// wake-ups in a transaction of their own. NOTIFY inside the batch's
// transaction would take PostgreSQL's database-wide notify lock at commit
// and hold it across the WAL flush, so the committers' flushes would run one
// after the other instead of sharing one fsync. After the COMMIT, with
// synchronous_commit off (a lost wake-up costs a poll interval, never an
// entry: consumers read the journal, not the notification), the lock is
// held for microseconds.
//
// A sync point follows the COMMIT: PostgreSQL sends its answers at a sync
// (or when its output buffer fills), so without one the commit's answer
// waited for the wake-up transaction behind it. With it, the batch's callers
// are answered while PostgreSQL is still sending the wake-ups, whose answers
// are read afterwards (finishWake), off the callers' path.
//
// The batch goes through pgconn with parameters encoded by pgparams: pgx
// would encode them again into a buffer it regrows every batch.
func (w *Writer) exec(p *pgparams.Params, n int, due time.Time, armsSoon bool) (outcomes []outcome, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("acquire connection: %w", err)
	}
	st, err := w.statements(ctx, conn.Conn())
	if err != nil {
		finish(ctx, cancel, conn, nil, err)
		return nil, err
	}
	carry := w.notices.claim(time.Now()) || armsSoon
	pl := conn.Conn().PgConn().StartPipeline(ctx)
	conn.Conn().PgConn().Frontend().Send(roomFor(p))
	pl.SendQueryStatement(st.begin, nil, nil, nil)
	pl.SendQueryStatement(st.planMode, nil, nil, nil)
	pl.SendQueryStatement(st.batch, p.Values(), p.Formats(), binaryResults)
	pl.SendQueryStatement(st.commit, nil, nil, nil)
	pl.SendPipelineSync()
	if carry {
		st.sendWake(pl, armsSoon, due)
	}
	if err := pl.Flush(); err != nil {
		err = fmt.Errorf("send batch: %w", err)
		finish(ctx, cancel, conn, pl, err)
		return nil, err
	}
	outcomes, err = readCommit(pl, n)
	if err != nil || !carry {
		if err == nil {
			w.notices.owe(time.Now())
		}
		err = finish(ctx, cancel, conn, pl, err)
		if err != nil {
			return nil, err
		}
		return outcomes, nil
	}
	// Committed: from here on nothing fails the batch.
	w.wakes.Add(1)
	go w.finishWake(ctx, cancel, conn, pl)
	return outcomes, nil
}

// room is a message of no bytes that makes room in pgconn's send buffer
// for the pipeline about to be queued. pgconn starts every pipeline from a
// 1 KB buffer (it drops a larger one after each flush), and the batch's
// Bind message, appended one parameter at a time, regrew it step by step:
// about twice the batch's bytes allocated and copied, the largest
// allocation left on a write's path. Grown once here, the batch is copied
// in once.
type room int

// roomFor is the room a pipeline of the batch p needs: its parameters,
// their lengths and formats, and the few small messages around them.
func roomFor(p *pgparams.Params) room {
	n := 512
	for _, v := range p.Values() {
		n += 6 + len(v)
	}
	return room(n)
}

func (room) Frontend() {}

func (n room) Encode(dst []byte) ([]byte, error) { return slices.Grow(dst, int(n)), nil }

func (room) Decode([]byte) error { return errors.New("persistence: room is sent, never received") }

// readCommit reads a batch's answers up to the sync after its COMMIT: the
// outcome of each of its n appends.
func readCommit(pl *pgconn.Pipeline, n int) ([]outcome, error) {
	for _, step := range []string{"begin", "plan mode"} {
		rr, err := nextResult(pl, step)
		if err != nil {
			return nil, err
		}
		if _, err := rr.Close(); err != nil {
			return nil, fmt.Errorf("%s: %w", step, err)
		}
	}
	got := make([]outcome, n)
	rows, err := nextResult(pl, "append batch")
	if err != nil {
		return nil, err
	}
	for rows.NextRow() {
		v := rows.Values()
		if len(v) != 2 || len(v[0]) != 8 || len(v[1]) != 1 {
			rows.Close()
			return nil, fmt.Errorf("append batch: unexpected result row %q", v)
		}
		idx := int64(binary.BigEndian.Uint64(v[0]))
		if idx < 1 || idx > int64(n) {
			rows.Close()
			return nil, fmt.Errorf("append batch: result index %d out of range", idx)
		}
		if v[1][0] != 0 {
			got[idx-1] = outcomeOK
		} else {
			got[idx-1] = outcomeDuplicate
		}
	}
	if _, err := rows.Close(); err != nil {
		return nil, fmt.Errorf("append batch: %w", err)
	}
	commit, err := nextResult(pl, "commit")
	if err != nil {
		return nil, err
	}
	if tag, err := commit.Close(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	} else if tag.String() != "COMMIT" {
		return nil, fmt.Errorf("commit: transaction rolled back (%s)", tag)
	}
	if res, err := pl.GetResults(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	} else if _, ok := res.(*pgconn.PipelineSync); !ok {
		return nil, fmt.Errorf("commit: %T where its sync was expected", res)
	}
	return got, nil
}

// nextResult reads the result of the pipeline's next statement.
func nextResult(pl *pgconn.Pipeline, step string) (*pgconn.ResultReader, error) {
	res, err := pl.GetResults()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", step, err)
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return nil, fmt.Errorf("%s: %T where a statement's result was expected", step, res)
	}
	return rr, nil
}

// finish reads pl (if any) to its end and gives the connection back,
// rolling back a transaction that err (the batch's, if any) left open. It
// returns err, or the error reading the rest of pl when err is nil.
func finish(ctx context.Context, cancel context.CancelFunc, conn *pgxpool.Conn, pl *pgconn.Pipeline, err error) error {
	defer cancel()
	defer conn.Release()
	if pl != nil {
		if cerr := pl.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("commit batch: %w", cerr)
		}
	}
	if err != nil {
		rollbackLeftOpen(ctx, conn)
	}
	return err
}

// finishWake reads the answers to a committed batch's wake-ups. A failed
// wake-up leaves its transaction aborted; finish ends it, so the
// connection goes back to the pool clean, and its commit is owed the
// journal notice again: the trailing notice (notify) is its one retry,
// after which the consumers' next poll is the fallback.
func (w *Writer) finishWake(ctx context.Context, cancel context.CancelFunc, conn *pgxpool.Conn, pl *pgconn.Pipeline) {
	defer w.wakes.Done()
	if err := finish(ctx, cancel, conn, pl, nil); err != nil {
		w.m.wakeFailures.Inc()
		w.cfg.Log.Warn("journal notice failed after its commit; sending it again", "err", err)
		w.notices.owe(time.Now())
	}
}

// binaryResults asks for the batch statement's (index, ok) in binary.
var binaryResults = []int16{pgparams.BinaryFormat, pgparams.BinaryFormat}

// prepare returns the statement sql prepared on c under name: one round
// trip the first time on each connection, a lookup after that.
func prepare(ctx context.Context, c *pgx.Conn, name, sql string) (*pgconn.StatementDescription, error) {
	sd, err := c.Prepare(ctx, name, sql)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", name, err)
	}
	return sd, nil
}

// Statements without parameters the writer's batches send.
const (
	beginSQL       = "BEGIN"
	commitSQL      = "COMMIT"
	asyncCommitSQL = "SET LOCAL synchronous_commit = off"
	notifySQL      = "NOTIFY journal_appended"
)

// genericPlanSQL keeps the batch statement on its prepared (generic) plan.
// PostgreSQL plans a prepared statement anew for its parameters until the
// generic plan looks no dearer than those; a lone append (an idle node's
// every commit) always looked cheaper planned for one row, so each paid a
// full planning of this statement: 1.6 ms per one-append batch instead of
// 0.7 ms. The generic plan is the same shape at any batch size (index
// probes per row), so nothing is lost for large batches.
const genericPlanSQL = "SET LOCAL plan_cache_mode = force_generic_plan"

// writerStatements are the statements a writer's pipelines send, prepared
// on one connection (a pipeline cannot prepare: they are all prepared
// before it starts).
type writerStatements struct {
	begin, planMode, batch, commit *pgconn.StatementDescription
	async, notify, notifyTimers    *pgconn.StatementDescription
}

// statements prepares the writer's statements on c: round trips the first
// time on each connection, lookups after that.
func (w *Writer) statements(ctx context.Context, c *pgx.Conn) (*writerStatements, error) {
	st := &writerStatements{}
	for _, s := range []struct {
		sd        **pgconn.StatementDescription
		name, sql string
	}{
		{&st.begin, "switchboard_begin", beginSQL},
		{&st.planMode, "switchboard_generic_plan", genericPlanSQL},
		{&st.batch, w.stmt.name, w.stmt.sql},
		{&st.commit, "switchboard_commit", commitSQL},
		{&st.async, "switchboard_async_commit", asyncCommitSQL},
		{&st.notify, "switchboard_notify_journal", w.notifyJournal},
		{&st.notifyTimers, "switchboard_notify_timers", notifyTimersSQL},
	} {
		sd, err := prepare(ctx, c, s.name, s.sql)
		if err != nil {
			return nil, err
		}
		*s.sd = sd
	}
	return st, nil
}

// sendWake adds the wake-up transaction to pl, with its sync: the journal
// notice, and the timers' when armsSoon.
func (st *writerStatements) sendWake(pl *pgconn.Pipeline, armsSoon bool, due time.Time) {
	pl.SendQueryStatement(st.begin, nil, nil, nil)
	pl.SendQueryStatement(st.async, nil, nil, nil)
	pl.SendQueryStatement(st.notify, nil, nil, nil)
	if armsSoon {
		pl.SendQueryStatement(st.notifyTimers, [][]byte{[]byte(TimersPayload(due))}, nil, nil)
	}
	pl.SendQueryStatement(st.commit, nil, nil, nil)
	pl.SendPipelineSync()
}

// notify sends the journal notice owed to commits that carried none.
func (w *Writer) notify() {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	err := func() error {
		conn, err := w.pool.Acquire(ctx)
		if err != nil {
			cancel()
			return err
		}
		st, err := w.statements(ctx, conn.Conn())
		if err != nil {
			return finish(ctx, cancel, conn, nil, err)
		}
		pl := conn.Conn().PgConn().StartPipeline(ctx)
		st.sendWake(pl, false, time.Time{})
		return finish(ctx, cancel, conn, pl, pl.Flush())
	}()
	if err != nil {
		w.m.wakeFailures.Inc()
		w.cfg.Log.Warn("journal notice not sent; consumers find the commits at their next poll", "err", err)
	}
}

// batchStatement is the statement a batch runs: its SQL answers one row
// (index int8, ok bool) per append that committed or was a duplicate;
// encode lays the batch out as its parameters. name is what it is prepared
// as on each connection.
type batchStatement struct {
	name, sql string
	encode    func(*pgparams.Params, []*request)
}

// appendStatement writes everything an append commits (appendBatchSQL).
var appendStatement = batchStatement{name: "switchboard_append_batch", sql: appendBatchSQL, encode: encodeBatch}

// encodeBatch lays the batch out as column arrays for unnest, in the order
// of appendBatchSQL's parameters.
func encodeBatch(p *pgparams.Params, batch []*request) {
	texts := func(f func(r *request) string) {
		p.Array(pgparams.TextOID)
		for _, r := range batch {
			p.Text(f(r))
		}
		p.End()
	}
	jsons := func(f func(r *request) []byte) {
		p.Array(pgparams.TextOID)
		for _, r := range batch {
			p.Bytes(f(r))
		}
		p.End()
	}
	ints := func(f func(r *request) int64) {
		p.Array(pgparams.Int8OID)
		for _, r := range batch {
			p.Int8(f(r))
		}
		p.End()
	}
	bools := func(f func(r *request) bool) {
		p.Array(pgparams.BoolOID)
		for _, r := range batch {
			p.Bool(f(r))
		}
		p.End()
	}
	times := func(f func(r *request) *time.Time) {
		p.Array(pgparams.TimestamptzOID)
		for _, r := range batch {
			if t := f(r); t != nil {
				p.Time(*t)
			} else {
				p.Null()
			}
		}
		p.End()
	}
	texts(func(r *request) string { return r.a.Summary.ID })         // $1 conv
	ints(func(r *request) int64 { return r.a.Epoch })                // $2 epoch
	ints(func(r *request) int64 { return r.a.Event.Version })        // $3 version
	texts(func(r *request) string { return r.a.Summary.AccountID })  // $4
	texts(func(r *request) string { return r.a.Summary.InboxID })    // $5
	texts(func(r *request) string { return string(r.a.Event.Type) }) // $6
	jsons(func(r *request) []byte { return r.event })                // $7
	p.Array(pgparams.Int8OID)                                        // $8 item seq
	for _, r := range batch {
		if r.a.Item != nil {
			p.Int8(r.a.Item.Seq)
		} else {
			p.Null()
		}
	}
	p.End()
	p.Array(pgparams.TextOID) // $9 item: NULL when the event carries it
	for _, r := range batch {
		switch {
		case r.a.Item == nil:
			p.Bytes(jsonNull)
		case r.itemInEvent:
			p.Null()
		default:
			p.Bytes(r.item)
		}
	}
	p.End()
	texts(func(r *request) string { return r.a.ContactKey })             // $10
	texts(func(r *request) string { return string(r.a.Summary.Status) }) // $11
	bools(func(r *request) bool { return r.a.Summary.Addressed })        // $12
	p.Array(pgparams.TextOID)                                            // $13 assignee
	for _, r := range batch {
		if id := r.a.Summary.AssigneeID; id != nil {
			p.Text(*id)
		} else {
			p.Null()
		}
	}
	p.End()
	texts(func(r *request) string { return string(r.a.Summary.Channel) })     // $14
	times(func(r *request) *time.Time { return &r.a.Summary.LastActivityAt }) // $15
	times(func(r *request) *time.Time { return r.a.Summary.WaitingSince })    // $16
	jsons(func(r *request) []byte { return r.sum })                           // $17 summary
	// $18..$20: the idempotency keys, one row each, by the index of their
	// append.
	p.Array(pgparams.Int8OID)
	for i, r := range batch {
		for range r.keys {
			p.Int8(int64(i + 1))
		}
	}
	p.End()
	p.Array(pgparams.TextOID)
	for _, r := range batch {
		for _, k := range r.keys {
			p.Text(k.Scope)
		}
	}
	p.End()
	p.Array(pgparams.TextOID)
	for _, r := range batch {
		for _, k := range r.keys {
			p.Text(k.Key)
		}
	}
	p.End()
	// $21: tags travel as one string per append (a 2-D array cannot be
	// unnested row by row); the separator is rejected in tags.
	p.Array(pgparams.TextOID)
	for _, r := range batch {
		p.TextJoin(r.a.Summary.Tags, tagSeparator)
	}
	p.End()
	times(func(r *request) *time.Time { return r.a.DueAt })     // $22 automation: due_at
	bools(func(r *request) bool { return r.withSummary })       // $23
	ints(func(r *request) int64 { return r.a.SettingsVersion }) // $24 automation: settings of due_at
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
//     is over half of an event's bytes). The item row takes its item from
//     the parsed event when the event carries it (NULL sent as $9), for
//     the same reason;
//
// The result has one row per append that committed (ok) or was a duplicate
// of an append whose head still matched (not ok); any other append was
// fenced. Fencing wins over duplication, because a fenced activation must
// stop whatever its command was. The duplicates' heads are probed the way
// dup probes keys, from the duplicates (almost always none): as a join, the
// generic plan hashed the batch and scanned every head of the table for
// each batch until the table outgrew a few thousand conversations.
const appendBatchSQL = `
WITH input AS MATERIALIZED (
	SELECT t.*, t.summary_text::jsonb AS summary, t.event::jsonb AS ev FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::int8[], $9::text[], $10::text[], $11::text[], $12::bool[], $13::text[], $14::text[],
		$15::timestamptz[], $16::timestamptz[], $17::text[], $21::text[], $22::timestamptz[], $23::bool[], $24::int8[])
		WITH ORDINALITY AS t(conv, epoch, version, account_id, inbox_id, event_type, event,
			item_seq, item, contact_key, status, addressed, assignee_id, channel,
			last_activity_at, waiting_since, summary_text, tags, due_at, with_summary, settings_version, idx)
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
		CASE WHEN with_summary THEN ev || jsonb_build_object('summary', summary) ELSE ev END
	FROM advanced
),
item_rows AS (
	INSERT INTO items (conversation_id, seq, account_id, item)
	SELECT conv, item_seq, account_id, coalesce(item::jsonb, ev->'item') FROM advanced WHERE item_seq IS NOT NULL
	ON CONFLICT (conversation_id, seq) DO UPDATE SET item = excluded.item
),
read_model AS (
	INSERT INTO conversations (id, account_id, inbox_id, contact_key, version, status, addressed,
		assignee_id, channel, tags, last_activity_at, waiting_since, summary, due_at)
	SELECT conv, account_id, inbox_id, contact_key, version, status, addressed, assignee_id, channel,
		string_to_array(tags, E'\x1f'), last_activity_at, waiting_since, summary,
		CASE WHEN settings_version < (SELECT i.settings_version FROM inboxes i WHERE i.id = advanced.inbox_id)
			THEN now() ELSE due_at END -- decided under older settings: due now, to decide again
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
	CROSS JOIN LATERAL (SELECT FROM conversation_heads h
		WHERE h.conversation_id = i.conv AND h.epoch = i.epoch AND h.version = i.version - 1 LIMIT 1) head
`

// saveSnapshotsSQL stores a set of snapshots (one per conversation), each
// only over an older one: a stale activation finishing late must not move
// the restore point backwards. One of the same version replaces it: a state
// can change without an event (conversation.State.NobodyAvailable).
const saveSnapshotsSQL = `
INSERT INTO snapshots (conversation_id, version, state)
SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[])
ON CONFLICT (conversation_id) DO UPDATE SET version = excluded.version, state = excluded.state, created_at = now()
	WHERE snapshots.version <= excluded.version`

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
