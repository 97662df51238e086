-- The notification-log entries of other aggregation groups that a notification's delivery
-- writes besides its own: a summary sent when a route's notification rate limit bites speaks
-- for every group it held back, so its delivery records each of them, in the same transaction.
CREATE TABLE alert_outbox_log (
    idempotency_key TEXT NOT NULL,
    group_key       TEXT NOT NULL,
    firing          TEXT NOT NULL,
    resolved        TEXT NOT NULL,
    PRIMARY KEY (idempotency_key, group_key)
);
