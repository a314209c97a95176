package inbox

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
)

// cursor is the position after the last conversation of a page, plus the
// state the paging began at.
//
// Semantics under concurrent changes: a later page holds the conversations
// that sort strictly after (key, id) in the current state and that have not
// moved since seq of the epoch the first page was read at: none of their
// sort keys changed, and they did not come into memory. A conversation that
// moved after the first page is left out of later pages, whichever way it
// moved: the update stream (every update with a seq above the page's seq)
// carries it, and leaving it out is what guarantees that no conversation
// appears on two pages. Conversations that did not move have fixed
// positions, so paging to the end yields each of them exactly once — also
// those that changed in place (a tag, an assignee, a status in the same
// order), as they are now. A cursor
// from another epoch (the actor reactivated) is still a valid position, but
// the change filter cannot apply, so only the keyset order holds then.
//
// Closed conversations the inbox does not hold come from the read model
// (readmodel.go), which is committed before the inbox applies a change: one
// of them that moves during a walk is left out of later pages once the
// inbox has applied the move, but a page read in the milliseconds between
// the commit and that can list it at its new place too — twice in the walk,
// the later one newer.
//
// A cursor names its inbox (a hash of its id), so one used on another
// inbox's list is refused rather than read as a position there.
type cursor struct {
	sort  Sort
	inbox uint32 // inboxTag of the inbox it was made for; 0 with anyInbox
	key   int64
	id    string
	seq   int64
	epoch string
	// anyInbox: a version 1 cursor, made before cursors named their inbox
	// (still accepted, so a walk begun before an upgrade can go on).
	anyInbox bool
}

// Cursor layout: version byte, sort byte, the inbox tag (4 bytes, big
// endian), varint key, varint seq, uvarint epoch length, epoch, id (the
// rest). Binary rather than text so that no id or epoch character needs
// escaping. Version 1 had no inbox tag.
const cursorVersion = 2

// inboxTag is a 32-bit FNV-1a hash of an inbox id: enough to tell a client
// that mixed up its cursors, which is all it is for.
func inboxTag(id string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return h.Sum32()
}

// checkInbox refuses a cursor made for another inbox than inboxID.
func (c cursor) checkInbox(inboxID string) error {
	if !c.anyInbox && c.inbox != inboxTag(inboxID) {
		return fmt.Errorf("%w: cursor: made for another inbox", ErrInvalid)
	}
	return nil
}

func sortCode(s Sort) byte {
	switch s {
	case SortOldest:
		return 1
	case SortLongestWait:
		return 2
	case SortSLADue:
		return 3
	}
	return 0
}

func sortFromCode(b byte) (Sort, bool) {
	switch b {
	case 0:
		return SortRecent, true
	case 1:
		return SortOldest, true
	case 2:
		return SortLongestWait, true
	case 3:
		return SortSLADue, true
	}
	return "", false
}

func (c cursor) encode() string {
	buf := make([]byte, 0, 6+3*binary.MaxVarintLen64+len(c.epoch)+len(c.id))
	buf = append(buf, cursorVersion, sortCode(c.sort))
	buf = binary.BigEndian.AppendUint32(buf, c.inbox)
	buf = binary.AppendVarint(buf, c.key)
	buf = binary.AppendVarint(buf, c.seq)
	buf = binary.AppendUvarint(buf, uint64(len(c.epoch)))
	buf = append(buf, c.epoch...)
	buf = append(buf, c.id...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// CheckCursor reports whether s is a cursor this package made (its syntax:
// whether it fits a page is decided when one is read).
func CheckCursor(s string) error {
	_, err := decodeCursor(s)
	return err
}

func decodeCursor(s string) (cursor, error) {
	bad := func(why string) (cursor, error) {
		return cursor{}, fmt.Errorf("%w: cursor: %s", ErrInvalid, why)
	}
	buf, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return bad("not base64url")
	}
	if len(buf) < 2 || (buf[0] != cursorVersion && buf[0] != 1) {
		return bad("unknown format")
	}
	var c cursor
	var ok bool
	if c.sort, ok = sortFromCode(buf[1]); !ok {
		return bad("unknown sort")
	}
	if buf[0] == 1 {
		c.anyInbox, buf = true, buf[2:]
	} else {
		if len(buf) < 6 {
			return bad("truncated inbox")
		}
		c.inbox, buf = binary.BigEndian.Uint32(buf[2:6]), buf[6:]
	}
	var n int
	if c.key, n = binary.Varint(buf); n <= 0 {
		return bad("truncated key")
	}
	buf = buf[n:]
	if c.seq, n = binary.Varint(buf); n <= 0 || c.seq < 0 {
		return bad("truncated seq")
	}
	buf = buf[n:]
	el, n := binary.Uvarint(buf)
	if n <= 0 || el > uint64(len(buf)-n) {
		return bad("truncated epoch")
	}
	buf = buf[n:]
	c.epoch = string(buf[:el])
	c.id = string(buf[el:])
	if c.id == "" {
		return bad("missing id")
	}
	return c, nil
}
