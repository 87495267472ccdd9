-- The seed's query: every click joined to its user as of the click's time, keeping PLATINUM
-- users' clicks. The enricher's default; runs with the enricher's default settings.
INSERT INTO VipActions
SELECT
    Users.user_id, Users.name, Clicks.page, Clicks.action, Clicks.event_time
FROM
    Clicks
INNER JOIN
    Users ON Clicks.user_id = Users.user_id
WHERE
    Users.level = 'PLATINUM'
