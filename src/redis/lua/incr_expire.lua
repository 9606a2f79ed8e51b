-- Fixed window counter.
-- KEYS[1]: the counter
-- ARGV[1]: window length in seconds
-- ARGV[2]: amount to add
-- ARGV[3]: "1" to restart the window on every increment (elastic expiry)
-- incr_expire() returns the new count. The increment that creates the
-- counter (the count equals the amount) starts its window, as in Python
-- `limits`.
local function incr_expire()
    local count = redis.call('INCRBY', KEYS[1], ARGV[2])
    if count == tonumber(ARGV[2]) or ARGV[3] == '1' then
        redis.call('EXPIRE', KEYS[1], ARGV[1])
    end
    return count
end
