// Package pgparams encodes a statement's parameters in PostgreSQL's binary
// format into one buffer that is kept from one statement to the next.
//
// The writer's batch statement sends its appends as ~20 column arrays,
// hundreds of kilobytes per batch at ingest. Encoded through pgx's type
// map, every batch grew a fresh buffer from 256 bytes by doubling (pgx
// shrinks its own after each large query): ~40% of the bytes a node
// allocated per write. Here the caller keeps a Params, so a batch's
// parameters are written once into memory the previous batch already
// grew.
//
// Only what the writer sends is supported: one-dimensional arrays of text,
// int8, bool and timestamptz, whose elements may be NULL.
package pgparams

import (
	"encoding/binary"
	"time"
)

// Element type OIDs (pg_type).
const (
	BoolOID        uint32 = 16
	Int8OID        uint32 = 20
	TextOID        uint32 = 25
	TimestamptzOID uint32 = 1184
)

// BinaryFormat is the wire format code of every parameter here.
const BinaryFormat int16 = 1

// header is an array's header: ndim, flags (has nulls), element OID, and
// for its one dimension the length and the lower bound.
const headerLen = 20

// Params is a list of parameters being encoded. The zero value is ready;
// Reset empties it for the next statement and keeps its memory. Not safe
// for concurrent use.
type Params struct {
	buf     []byte
	ends    []int // end offset in buf of each finished parameter
	formats []int16
	values  [][]byte

	opened bool // an array is open: Array was called, End not yet
	start  int  // offset of the open array's header
	count  int  // elements written to the open array
	nulls  bool // the open array holds a NULL
}

// Reset empties p for another statement.
func (p *Params) Reset() {
	p.buf, p.ends, p.formats, p.values = p.buf[:0], p.ends[:0], p.formats[:0], p.values[:0]
	p.opened = false
}

// Array opens a one-dimensional array parameter of elements of type elem
// (an OID above). Its elements follow, each by one call of Text, Bytes,
// Int8, Bool, Time or Null, and End closes it.
func (p *Params) Array(elem uint32) {
	if p.opened {
		panic("pgparams: Array before End")
	}
	p.opened, p.start, p.count, p.nulls = true, len(p.buf), 0, false
	var h [headerLen]byte
	binary.BigEndian.PutUint32(h[0:], 1) // ndim
	binary.BigEndian.PutUint32(h[8:], elem)
	binary.BigEndian.PutUint32(h[16:], 1) // lower bound
	p.buf = append(p.buf, h[:]...)
}

// End closes the open array.
func (p *Params) End() {
	if !p.opened {
		panic("pgparams: End without Array")
	}
	h := p.buf[p.start:]
	// An empty array keeps its dimension, of length 0, as pgx sends it.
	binary.BigEndian.PutUint32(h[12:], uint32(p.count))
	if p.nulls {
		binary.BigEndian.PutUint32(h[4:], 1)
	}
	p.opened = false
	p.ends = append(p.ends, len(p.buf))
	p.formats = append(p.formats, BinaryFormat)
}

func (p *Params) element(n int) {
	if !p.opened {
		panic("pgparams: element outside an array")
	}
	p.count++
	p.buf = binary.BigEndian.AppendUint32(p.buf, uint32(n))
}

// Text adds a text element.
func (p *Params) Text(s string) {
	p.element(len(s))
	p.buf = append(p.buf, s...)
}

// TextJoin adds a text element: parts joined by sep, as strings.Join
// would make it, without making it.
func (p *Params) TextJoin(parts []string, sep string) {
	n := len(sep) * max(len(parts)-1, 0)
	for _, s := range parts {
		n += len(s)
	}
	p.element(n)
	for i, s := range parts {
		if i > 0 {
			p.buf = append(p.buf, sep...)
		}
		p.buf = append(p.buf, s...)
	}
}

// Bytes adds a text element given as bytes (JSON the statement casts).
func (p *Params) Bytes(b []byte) {
	p.element(len(b))
	p.buf = append(p.buf, b...)
}

// Int8 adds an int8 element.
func (p *Params) Int8(v int64) {
	p.element(8)
	p.buf = binary.BigEndian.AppendUint64(p.buf, uint64(v))
}

// Bool adds a bool element.
func (p *Params) Bool(v bool) {
	p.element(1)
	b := byte(0)
	if v {
		b = 1
	}
	p.buf = append(p.buf, b)
}

// Time adds a timestamptz element: microseconds since 2000-01-01 UTC,
// finer digits truncated as PostgreSQL's own input does.
func (p *Params) Time(t time.Time) {
	p.element(8)
	const y2kUnixMicros = 946_684_800_000_000
	us := t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - y2kUnixMicros
	p.buf = binary.BigEndian.AppendUint64(p.buf, uint64(us))
}

// Null adds a NULL element.
func (p *Params) Null() {
	if !p.opened {
		panic("pgparams: element outside an array")
	}
	p.count++
	p.nulls = true
	p.buf = binary.BigEndian.AppendUint32(p.buf, 0xFFFFFFFF)
}

// Values returns the finished parameters, each a slice of p's buffer:
// valid until p is next changed.
func (p *Params) Values() [][]byte {
	p.values = p.values[:0]
	from := 0
	for _, end := range p.ends {
		p.values = append(p.values, p.buf[from:end:end])
		from = end
	}
	return p.values
}

// Formats returns the format code of each finished parameter.
func (p *Params) Formats() []int16 { return p.formats }

// Len is the number of finished parameters.
func (p *Params) Len() int { return len(p.ends) }
