// Package wsconn holds the socket-level parts of a websocket connection that
// need no websocket protocol of their own: write corking (a batch of frames
// in one write) and keepalive (ping, idle timeout). Both are tested over
// net.Pipe, under -race.
package wsconn

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Hijacker hands the websocket library a corked connection and small
// buffers instead of net/http's 4 KiB reader and writer: batching happens in
// the cork, so the buffers only need to hold a frame header. Use it as the
// ResponseWriter given to websocket.Accept; Cork is set once it hijacked.
type Hijacker struct {
	http.ResponseWriter
	WriteTimeout time.Duration
	// SendBuffer, when set, fixes the kernel's send buffer (SO_SNDBUF).
	SendBuffer int
	Cork       *Cork
}

const (
	readBuffer  = 1024
	writeBuffer = 256 // holds any control frame whole (≤ 131 bytes)
)

// Hijack implements http.Hijacker.
func (h *Hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok && h.SendBuffer > 0 {
		_ = tc.SetWriteBuffer(h.SendBuffer)
	}
	var pending []byte
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		pending = bytes.Clone(b)
	}
	h.Cork = NewCork(nc, h.WriteTimeout, pending)
	return h.Cork, bufio.NewReadWriter(bufio.NewReaderSize(h.Cork, readBuffer), bufio.NewWriterSize(h.Cork, writeBuffer)), nil
}

// Cork is a net.Conn whose writes can be held back and sent as one: the
// websocket library flushes after every message, and a batch of frames
// should cost one system call, not one each.
type Cork struct {
	net.Conn
	writeTimeout time.Duration
	pending      []byte // bytes read past the handshake; only Read touches it

	mu     sync.Mutex
	corked bool
	buf    *bytes.Buffer
	// writing is set while a write to the socket waits for the peer.
	writing atomic.Bool
}

// Writing reports whether a write to the socket is under way: anything else
// written now (a ping) waits for it.
func (c *Cork) Writing() bool { return c.writing.Load() }

// NewCork wraps c; writes time out after writeTimeout, and pending is read
// before anything from c.
func NewCork(c net.Conn, writeTimeout time.Duration, pending []byte) *Cork {
	return &Cork{Conn: c, writeTimeout: writeTimeout, pending: pending}
}

var corkPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (c *Cork) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// Write buffers while corked. Uncorked writes (pongs, close frames from the
// reader goroutine) hold the lock too, so that they never interleave with a
// batch being written.
func (c *Cork) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		return c.buf.Write(p)
	}
	return c.writeLocked(p)
}

// writeLocked writes p whole. The timeout bounds a wait without progress,
// not the whole write: a slow reader that takes some of a large batch
// within writeTimeout is given another writeTimeout for the rest (its
// queue, meanwhile, coalesces and resyncs); one that takes nothing for
// that long is given up on.
func (c *Cork) writeLocked(p []byte) (int, error) {
	c.writing.Store(true)
	defer func() {
		c.writing.Store(false)
		_ = c.Conn.SetWriteDeadline(time.Time{})
	}()
	written := 0
	for {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
			return written, err
		}
		n, err := c.Conn.Write(p[written:])
		written += n
		if err == nil || n == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return written, err
		}
	}
}

// Cork holds writes back until Uncork.
func (c *Cork) Cork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = true
	if c.buf == nil {
		c.buf = corkPool.Get().(*bytes.Buffer)
		c.buf.Reset()
	}
}

// Uncork writes what was held back in one write and returns the buffer to
// the pool: an idle connection holds none.
func (c *Cork) Uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	buf := c.buf
	c.buf = nil
	if buf == nil {
		return nil
	}
	var err error
	if buf.Len() > 0 {
		_, err = c.writeLocked(buf.Bytes())
	}
	if buf.Cap() <= 256<<10 {
		corkPool.Put(buf)
	}
	return err
}
