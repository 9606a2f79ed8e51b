-- Moving window state.
-- KEYS[1]: the list of timestamps, newest at the head
-- window(start, limit) returns count, oldest: how many of the first `limit`
-- entries are at or after `start` (Unix seconds), and the oldest of them as
-- a string ('' if none).
local function window(start, limit)
    local lo = 0
    local hi = math.min(redis.call('LLEN', KEYS[1]), limit)
    -- Binary search for the first entry before the window start.
    while lo < hi do
        local mid = math.floor((lo + hi) / 2)
        if tonumber(redis.call('LINDEX', KEYS[1], mid)) >= start then
            lo = mid + 1
        else
            hi = mid
        end
    end
    if lo == 0 then
        return 0, ''
    end
    return lo, redis.call('LINDEX', KEYS[1], lo - 1)
end
