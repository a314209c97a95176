package loadtest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// fullScenario asks for every figure the tool can produce.
func fullScenario() Config {
	cfg := DefaultConfig()
	cfg.URL, cfg.AdminToken = "http://127.0.0.1:1", "secret-admin"
	cfg.PauseIndexerFor = time.Second
	cfg.CompareSQL, cfg.DatabaseURL = true, "postgres://user:secret-pw@localhost/db"
	cfg.MaxAckP99, cfg.MaxFreshnessP99 = 50*time.Millisecond, 20*time.Millisecond
	return cfg
}

// reportFrom builds a report as Run would, with every histogram fed.
func reportFrom(cfg Config, feed bool, c trackerCounts) *Report {
	r := &runner{cfg: cfg, runID: "abcd1234", errKinds: map[string]int64{}, firstErr: map[string]string{}}
	for _, h := range []**histogram{&r.ack, &r.ackFromSend, &r.fresh, &r.freshPaused, &r.indexLag, &r.indexLagPaused, &r.schedLag, &r.apiPage, &r.sqlPage} {
		*h = newHistogram()
		if feed {
			for i := 1; i <= 1000; i++ {
				(*h).Record(time.Duration(i) * 10 * time.Microsecond)
			}
		}
	}
	if feed {
		r.acked.Store(1000)
		now := time.Now()
		r.pausedSince.Store(now.UnixNano())
		r.resumedAt.Store(now.Add(time.Second).UnixNano())
	}
	start := time.Now()
	return r.report(start, start.Add(12*time.Second), c, nil)
}

// jsonPaths lists every leaf of v as dotted paths.
func jsonPaths(prefix string, v any, out map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			jsonPaths(p, e, out)
		}
	default:
		out[prefix] = v
	}
}

func TestReportJSONHasEveryFigure(t *testing.T) {
	rep := reportFrom(fullScenario(), true, trackerCounts{})
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "secret") {
		t.Fatalf("the report leaks a credential:\n%s", buf.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	paths := map[string]any{}
	jsonPaths("", doc, paths)

	want := []string{
		"tool", "run_id", "date", "elapsed_s", "measured_s", "ok",
		"machine.hostname", "machine.goos", "machine.goarch", "machine.num_cpu", "machine.go_version",
		"scenario.url", "scenario.accounts", "scenario.inboxes_per_account", "scenario.contacts_per_inbox",
		"scenario.agents_per_inbox", "scenario.rate", "scenario.call_share", "scenario.reply_share",
		"scenario.duration_s", "scenario.warmup_s", "scenario.workers", "scenario.search_sample",
		"scenario.pause_indexer_for_s", "scenario.compare_sql", "scenario.max_ack_p99_ms", "scenario.max_freshness_p99_ms",
		"throughput.target_rate", "throughput.achieved_rate", "throughput.scheduled", "throughput.sent",
		"throughput.acked", "throughput.writes", "throughput.messages", "throughput.call_events", "throughput.replies",
		"indexer_pause.paused_s", "indexer_pause.index_lag_while_paused_p99_ms", "indexer_pause.freshness_while_paused_p99_ms",
		"compare_sql.ratio_p50", "compare_sql.ratio_p99",
		"counters.stale", "counters.lost", "counters.lost_updates", "counters.lost_search", "counters.duplicates",
		"counters.gaps", "counters.coalesced", "counters.seq_jumps", "counters.resyncs", "counters.redelivered",
		"counters.unverified", "counters.errors", "counters.reconnects",
	}
	for _, lat := range []string{
		"latency_ms.ack", "latency_ms.ack_from_send", "latency_ms.freshness", "latency_ms.freshness_while_paused", "latency_ms.index_lag",
		"latency_ms.index_lag_while_paused", "latency_ms.schedule_lag", "compare_sql.api", "compare_sql.sql",
	} {
		for _, f := range []string{"count", "min_ms", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"} {
			want = append(want, lat+"."+f)
		}
	}
	for _, p := range want {
		v, ok := paths[p]
		if !ok || v == nil {
			t.Errorf("JSON lacks %s", p)
		}
	}
	if p99 := paths["latency_ms.ack.p99_ms"].(float64); p99 < 9.8 || p99 > 10 {
		t.Errorf("ack p99 = %v ms, want about 9.9 (values 0.01..10 ms)", p99)
	}
	if n := len(doc["thresholds"].([]any)); n != 3 {
		t.Errorf("%d thresholds, want 3 (ack, freshness, errors)", n)
	}
	if err := rep.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestValidateNamesMissingFigures(t *testing.T) {
	rep := reportFrom(fullScenario(), false, trackerCounts{})
	err := rep.Validate()
	if err == nil {
		t.Fatal("Validate of an empty report = nil")
	}
	for _, name := range []string{
		"throughput.achieved_rate", "latency_ms.ack", "latency_ms.freshness", "latency_ms.index_lag",
		"latency_ms.index_lag_while_paused", "latency_ms.freshness_while_paused", "latency_ms.schedule_lag",
		"compare_sql.api", "compare_sql.sql",
	} {
		if !strings.Contains(err.Error(), "missing figure: "+name+"\n") && !strings.HasSuffix(err.Error(), "missing figure: "+name) {
			t.Errorf("Validate does not name %s:\n%v", name, err)
		}
	}
	if rep.OK {
		t.Error("OK despite missing figures")
	}

	// Figures the scenario did not ask for are not required.
	cfg := fullScenario()
	cfg.PauseIndexerFor, cfg.CompareSQL, cfg.SearchSample, cfg.Agents = 0, false, 0, 0
	rep = reportFrom(cfg, true, trackerCounts{})
	rep.Latency.Freshness, rep.Latency.IndexLag = nil, nil
	if err := rep.Validate(); err != nil {
		t.Errorf("Validate of a scenario without agents, search, pause or SQL: %v", err)
	}
	if rep.IndexerPause != nil || rep.CompareSQL != nil {
		t.Error("sections present for features not asked for")
	}
}

func TestValidateCorrectnessCounters(t *testing.T) {
	rep := reportFrom(fullScenario(), true, trackerCounts{Stale: 1, Gaps: 2, Duplicates: 3, LostUpdates: 4, Coalesced: 9, Resyncs: 1})
	err := rep.Validate()
	if err == nil {
		t.Fatal("Validate = nil with nonzero counters")
	}
	for _, want := range []string{"stale = 1", "gaps = 2", "duplicates = 3", "lost = 4"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "coalesced") || strings.Contains(err.Error(), "resyncs") {
		t.Errorf("informational counters judged as errors:\n%v", err)
	}
}

func TestThresholds(t *testing.T) {
	cfg := fullScenario()
	cfg.MaxAckP99 = 5 * time.Millisecond        // p99 is ~9.9ms: missed
	cfg.MaxFreshnessP99 = 50 * time.Millisecond // met
	rep := reportFrom(cfg, true, trackerCounts{})
	if err := rep.Validate(); err != nil {
		t.Fatalf("Validate: %v (thresholds are not its business)", err)
	}
	err := rep.Check()
	if err == nil || !strings.Contains(err.Error(), "max-ack-p99") || strings.Contains(err.Error(), "max-freshness-p99") {
		t.Fatalf("Check = %v, want only max-ack-p99 missed", err)
	}
	var sum bytes.Buffer
	if err := rep.WriteSummary(&sum); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FAIL", "--max-ack-p99 5 ms: 9.9", "MISSED", "freshness", "index lag, indexer paused", "first page, SQL", "SQL/API"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
}
