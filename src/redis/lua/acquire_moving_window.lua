-- Moving window: a list of hit timestamps, newest at the head.
-- KEYS[1]: the list
-- ARGV[1]: now (Unix seconds, fractional)
-- ARGV[2]: limit
-- ARGV[3]: window length in seconds
-- ARGV[4]: amount of entries to add
-- acquire() returns 1 when the entries were added, 0 when refused.
local function acquire()
    local now = tonumber(ARGV[1])
    local limit = tonumber(ARGV[2])
    local expiry = tonumber(ARGV[3])
    local amount = tonumber(ARGV[4])
    if amount > limit then
        return 0
    end
    -- After adding `amount` entries, the entry now at index `limit - amount`
    -- would be the oldest one kept; it must lie outside the window.
    local boundary = redis.call('LINDEX', KEYS[1], limit - amount)
    if boundary and tonumber(boundary) >= now - expiry then
        return 0
    end
    -- LPUSH in chunks: Lua's unpack() fails on a few thousand values.
    local chunk = {}
    local pushed = 0
    while pushed < amount do
        local n = math.min(5000, amount - pushed)
        for i = #chunk + 1, n do
            chunk[i] = ARGV[1]
        end
        redis.call('LPUSH', KEYS[1], unpack(chunk, 1, n))
        pushed = pushed + n
    end
    redis.call('LTRIM', KEYS[1], 0, limit - 1)
    redis.call('EXPIRE', KEYS[1], ARGV[3])
    return 1
end
