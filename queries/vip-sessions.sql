-- VIP sessions: a VIP's actions less than 30 minutes apart are one visit. Reads the VipActions
-- the seed's query writes (a tenth of the clicks), so set CLICKS_STREAM=VipActions,
-- CLICKS_TOPIC=vip-action, OUTPUT_STREAM=VipSessions, OUTPUT_TOPIC=vip-session.
-- Time on site is last_event_time - session_start (every row carries last_event_time).
INSERT INTO VipSessions
SELECT
    user_id,
    name,
    SESSION_START(event_time, INTERVAL '30' MINUTE) AS session_start,
    SESSION_END(event_time, INTERVAL '30' MINUTE) AS session_end,
    COUNT(*) AS clicks,
    COUNT(DISTINCT page) AS pages,
    COUNT(*) FILTER (WHERE action = 'cart') AS carts,
    COUNT(*) FILTER (WHERE action = 'checkout') AS checkouts
FROM
    VipActions
GROUP BY
    SESSION(event_time, INTERVAL '30' MINUTE), user_id, name
