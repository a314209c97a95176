package actors

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchboard-dev/switchboard/actors/actorpb"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/persistence"
)

// Error codes, the API's.
const (
	CodeInvalid     = "invalid_argument"
	CodeNotFound    = "not_found"
	CodeConflict    = "conflict"
	CodeUnavailable = "unavailable"
	CodeInternal    = "internal"
	// codeRetry: the activation that answered was fenced or lost its state;
	// the request is safe to resend and reaches the live activation.
	codeRetry = "retry"
)

// Error is an actor's refusal, with an API error code.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func pbError(code, msg string) *actorpb.Error { return &actorpb.Error{Code: code, Message: msg} }

// toPB classifies a Go error for a reply.
func toPB(err error) *actorpb.Error {
	var optedOut conversation.ErrOptedOut
	switch {
	case errors.As(err, &optedOut):
		return pbError(CodeConflict, err.Error())
	case errors.Is(err, conversation.ErrMessageNotFound):
		return pbError(CodeNotFound, "message not found: not an outbound message of this conversation")
	case errors.Is(err, conversation.ErrInvalid), errors.Is(err, persistence.ErrInvalid):
		return pbError(CodeInvalid, err.Error())
	case errors.Is(err, conversation.ErrNotFound), errors.Is(err, persistence.ErrNotFound):
		return pbError(CodeNotFound, "conversation not found")
	case errors.Is(err, conversation.ErrConflict):
		return pbError(CodeConflict, err.Error())
	case errors.Is(err, persistence.ErrFenced):
		return pbError(codeRetry, err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, cluster.ErrUnavailable):
		return pbError(CodeUnavailable, err.Error())
	default:
		return pbError(CodeUnavailable, err.Error())
	}
}

func fromPB(e *actorpb.Error) error {
	if e == nil {
		return nil
	}
	return &Error{Code: e.Code, Message: e.Message}
}

func unexpected(kind string, res any) error {
	return &Error{Code: CodeInternal, Message: fmt.Sprintf("%s actor answered %T", kind, res)}
}
