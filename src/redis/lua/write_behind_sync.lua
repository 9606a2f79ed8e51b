-- One write-behind sync: for each KEYS[i] (the hash of one key and window),
-- keep max(stored, total) in the field of this node, push the hash's expiry
-- to one window after the window's end, and answer the sum of all fields.
-- ARGV[1]: node id; ARGV[2i]: cumulative total; ARGV[2i+1]: expiry (Unix ms).
-- A total of 0 only reads. Re-running it with the same arguments changes nothing.
local node = ARGV[1]
local out = {}
for i, key in ipairs(KEYS) do
  local total = tonumber(ARGV[2 * i])
  if total > 0 then
    local stored = tonumber(redis.call('HGET', key, node) or '0')
    if total > stored then
      redis.call('HSET', key, node, ARGV[2 * i])
    end
    redis.call('PEXPIREAT', key, ARGV[2 * i + 1])
  end
  local sum = 0
  for _, v in ipairs(redis.call('HVALS', key)) do
    sum = sum + tonumber(v)
  end
  out[i] = sum
end
return out
