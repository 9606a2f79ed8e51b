-- One write-behind sync: for each KEYS[i] (the hash of one key and window),
-- keep max(stored, total) in the field of this node, push the hash's expiry
-- to one window after the window's end, and answer the sum of the nodes'
-- fields (fields starting with a NUL byte are budget-split claims, not counts).
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
  local fields = redis.call('HGETALL', key)
  for j = 1, #fields, 2 do
    if string.byte(fields[j], 1) ~= 0 then
      sum = sum + tonumber(fields[j + 1])
    end
  end
  out[i] = sum
end
return out
