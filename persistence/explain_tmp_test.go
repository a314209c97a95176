package persistence

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestExplainTmp(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, ddl := range strings.Split(os.Getenv("TMP_DDL"), ";") {
		if strings.TrimSpace(ddl) != "" {
			if _, err := s.Pool().Exec(ctx, ddl); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ds []time.Duration
	for round := 0; round < 12; round++ {
		var batch []*request
		for i := range 500 {
			conv := fmt.Sprintf("cv_e%d", i)
			epoch, ver, _ := s.ClaimEpoch(ctx, conv)
			r, err := newRequest(ctx, testAppend(conv, epoch, ver+1, message(ver+1, "benchmark message body"), IdempotencyKey{"ext:x", fmt.Sprint(round, i)}))
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, r)
		}
		start := time.Now()
		rows, err := s.Pool().Query(ctx, appendBatchSQL, batchArgs(batch)...)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
		}
		rows.Close()
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	t.Logf("median %v min %v", ds[len(ds)/2], ds[0])
}
