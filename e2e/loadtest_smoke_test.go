package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
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
	cfg.ProfilePath = filepath.Join(t.TempDir(), "cpu.pprof")
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
	// The timeline (--timeline, 1 s by default): the window's intervals,
	// every write of the window in one of them.
	var inTimeline int64
	for _, iv := range rep.Timeline {
		inTimeline += iv.Writes
		if iv.Writes > 0 && (iv.Ack == nil || iv.Freshness == nil) {
			t.Fatalf("interval at %gs: %d writes without their figures", iv.AtS, iv.Writes)
		}
	}
	if len(rep.Timeline) != int(cfg.Duration/cfg.Timeline) || inTimeline != rep.Latency.Ack.Count {
		t.Fatalf("timeline: %d intervals holding %d writes; want %d intervals holding the %d acknowledged",
			len(rep.Timeline), inTimeline, int(cfg.Duration/cfg.Timeline), rep.Latency.Ack.Count)
	}
	// The node's CPU over the window and its profile (--profile).
	if c := rep.NodeCPU; c == nil || c.Error != "" || c.Writes == 0 || c.CPUSeconds <= 0 || c.USPerWrite <= 0 {
		t.Fatalf("node cpu: %+v", rep.NodeCPU)
	}
	// A pprof profile is a gzipped protobuf; go tool pprof reads it.
	raw, err := os.ReadFile(cfg.ProfilePath)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("--profile wrote no CPU profile (%d bytes): %v", len(raw), err)
	}
	if pb, err := io.ReadAll(zr); err != nil || len(pb) == 0 {
		t.Fatalf("--profile wrote no CPU profile: %d bytes, %v", len(pb), err)
	}
	t.Logf("smoke: %d acked, ack p99 %.1f ms, freshness p99 %.1f ms, index lag p99 %.1f ms",
		rep.Throughput.Acked, rep.Latency.Ack.P99MS, rep.Latency.Freshness.P99MS, rep.Latency.IndexLag.P99MS)
}
