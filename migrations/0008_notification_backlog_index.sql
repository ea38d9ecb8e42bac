-- The notification backlog gauges (notifications_pending,
-- notification_oldest_unacked_seconds) read every undelivered row by channel
-- and priority every few seconds: from this index alone, not the table.
CREATE INDEX ix_notifications_undelivered ON notifications (channel, priority, created_at)
    WHERE status IN ('pending', 'sending', 'failed');
