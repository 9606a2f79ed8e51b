
-- ARGV[1]: limit
-- ARGV[2]: window length in seconds
-- ARGV[3]: amount
-- acquire() returns 1 when the amount was added, 0 when refused.
local function acquire()
    local limit = tonumber(ARGV[1])
    local window = tonumber(ARGV[2]) * 1000
    local amount = tonumber(ARGV[3])
    if amount > limit then
        return 0
    end
    roll(window)
    local previous, previous_ttl, current = state()
    local weighted = math.floor(previous * previous_ttl / window) + current
    if weighted + amount > limit then
        return 0
    end
    if redis.call('EXISTS', KEYS[1]) == 1 then
        redis.call('INCRBY', KEYS[1], ARGV[3])
    else
        redis.call('SET', KEYS[1], ARGV[3], 'PX', window * 2)
    end
    return 1
end
