package persistence

import (
	"context"
	"strings"
	"testing"
)

// TestAppendProbesTheKeyAndHeadIndexes plans the append statement the way
// a prepared statement keeps it after a few runs (generic), on a young
// database (a new installation's, a benchmark's): no keys yet, a few
// hundred conversations, analyzed. The duplicate
// check must probe the key index: as a plain join it was planned as a hash
// of the whole key table, believed small, and that plan stayed while the
// table grew with every message (6 ms per batch at 10,000 keys). The
// duplicates' head check likewise: as a join it scanned every head for
// every batch.
func TestAppendProbesTheKeyAndHeadIndexes(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	pooled, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn := pooled.Hijack() // its settings must not go back to the pool
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, q := range []string{
		"INSERT INTO conversation_heads SELECT 'cv_young_' || g, 1, 1 FROM generate_series(1, 500) g",
		"ANALYZE conversation_heads",
		"SET plan_cache_mode = force_generic_plan",
		"PREPARE append_batch AS " + appendBatchSQL,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := conn.Query(ctx, `EXPLAIN EXECUTE append_batch('{cv_plan}', '{1}', '{1}', '{acc}', '{ib}', '{inbound_message}', '{"{}"}',
		'{1}', '{"{}"}', '{handle:x}', '{open}', '{f}', '{NULL}', '{sms}', '{2025-01-01T00:00:00Z}', '{NULL}', '{"{}"}',
		'{1}', '{request}', '{k1}', '{""}', '{NULL}', '{t}', '{0}')`)
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(l + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plan.String(), "Seq Scan on idempotency_keys") || !strings.Contains(plan.String(), "idempotency_keys_pkey on idempotency_keys ik") {
		t.Fatalf("the duplicate check does not probe the key index:\n%s", plan.String())
	}
	if strings.Contains(plan.String(), "Seq Scan on conversation_heads") {
		t.Fatalf("the append statement scans the heads:\n%s", plan.String())
	}
	if strings.Contains(plan.String(), "Seq Scan on inboxes") || !strings.Contains(plan.String(), "inboxes_pkey") {
		t.Fatalf("the settings version is not read by the inbox's key:\n%s", plan.String())
	}
}

// TestLoneAppendsUseTheGenericPlan: one append at a time, as an idle node
// commits, runs the prepared plan. PostgreSQL kept planning the statement
// anew for a lone append (its plan for one row looked cheaper than the
// generic one), a full planning per commit (1.6 ms per append instead of
// 0.7 ms).
func TestLoneAppendsUseTheGenericPlan(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w := NewWriter(s.Pool(), WriterConfig{}, nil)
	epoch := claim(t, s, "cv_lone")
	for v := int64(1); v <= 12; v++ {
		if err := w.Append(ctx, testAppend("cv_lone", epoch, v, message(v, "alone"))); err != nil {
			t.Fatal(err)
		}
	}
	// Closed, the writer has given back every connection (a commit's
	// wake-up, or a trailing notice, holds one a little after the commit
	// is answered), so the idle ones below are all it used.
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var custom, generic int64
	for _, c := range s.Pool().AcquireAllIdle(ctx) {
		var cu, ge int64
		err := c.QueryRow(ctx, `SELECT coalesce(sum(custom_plans), 0)::int8, coalesce(sum(generic_plans), 0)::int8
			FROM pg_prepared_statements WHERE statement LIKE '%journal_rows AS%'`).Scan(&cu, &ge)
		c.Release()
		if err != nil {
			t.Fatal(err)
		}
		custom, generic = custom+cu, generic+ge
	}
	if custom > 0 || generic < 12 {
		t.Fatalf("the append statement ran %d custom and %d generic plans for 12 lone appends, want 0 and 12", custom, generic)
	}
}
