
-- ARGV[1]: window length in seconds
-- Returns {previous count, previous ttl ms, current count, current ttl ms}.
roll(tonumber(ARGV[1]) * 1000)
return {state()}
