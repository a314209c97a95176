package indexer

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-dev/switchboard/consumers/journal"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/search"
)

// Following the journal into the backend: the active indexer's loop.

// lead follows the journal on conn, which holds the lock.
func (ix *Indexer) lead(ctx context.Context, conn *pgx.Conn) error {
	appended := ix.hub.Subscribe(journal.Channel)
	defer appended.Close()
	cur, err := journal.LoadCursor(ctx, conn, ix.cfg.CursorName)
	if err != nil {
		return fmt.Errorf("indexer: %w", err)
	}
	ix.log.Info("search indexer resuming", "cursor", cur.String())
	idle := ix.cfg.PollInterval
	pendingWait := time.Duration(0)
	for {
		if err := ix.waitUnpaused(ctx); err != nil {
			return nil
		}
		round := time.Now()
		read, err := journal.ReadBatchOf(ctx, conn, cur, ix.cfg.BatchSize, messageEvents, "item")
		ix.rounds.Add(1)
		if err != nil {
			return fmt.Errorf("indexer: %w", err)
		}
		batch := read.Entries
		if len(batch) == 0 {
			// Committed rows waiting above the horizon: the transactions
			// before them usually finish within milliseconds, so look again
			// soon (doubling), rather than after a whole poll interval.
			wait := idle
			if read.Pending {
				pendingWait = min(max(2*pendingWait, 2*time.Millisecond), idle)
				wait = pendingWait
			} else {
				pendingWait = 0
			}
			appended.Wait(ctx, wait)
			continue
		}
		pendingWait = 0
		if ix.isPaused() {
			// Paused while this batch was read: it waits for the resume,
			// so that nothing committed after Pause returned is indexed.
			continue
		}
		start := time.Now()
		next, err := ix.index(ctx, conn, batch)
		if err != nil {
			return err
		}
		cur = next
		// Catching up on a backlog (after an outage or a pause) must not
		// take the CPU that ingestion and inbox updates need: search is a
		// consumer, never on the hot path. A full batch means there is a
		// backlog; rest in proportion to the time the batch took.
		if len(batch) == ix.cfg.BatchSize && ix.cfg.CatchUpDuty < 1 {
			rest := time.Duration(float64(time.Since(start)) * (1/ix.cfg.CatchUpDuty - 1))
			if err := journal.Sleep(ctx, rest); err != nil {
				return nil
			}
		} else if len(batch) < ix.cfg.BatchSize && ix.cfg.Gather > 0 {
			if err := journal.Sleep(ctx, ix.cfg.Gather-time.Since(round)); err != nil {
				return nil
			}
		}
	}
}

// index sends one batch to the backend (retrying until it is accepted),
// then records its poison documents and moves the cursor past it, in one
// transaction.
func (ix *Indexer) index(ctx context.Context, conn *pgx.Conn, batch []journal.Entry) (journal.Cursor, error) {
	docs, failures, byID := decode(batch)
	if len(docs) > 0 {
		rejected, err := ix.upsert(ctx, docs)
		if err != nil {
			return journal.Cursor{}, err
		}
		for _, r := range rejected {
			e, ok := byID[r.ID]
			if !ok {
				ix.log.Warn("search backend refused a document that was not in the batch", "message_id", r.ID, "reason", r.Reason)
				continue
			}
			failures = append(failures, failure{entry: e, messageID: r.ID, reason: r.Reason})
		}
		ok := int64(len(docs) - len(rejected))
		ix.indexed.Add(ok)
		ix.m.indexed.Add(float64(ok))
	}
	next := batch[len(batch)-1].Cursor
	if err := ix.commit(ctx, conn, next, failures); err != nil {
		return journal.Cursor{}, err
	}
	for _, f := range failures {
		ix.log.Warn("search: skipped a document that cannot be indexed; recorded in search_failures",
			"conversation_id", f.entry.ConversationID, "version", f.entry.Version,
			"account_id", f.entry.AccountID, "message_id", f.messageID, "reason", f.reason)
	}
	ix.skipped.Add(int64(len(failures)))
	ix.m.errors.WithLabelValues("poison").Add(float64(len(failures)))
	ix.setError(nil)
	return next, nil
}

// upsert calls the backend until it accepts the batch, with backoff between
// attempts. It gives up only when ctx is done.
func (ix *Indexer) upsert(ctx context.Context, docs []search.Document) ([]search.DocError, error) {
	bo := backoff{min: ix.cfg.BackoffMin, max: ix.cfg.BackoffMax}
	for attempt := 1; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, ix.cfg.UpsertTimeout)
		rejected, err := ix.backend.Upsert(callCtx, docs)
		cancel()
		if err == nil {
			if attempt > 1 {
				ix.log.Info("search backend accepted the batch again", "attempts", attempt, "documents", len(docs))
			}
			return rejected, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		ix.m.errors.WithLabelValues("backend").Inc()
		ix.setError(err)
		d := bo.next()
		// A long outage would otherwise log every few seconds for hours.
		if attempt == 1 || attempt%10 == 0 {
			ix.log.Warn("search backend failed; batch kept and retried", "err", err,
				"attempt", attempt, "documents", len(docs), "retry_in", d)
		}
		if err := journal.Sleep(ctx, d); err != nil {
			return nil, err
		}
		if err := ix.waitUnpaused(ctx); err != nil {
			return nil, err
		}
	}
}

// decode turns journal entries into documents. Only message and note items
// are searchable; other events (calls, updates) just move the cursor. An
// event that should be a message but cannot be decoded is a poison entry.
func decode(batch []journal.Entry) ([]search.Document, []failure, map[string]journal.Entry) {
	var docs []search.Document
	var failures []failure
	byID := make(map[string]journal.Entry)
	for _, e := range batch {
		if e.Event == nil {
			continue
		}
		// The feed loads only the event's item: the event also carries the
		// whole summary, which the indexer has no use for.
		it, err := decodeItem(e.Event)
		if err != nil {
			failures = append(failures, failure{entry: e, reason: "undecodable event: " + err.Error()})
			continue
		}
		if it == nil || it.ID == "" {
			failures = append(failures, failure{entry: e, reason: "message event without an item id"})
			continue
		}
		if it.Kind != conversation.KindMessage && it.Kind != conversation.KindNote {
			continue
		}
		d := search.Document{
			ID: it.ID, AccountID: e.AccountID, InboxID: e.InboxID, ConversationID: e.ConversationID,
			Seq: it.Seq, Direction: string(it.Direction), Kind: string(it.Kind), Body: it.Body, CreatedAt: it.CreatedAt,
		}
		if d.Seq == 0 {
			d.Seq = e.Version
		}
		if d.CreatedAt.IsZero() {
			d.CreatedAt = e.CreatedAt
		}
		docs = append(docs, d)
		byID[d.ID] = e
	}
	return docs, failures, byID
}
