package actors

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/persistence"
	"github.com/switchboard-dev/switchboard/wire"
)

// codeRetry is an actor-to-actor code, never an API one: the activation
// that answered was fenced or lost its state, and the request is safe to
// resend; it reaches the live activation. The Engine resends, and maps it
// to unavailable when it gives up.
const codeRetry wire.Code = "retry"

func pbError(code wire.Code, msg string) *actorpb.Error {
	return &actorpb.Error{Code: string(code), Message: msg}
}

// toPB classifies a Go error for a reply.
func toPB(err error) *actorpb.Error {
	var optedOut conversation.ErrOptedOut
	switch {
	case errors.As(err, &optedOut):
		return pbError(wire.CodeConflict, err.Error())
	case errors.Is(err, conversation.ErrMessageNotFound):
		return pbError(wire.CodeNotFound, "message not found: not an outbound message of this conversation")
	case errors.Is(err, conversation.ErrInvalid), errors.Is(err, persistence.ErrInvalid):
		return pbError(wire.CodeInvalid, err.Error())
	case errors.Is(err, conversation.ErrNotFound), errors.Is(err, persistence.ErrNotFound):
		return pbError(wire.CodeNotFound, "conversation not found")
	case errors.Is(err, conversation.ErrConflict):
		return pbError(wire.CodeConflict, err.Error())
	case errors.Is(err, persistence.ErrFenced):
		return pbError(codeRetry, err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, cluster.ErrUnavailable):
		return pbError(wire.CodeUnavailable, err.Error())
	default:
		return pbError(wire.CodeUnavailable, err.Error())
	}
}

// fromPB turns a reply's error into a wire.Error; codes the API does not
// define (codeRetry) become unavailable.
func fromPB(e *actorpb.Error) error {
	if e == nil {
		return nil
	}
	code := wire.Code(e.Code)
	if !code.Known() {
		code = wire.CodeUnavailable
	}
	return &wire.Error{Code: code, Message: e.Message}
}

func unavailable(err error) error {
	return &wire.Error{Code: wire.CodeUnavailable, Message: err.Error()}
}

func unexpected(kind string, res any) error {
	return &wire.Error{Code: wire.CodeInternal, Message: fmt.Sprintf("%s actor answered %T", kind, res)}
}
