-- Announces appends to other processes' listeners (announcer.rs): no payload,
-- a notification only says "look". $1 is the channel.
SELECT pg_notify($1, '')
