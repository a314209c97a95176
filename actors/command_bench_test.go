package actors

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkInboundCommand sends inbound messages through Engine.command,
// from 64 goroutines to 500 conversations of one inbox, each committed by
// the group-commit writer to a real PostgreSQL and announced to the inbox:
// a write's path below HTTP. PostgreSQL runs in its own process, so
// allocs/op, B/op and cpu-µs/op (this process's CPU time per write, user
// and system) are the node's alone; ns/op depends on the machine's load.
//
//	go test -run '^$' -bench 'InboundCommand$' -benchtime 20000x ./actors
func BenchmarkInboundCommand(b *testing.B) {
	const convs = 500
	n := startNode(b, newDatabase(b), nil, Config{})
	tn := newTenantIDs(b, n.store, "Bench")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	phone := func(i int64) string { return fmt.Sprintf("+1888%07d", i%convs) }
	// Activate every conversation outside the measure.
	for i := range int64(convs) {
		if _, err := n.engine.command(ctx, inboundCmd(tn, phone(i), "first", fmt.Sprint("warm-", i))); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Int64
	b.SetParallelism(32) // × GOMAXPROCS goroutines
	b.ReportAllocs()
	cpu0 := processCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			if _, err := n.engine.command(ctx, inboundCmd(tn, phone(i), "benchmark message body of a typical length", fmt.Sprint("b-", i))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// processCPU is the CPU time this process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkInboundCommandIdle sends one inbound message at a time, 10 ms
// apart, as an idle node sees them (100 msg/s): ns/op is a write's latency
// below HTTP when nothing else runs. The 10 ms pause is the workload, not
// synchronization.
//
//	go test -run '^$' -bench InboundCommandIdle -benchtime 500x ./actors
func BenchmarkInboundCommandIdle(b *testing.B) {
	n := startNode(b, newDatabase(b), nil, Config{})
	tn := newTenantIDs(b, n.store, "Bench")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := n.engine.command(ctx, inboundCmd(tn, "+18880000000", "first", "warm")); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		time.Sleep(10 * time.Millisecond)
		b.StartTimer()
		start := time.Now()
		if _, err := n.engine.command(ctx, inboundCmd(tn, "+18880000000", "idle message", fmt.Sprint("idle-", i))); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
