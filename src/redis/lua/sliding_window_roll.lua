-- Sliding window counter, shared part (all times in milliseconds).
-- KEYS[1]: current window counter, KEYS[2]: previous window counter; both
-- carry the same hash tag so that they live on one Cluster node.
-- The current counter is created with a lifetime of two windows; once less
-- than one window of it is left, its window is over: it becomes the previous
-- counter and a new, empty current counter starts.
local function roll(window)
    local ttl = redis.call('PTTL', KEYS[1])
    if ttl > 0 and ttl < window then
        redis.call('RENAME', KEYS[1], KEYS[2])
        redis.call('SET', KEYS[1], 0, 'PX', ttl + window)
    end
end

-- previous count, previous ttl, current count, current ttl (0 when absent)
local function state()
    local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
    local previous_ttl = math.max(redis.call('PTTL', KEYS[2]), 0)
    local current = tonumber(redis.call('GET', KEYS[1]) or '0')
    local current_ttl = math.max(redis.call('PTTL', KEYS[1]), 0)
    return previous, previous_ttl, current, current_ttl
end
