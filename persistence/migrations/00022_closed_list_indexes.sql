-- +goose Up

-- Lists that include closed conversations read the ones an inbox no longer
-- holds from the read model, a page at a time after the page's cursor
-- (persistence/closed_list.go). The activity orders walk
-- conversations_inbox_closed_recent; these serve the other two, so that no
-- page sorts an inbox's whole archive (~130 ms per page at 100,000 closed
-- conversations, per request). A closed conversation keeps the time it
-- began waiting but never has an SLA due time, so sla_due orders closed
-- ones by id alone. ids compare bytewise, as the inbox orders them. Both
-- cover closed rows only: a conversation enters them when it closes, an
-- update that is not a heap-only tuple anyway (status is in the predicate).
CREATE INDEX conversations_inbox_closed_wait ON conversations (inbox_id, waiting_since, id COLLATE "C")
    WHERE status = 'closed';
CREATE INDEX conversations_inbox_closed_id ON conversations (inbox_id, id COLLATE "C")
    WHERE status = 'closed';

-- +goose Down
DROP INDEX conversations_inbox_closed_id;
DROP INDEX conversations_inbox_closed_wait;
