-- A VIP's business day: clicks and checkouts per VIP per day, the day aligned to
-- BUSINESS_TIMEZONE. Reads VipActions like vip-sessions.sql; OUTPUT_STREAM=VipDays,
-- OUTPUT_TOPIC=vip-day.
INSERT INTO VipDays
SELECT
    user_id,
    TUMBLE_START(event_time, INTERVAL '1' DAY) AS day_start,
    COUNT(*) AS clicks,
    SUM(CASE WHEN action = 'checkout' THEN 1 ELSE 0 END) AS checkouts
FROM
    VipActions
GROUP BY
    TUMBLE(event_time, INTERVAL '1' DAY), user_id
