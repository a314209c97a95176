-- +goose Up

-- A list filtered by more than status counts, for its total, the closed
-- conversations the inbox does not hold in memory (persistence/closed_list.go,
-- closedCountSQL). This index answers the counts by assignee and addressed
-- (the "mine", "unassigned" and "addressed" lists) from the index alone
-- where the rows are all-visible, as an archive's are, instead of visiting
-- every closed row of the inbox. It covers closed rows only: a row enters
-- it when it closes, an update that already rewrites every index of the row
-- (status is in the closed indexes' predicates), so the write path of
-- messages is unchanged.
CREATE INDEX conversations_inbox_closed_count ON conversations (inbox_id, assignee_id, addressed)
    WHERE status = 'closed';

-- +goose Down
DROP INDEX conversations_inbox_closed_count;
