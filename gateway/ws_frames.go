package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/gateway/outbox"
)

// clientFrame is every client → server frame of API.md's websocket section;
// each type reads the fields it needs.
type clientFrame struct {
	Type           string                     `json:"type"`
	ID             json.RawMessage            `json:"id"`
	InboxID        string                     `json:"inbox_id"`
	ConversationID string                     `json:"conversation_id"`
	Filter         map[string]json.RawMessage `json:"filter"`
	Resume         *struct {
		Epoch string `json:"epoch"`
		Seq   *int64 `json:"seq"`
	} `json:"resume"`
	replyIn
	updateIn
}

// Server → client frames.
type (
	errorOut struct {
		Type  string          `json:"type"`
		Ref   json.RawMessage `json:"ref,omitempty"`
		Error *apiError       `json:"error"`
	}
	pongOut struct {
		Type string          `json:"type"`
		Ref  json.RawMessage `json:"ref,omitempty"`
	}
	subscribedOut struct {
		Type    string          `json:"type"`
		Ref     json.RawMessage `json:"ref,omitempty"`
		InboxID string          `json:"inbox_id"`
		Epoch   string          `json:"epoch"`
		Seq     int64           `json:"seq"`
		Resumed bool            `json:"resumed"`
	}
	snapshotOut struct {
		Type          string          `json:"type"`
		InboxID       string          `json:"inbox_id"`
		Epoch         string          `json:"epoch"`
		Seq           int64           `json:"seq"`
		Conversations json.RawMessage `json:"conversations"`
		Total         int64           `json:"total"`
		Counts        json.RawMessage `json:"counts"`
	}
	resyncOut struct {
		Type    string `json:"type"`
		InboxID string `json:"inbox_id"`
		Reason  string `json:"reason"`
	}
	watchingOut struct {
		Type           string          `json:"type"`
		Ref            json.RawMessage `json:"ref,omitempty"`
		ConversationID string          `json:"conversation_id"`
		Version        int64           `json:"version"`
	}
	ackOut struct {
		Type         string          `json:"type"`
		Ref          json.RawMessage `json:"ref,omitempty"`
		Message      json.RawMessage `json:"message,omitempty"`
		Conversation json.RawMessage `json:"conversation,omitempty"`
	}
)

func encodeFrame(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types get here; a failure is a programming error
		// that must not take the connection down silently.
		b, _ = json.Marshal(errorOut{Type: "error", Error: errorf(codeInternal, "encode frame: %v", err)})
	}
	return b
}

func (wc *wsConn) sendError(ref json.RawMessage, err error) {
	if withheld(err) {
		wc.s.log.Error("websocket request failed", "err", err)
	}
	wc.pushFrame(errorOut{Type: "error", Ref: ref, Error: asAPIError(err)})
}

// handle runs one client frame to completion (its reply queued) before the
// next frame is read.
func (wc *wsConn) handle(raw []byte) {
	var f clientFrame
	if !utf8.Valid(raw) {
		wc.sendError(refOf(raw), errorf(codeInvalid, "frame is not valid UTF-8"))
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&f); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			wc.sendError(refOf(raw), errorf(codeInvalid, "field %q has the wrong type", typeErr.Field))
			return
		}
		wc.sendError(nil, errorf(codeInvalid, "malformed JSON: %v", err))
		return
	}
	if dec.More() {
		wc.sendError(f.ID, errorf(codeInvalid, "one JSON object per frame"))
		return
	}
	var err error
	switch f.Type {
	case "ping":
		wc.pushFrame(pongOut{Type: "pong", Ref: f.ID})
	case "subscribe":
		err = wc.subscribe(&f)
	case "unsubscribe":
		if f.InboxID == "" {
			err = errorf(codeInvalid, "inbox_id is required")
			break
		}
		wc.root.Send(wc.pid, &unsubscribeReq{inbox: f.InboxID})
	case "watch":
		err = wc.watch(&f)
	case "unwatch":
		if f.ConversationID == "" {
			err = errorf(codeInvalid, "conversation_id is required")
			break
		}
		wc.root.Send(wc.pid, &unwatchReq{conv: f.ConversationID})
	case "typing":
		err = wc.typing(&f)
	case "send":
		err = wc.send(&f)
	case "update_conversation":
		err = wc.updateConversation(&f)
	case "":
		err = errorf(codeInvalid, "type is required")
	default:
		err = errorf(codeInvalid, "unknown frame type %q", f.Type)
	}
	if err != nil {
		wc.sendError(f.ID, err)
	}
}

// refOf digs the id out of a frame that did not decode as a whole.
func refOf(raw []byte) json.RawMessage {
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal(raw, &v)
	return v.ID
}

// filterQuery turns the subscribe filter (the list query's keys, as JSON
// strings, booleans, numbers or string arrays) into the list query string.
func filterQuery(filter map[string]json.RawMessage) (string, error) {
	q := url.Values{}
	for k, raw := range filter {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", errorf(codeInvalid, "filter.%s: malformed", k)
		}
		switch x := v.(type) {
		case nil:
		case string:
			q.Set(k, x)
		case bool:
			q.Set(k, strconv.FormatBool(x))
		case float64:
			q.Set(k, strconv.FormatFloat(x, 'f', -1, 64))
		case []any:
			parts := make([]string, 0, len(x))
			for _, p := range x {
				s, ok := p.(string)
				if !ok {
					return "", errorf(codeInvalid, "filter.%s: want strings", k)
				}
				parts = append(parts, s)
			}
			q.Set(k, strings.Join(parts, ","))
		default:
			return "", errorf(codeInvalid, "filter.%s: want a string, boolean, number or list of strings", k)
		}
	}
	q.Del("cursor")
	return q.Encode(), nil
}

func (wc *wsConn) subscribe(f *clientFrame) error {
	if f.InboxID == "" {
		return errorf(codeInvalid, "inbox_id is required")
	}
	filter, err := filterQuery(f.Filter)
	if err != nil {
		return err
	}
	req := &subscribeReq{inbox: f.InboxID, ref: f.ID, filter: filter, done: make(chan struct{})}
	if f.Resume != nil {
		if f.Resume.Epoch == "" || f.Resume.Seq == nil || *f.Resume.Seq < 0 {
			return errorf(codeInvalid, "resume needs epoch and seq")
		}
		req.resume, req.epoch, req.seq = true, f.Resume.Epoch, *f.Resume.Seq
	}
	ib, err := wc.s.inboxFor(wc.ctx, f.InboxID)
	if err != nil {
		return err
	}
	req.accountID = ib.AccountID
	wc.root.Send(wc.pid, req)
	// Wait until the session queued subscribed + snapshot (or an error), so
	// that the replies to later frames come after them.
	select {
	case <-req.done:
	case <-wc.ctx.Done():
	}
	return nil
}

func (wc *wsConn) watch(f *clientFrame) error {
	if f.ConversationID == "" {
		return errorf(codeInvalid, "conversation_id is required")
	}
	ref, err := wc.s.conversationRefFor(wc.ctx, f.ConversationID)
	if err != nil {
		return err
	}
	req := &watchReq{conv: f.ConversationID, accountID: ref.accountID, ref: f.ID, done: make(chan struct{})}
	wc.root.Send(wc.pid, req)
	select {
	case <-req.done:
	case <-wc.ctx.Done():
	}
	return nil
}

func (wc *wsConn) typing(f *clientFrame) error {
	if f.ConversationID == "" {
		return errorf(codeInvalid, "conversation_id is required")
	}
	ref, err := wc.s.conversationRefFor(wc.ctx, f.ConversationID)
	if err != nil {
		return err
	}
	p := principalFrom(wc.ctx)
	if !isAgent(p) {
		return nil // an integration does not type
	}
	wc.root.Send(wc.pid, &typingReq{conv: f.ConversationID, accountID: ref.accountID})
	return nil
}

func (wc *wsConn) send(f *clientFrame) error {
	if f.ConversationID == "" {
		return errorf(codeInvalid, "conversation_id is required")
	}
	if err := f.replyIn.validate(); err != nil {
		return err
	}
	ref, err := wc.s.conversationRefFor(wc.ctx, f.ConversationID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(wc.ctx, wc.cfg.CommandTimeout)
	defer cancel()
	res, err := wc.s.sendReply(ctx, ref, f.ConversationID, f.Body, f.Kind, f.ClientID)
	if err != nil {
		return err
	}
	wc.pushFrame(ackOut{Type: "ack", Ref: f.ID, Message: res.Item})
	return nil
}

func (wc *wsConn) updateConversation(f *clientFrame) error {
	if f.ConversationID == "" {
		return errorf(codeInvalid, "conversation_id is required")
	}
	ref, err := wc.s.conversationRefFor(wc.ctx, f.ConversationID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(wc.ctx, wc.cfg.CommandTimeout)
	defer cancel()
	summary, err := wc.s.update(ctx, ref, f.ConversationID, &f.updateIn)
	if err != nil {
		return err
	}
	wc.pushFrame(ackOut{Type: "ack", Ref: f.ID, Conversation: summary})
	return nil
}

// pushUpdate queues an inbox update frame encoded by the inbox actor.
func (wc *wsConn) pushUpdate(inbox, conv string, version int64, frame []byte) {
	wc.push(outbox.Frame{Kind: outbox.Update, Inbox: inbox, Conv: conv, Version: version, Data: frame})
}
