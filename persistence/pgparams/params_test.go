package pgparams_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/switchboard-dev/switchboard/persistence/pgparams"
	"github.com/switchboard-dev/switchboard/persistence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// column is one array parameter: how pgparams writes it and the same
// values as pgx takes them.
type column struct {
	oid   uint32 // the array's OID, for pgx
	write func(p *pgparams.Params)
	pgx   any
}

// randomColumns are arrays of every supported element type, with NULLs,
// empty arrays and odd text (multi-byte, quotes, braces, commas: what the
// text format would have to escape).
func randomColumns(r *rand.Rand) []column {
	n := r.IntN(5) // 0..4 elements: empty arrays included
	texts := make([]string, n)
	nullable := make([]pgtype.Text, n)
	raw := make([][]byte, n)
	ints := make([]int64, n)
	nints := make([]pgtype.Int8, n)
	bools := make([]bool, n)
	times := make([]time.Time, n)
	ntimes := make([]pgtype.Timestamptz, n)
	pieces := []string{"a", "é", "日本", `"`, `\`, "{", "}", ",", " ", "NULL", `{"k":[1,2]}`}
	parts, joined := make([][]string, n), make([]string, n)
	for i := range n {
		var sb strings.Builder
		for range r.IntN(6) {
			sb.WriteString(pieces[r.IntN(len(pieces))])
		}
		texts[i] = sb.String()
		for range r.IntN(4) {
			parts[i] = append(parts[i], pieces[r.IntN(len(pieces))])
		}
		joined[i] = strings.Join(parts[i], "\x1f")
		raw[i] = []byte(texts[i])
		if r.IntN(3) > 0 {
			nullable[i] = pgtype.Text{String: texts[i], Valid: true}
		}
		ints[i] = r.Int64() - r.Int64()
		if r.IntN(3) > 0 {
			nints[i] = pgtype.Int8{Int64: ints[i], Valid: true}
		}
		bools[i] = r.IntN(2) == 0
		// Microsecond times either side of 2000-01-01 and of 1970.
		times[i] = time.UnixMicro(r.Int64N(4_000_000_000_000_000) - 1_000_000_000_000_000).UTC()
		if r.IntN(3) > 0 {
			ntimes[i] = pgtype.Timestamptz{Time: times[i], Valid: true}
		}
	}
	// col is an array column of n elements of type elem, element i
	// written by put (false: NULL).
	col := func(oid, elem uint32, put func(p *pgparams.Params, i int) bool, values any) column {
		return column{oid, func(p *pgparams.Params) {
			p.Array(elem)
			for i := range n {
				if !put(p, i) {
					p.Null()
				}
			}
			p.End()
		}, values}
	}
	return []column{
		col(pgtype.TextArrayOID, pgparams.TextOID, func(p *pgparams.Params, i int) bool { p.Text(texts[i]); return true }, texts),
		col(pgtype.TextArrayOID, pgparams.TextOID, func(p *pgparams.Params, i int) bool { p.Bytes(raw[i]); return true }, texts),
		col(pgtype.TextArrayOID, pgparams.TextOID, func(p *pgparams.Params, i int) bool { p.TextJoin(parts[i], "\x1f"); return true }, joined),
		col(pgtype.TextArrayOID, pgparams.TextOID, func(p *pgparams.Params, i int) bool {
			if nullable[i].Valid {
				p.Text(nullable[i].String)
			}
			return nullable[i].Valid
		}, nullable),
		col(pgtype.Int8ArrayOID, pgparams.Int8OID, func(p *pgparams.Params, i int) bool { p.Int8(ints[i]); return true }, ints),
		col(pgtype.Int8ArrayOID, pgparams.Int8OID, func(p *pgparams.Params, i int) bool {
			if nints[i].Valid {
				p.Int8(nints[i].Int64)
			}
			return nints[i].Valid
		}, nints),
		col(pgtype.BoolArrayOID, pgparams.BoolOID, func(p *pgparams.Params, i int) bool { p.Bool(bools[i]); return true }, bools),
		col(pgtype.TimestamptzArrayOID, pgparams.TimestamptzOID, func(p *pgparams.Params, i int) bool {
			if ntimes[i].Valid {
				p.Time(ntimes[i].Time)
			}
			return ntimes[i].Valid
		}, ntimes),
		col(pgtype.TimestamptzArrayOID, pgparams.TimestamptzOID, func(p *pgparams.Params, i int) bool { p.Time(times[i]); return true }, times),
	}
}

// TestEncodesAsPgxDoes holds every parameter to pgx's own binary encoding
// of the same values, byte for byte, across many random lists written into
// one reused Params (so a stale byte of a longer earlier list would show).
func TestEncodesAsPgxDoes(t *testing.T) {
	m := pgtype.NewMap()
	r := rand.New(rand.NewPCG(1, 2))
	var p pgparams.Params
	for round := range 300 {
		p.Reset()
		cols := randomColumns(r)
		r.Shuffle(len(cols), func(i, j int) { cols[i], cols[j] = cols[j], cols[i] })
		for _, c := range cols {
			c.write(&p)
		}
		if p.Len() != len(cols) {
			t.Fatalf("round %d: %d parameters, want %d", round, p.Len(), len(cols))
		}
		values := p.Values()
		for i, c := range cols {
			want, err := m.Encode(c.oid, pgtype.BinaryFormatCode, c.pgx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(values[i], want) {
				t.Fatalf("round %d, parameter %d (%T %v):\n got % x\nwant % x", round, i, c.pgx, c.pgx, values[i], want)
			}
			if p.Formats()[i] != pgtype.BinaryFormatCode {
				t.Fatalf("parameter %d: format %d", i, p.Formats()[i])
			}
		}
	}
}

// TestPostgreSQLReadsWhatWasWritten sends the parameters to a real
// PostgreSQL and reads the values back as it prints them: what the server
// parsed is what was meant, including empty arrays, NULLs, odd text and
// times before 1970 and 2000.
func TestPostgreSQLReadsWhatWasWritten(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const sql = `SELECT $1::text[], $2::int8[], $3::bool[], $4::timestamptz[], $5::text[]`
	sd, err := conn.Prepare(ctx, "pgparams_roundtrip", sql)
	if err != nil {
		t.Fatal(err)
	}
	m := pgtype.NewMap()
	r := rand.New(rand.NewPCG(3, 4))
	var p pgparams.Params
	for round := range 100 {
		cols := randomColumns(r)
		// text, nullable int8, bool, nullable timestamptz, nullable text
		pick := []column{cols[0], cols[5], cols[6], cols[7], cols[3]}
		p.Reset()
		for _, c := range pick {
			c.write(&p)
		}
		res := conn.PgConn().ExecStatement(ctx, sd, p.Values(), p.Formats(), nil).Read()
		if res.Err != nil {
			t.Fatalf("round %d: %v", round, res.Err)
		}
		row := res.Rows[0]
		var (
			texts, ntexts []pgtype.Text
			ints          []pgtype.Int8
			bools         []bool
			times         []pgtype.Timestamptz
		)
		for i, dst := range []any{&texts, &ints, &bools, &times, &ntexts} {
			if err := m.Scan(pick[i].oid, pgtype.TextFormatCode, row[i], dst); err != nil {
				t.Fatalf("round %d, column %d %q: %v", round, i, row[i], err)
			}
		}
		wantTexts := pick[0].pgx.([]string)
		if len(texts) != len(wantTexts) || !slices.EqualFunc(texts, wantTexts, func(g pgtype.Text, w string) bool { return g.Valid && g.String == w }) {
			t.Fatalf("round %d: text %v, want %q", round, texts, wantTexts)
		}
		if w := pick[1].pgx.([]pgtype.Int8); !slices.Equal(ints, w) && len(ints)+len(w) > 0 {
			t.Fatalf("round %d: int8 %v, want %v", round, ints, w)
		}
		if w := pick[2].pgx.([]bool); !slices.Equal(bools, w) && len(bools)+len(w) > 0 {
			t.Fatalf("round %d: bool %v, want %v", round, bools, w)
		}
		w := pick[3].pgx.([]pgtype.Timestamptz)
		if !slices.EqualFunc(times, w, func(g, w pgtype.Timestamptz) bool { return g.Valid == w.Valid && g.Time.Equal(w.Time) }) {
			t.Fatalf("round %d: timestamptz %v, want %v", round, times, w)
		}
		if w := pick[4].pgx.([]pgtype.Text); !slices.Equal(ntexts, w) && len(ntexts)+len(w) > 0 {
			t.Fatalf("round %d: nullable text %v, want %v", round, ntexts, w)
		}
	}
}

func TestMisuseIsCaught(t *testing.T) {
	for name, f := range map[string]func(p *pgparams.Params){
		"element outside an array": func(p *pgparams.Params) { p.Text("x") },
		"null outside an array":    func(p *pgparams.Params) { p.Null() },
		"end without array":        func(p *pgparams.Params) { p.End() },
		"array inside an array":    func(p *pgparams.Params) { p.Array(pgparams.TextOID); p.Array(pgparams.TextOID) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			var p pgparams.Params
			f(&p)
		})
	}
}
