package gateway

import (
	"context"
	"encoding/json"

	"github.com/switchboard-dev/switchboard/gateway/session"
	"github.com/switchboard-dev/switchboard/wire"
)

func (wc *wsConn) sendError(ref json.RawMessage, err error) {
	if withheld(err) {
		wc.s.log.Error("websocket request failed", "err", err)
	}
	wc.push(frameOf(wire.ErrorFrame(ref, asAPIError(err))))
}

// handle runs one client frame to completion (its reply queued) before the
// next frame is read.
func (wc *wsConn) handle(raw []byte) {
	f, err := wire.DecodeClientFrame(raw)
	if err == nil {
		err = wc.dispatch(&f)
	}
	if err != nil {
		wc.sendError(f.ID, err)
	}
}

func (wc *wsConn) dispatch(f *wire.ClientFrame) error {
	switch f.Type {
	case wire.TypePing:
		wc.push(frameOf(wire.Pong(f.ID)))
	case wire.TypeSubscribe:
		return wc.subscribe(f)
	case wire.TypeUnsubscribe:
		// Ended whatever the answer: an agent taken off the inbox still
		// stops its subscription. Outside the caller's inboxes the frame
		// is then not_found, as every frame is.
		wc.root.Send(wc.pid, &unsubscribeReq{inbox: f.InboxID})
		_, err := wc.s.inboxFor(wc.ctx, f.InboxID)
		return err
	case wire.TypeWatch:
		return wc.watch(f)
	case wire.TypeUnwatch:
		wc.root.Send(wc.pid, &unwatchReq{conv: f.ConversationID})
		_, err := wc.s.conversationRefFor(wc.ctx, f.ConversationID)
		return err
	case wire.TypeTyping:
		return wc.typing(f)
	case wire.TypeSend:
		return wc.send(f)
	case wire.TypeUpdateConversation:
		return wc.updateConversation(f)
	}
	return nil
}

func (wc *wsConn) subscribe(f *wire.ClientFrame) error {
	ib, err := wc.s.inboxFor(wc.ctx, f.InboxID)
	if err != nil {
		return err
	}
	// The filter is checked here, as the inbox would check it, so that a
	// refused one never reaches the subscription it would replace.
	if _, _, _, _, err := f.Query.Resolve(principalFrom(wc.ctx).AgentID); err != nil {
		return wire.Errorf(wire.CodeInvalid, "%s", err.Error())
	}
	req := session.ClientSubscribe{Inbox: f.InboxID, AccountID: ib.AccountID, Query: f.Query, Ref: f.ID, Done: make(chan struct{})}
	if f.Resume != nil {
		req.Resume, req.Epoch, req.Seq = true, f.Resume.Epoch, *f.Resume.Seq
	}
	wc.root.Send(wc.pid, &subscribeReq{req})
	// Wait until the session queued subscribed + snapshot (or an error), so
	// that the replies to later frames come after them.
	select {
	case <-req.Done:
	case <-wc.ctx.Done():
	}
	return nil
}

func (wc *wsConn) watch(f *wire.ClientFrame) error {
	ref, err := wc.s.conversationRefFor(wc.ctx, f.ConversationID)
	if err != nil {
		return err
	}
	req := session.ClientWatch{Conv: f.ConversationID, AccountID: ref.accountID, Ref: f.ID, Done: make(chan struct{}), Summaries: f.Summaries}
	wc.root.Send(wc.pid, &watchReq{req})
	select {
	case <-req.Done:
	case <-wc.ctx.Done():
	}
	return nil
}

func (wc *wsConn) typing(f *wire.ClientFrame) error {
	ref, err := wc.s.conversationRefFor(wc.ctx, f.ConversationID)
	if err != nil {
		return err
	}
	if !isAgent(principalFrom(wc.ctx)) {
		return nil // an integration does not type
	}
	wc.root.Send(wc.pid, &typingReq{conv: f.ConversationID, accountID: ref.accountID})
	return nil
}

func (wc *wsConn) send(f *wire.ClientFrame) error {
	if err := (&replyIn{Body: f.Body, Kind: f.Kind, ClientID: f.ClientID}).validate(); err != nil {
		return err
	}
	ref, err := wc.s.conversationRefFor(wc.ctx, f.ConversationID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(wc.ctx, wc.cfg.CommandTimeout)
	defer cancel()
	res, err := wc.s.sendReply(ctx, ref, f.ConversationID, f.Body, f.Kind, f.ClientID, f.IfVersion)
	if err != nil {
		return err
	}
	wc.push(frameOf(wire.AckMessage(f.ID, res.Item)))
	return nil
}

func (wc *wsConn) updateConversation(f *wire.ClientFrame) error {
	ref, err := wc.s.conversationRefFor(wc.ctx, f.ConversationID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(wc.ctx, wc.cfg.CommandTimeout)
	defer cancel()
	u := f.UpdateFields
	summary, err := wc.s.update(ctx, ref, f.ConversationID, &updateIn{Status: u.Status, Addressed: u.Addressed,
		AssigneeID: u.AssigneeID, TagsAdd: u.TagsAdd, TagsRemove: u.TagsRemove, IfVersion: u.IfVersion, SnoozeUntil: u.SnoozeUntil})
	if err != nil {
		return err
	}
	wc.push(frameOf(wire.AckConversation(f.ID, summary)))
	return nil
}
