// Package wire owns Switchboard's websocket protocol (docs/api.md "Websocket"):
// every server → client frame, built by one constructor each that returns
// the encoded frame and its Kind, the decoding of client → server frames, and
// the API's error vocabulary shared by REST and websocket answers.
//
// Frames are encoded from structs, never maps, so their bytes are
// deterministic: the same frame always starts with its "type".
package wire

// Kind classifies a server → client frame for the outbound queue's policies;
// the queue reads the kind and never the bytes.
type Kind uint8

const (
	// KindReply frames (acks, errors, pongs, subscribed, watching, items,
	// presence) are never dropped or coalesced.
	KindReply Kind = iota
	// KindUpdate frames belong to an (inbox, conversation) and carry its
	// version; they may be coalesced per conversation and dropped on
	// overflow.
	KindUpdate
	// KindSnapshot frames of an inbox end its resync.
	KindSnapshot
	// KindResync frames announce that updates of an inbox were dropped.
	KindResync
	// KindTyping frames are ephemeral: dropped when the queue is full.
	KindTyping
)

func (k Kind) String() string {
	switch k {
	case KindReply:
		return "reply"
	case KindUpdate:
		return "update"
	case KindSnapshot:
		return "snapshot"
	case KindResync:
		return "resync"
	case KindTyping:
		return "typing"
	}
	return "unknown"
}

// Frame is one encoded websocket text frame and its kind.
type Frame struct {
	Kind Kind
	Data []byte
}
