package conversation

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkDecideInbound decides an inbound message for a conversation with
// a full history (remembered keys at their bound) under an SLA and
// round-robin, as a node does for every message.
//
//	go test -run '^$' -bench DecideInbound -benchmem ./domain/conversation
func BenchmarkDecideInbound(b *testing.B) {
	s := &State{}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	id := func() string { n++; return fmt.Sprint("msg_", n) }
	for i := 0; i < 300; i++ {
		c := inbound("hello")
		c.IdempotencyKey = fmt.Sprint("k", i)
		c.Settings = Settings{SLAFirstResponse: time.Hour, AutoAssign: AutoAssignRoundRobin}
		ev, err := Decide(s, c, now.Add(time.Duration(i)*time.Second), id)
		if err != nil {
			b.Fatal(err)
		}
		Apply(s, ev)
	}
	c := inbound("hello again")
	c.IdempotencyKey = "kx"
	c.Settings = Settings{SLAFirstResponse: time.Hour, AutoAssign: AutoAssignRoundRobin}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Decide(s, c, now.Add(time.Hour), id); err != nil {
			b.Fatal(err)
		}
	}
}
