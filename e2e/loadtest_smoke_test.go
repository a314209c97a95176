package e2e

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/loadtest"
)

// TestLoadtestSmoke runs the load tool for a few seconds at a low rate
// against a real node, with the indexer paused for part of it, and checks
// its correctness counters and that every figure is present — not speed.
func TestLoadtestSmoke(t *testing.T) {
	n := testNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := loadtest.SmokeConfig(n.URL(), testAdminToken)
	cfg.PauseIndexerFor = time.Second
	cfg.SearchSample = 0.2
	rep, err := loadtest.Run(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Check(); err != nil {
		raw, _ := json.MarshalIndent(rep, "", "  ")
		t.Fatalf("load tool reports a failure: %v\n%s", err, raw)
	}
	if rep.Counters.Stale+rep.Counters.Lost+rep.Counters.Duplicates+rep.Counters.Gaps != 0 {
		t.Fatalf("correctness counters: %+v", rep.Counters)
	}
	if rep.Throughput.Acked == 0 || rep.Throughput.Updates == 0 || rep.IndexerPause == nil || rep.IndexerPause.Error != "" {
		t.Fatalf("figures missing: throughput %+v, pause %+v", rep.Throughput, rep.IndexerPause)
	}
	t.Logf("smoke: %d acked, ack p99 %.1f ms, freshness p99 %.1f ms, index lag p99 %.1f ms",
		rep.Throughput.Acked, rep.Latency.Ack.P99MS, rep.Latency.Freshness.P99MS, rep.Latency.IndexLag.P99MS)
}
