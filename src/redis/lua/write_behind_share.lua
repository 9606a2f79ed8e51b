-- One write-behind sync under budget split: for each KEYS[i] (the hash of
-- one key and window), keep max(stored, total) in the field of this node
-- (creating it at 0, so the node counts among the window's nodes), push the
-- hash's expiry to one window after the window's end, then grant the node
-- its claim by the budget-split rule (`share_rule` in the crate) and keep
-- the largest claim granted in the field NUL .. node.
-- ARGV[1]: node id; per report, from ARGV[6i - 4]: cumulative total, expiry
-- (Unix ms), limit, want, demand (0: no cap), nodes hint. Answers {sum of the nodes' totals, nodes, claim}
-- per report. Re-running it with the same arguments changes nothing.
local node = ARGV[1]
local claim_field = '\0' .. node
local out = {}
for i, key in ipairs(KEYS) do
  local base = 6 * i - 4
  local total = tonumber(ARGV[base])
  local stored = redis.call('HGET', key, node)
  if stored == false or total > tonumber(stored) then
    redis.call('HSET', key, node, ARGV[base])
  end
  redis.call('PEXPIREAT', key, ARGV[base + 1])
  local limit = tonumber(ARGV[base + 2])
  local want = tonumber(ARGV[base + 3])
  local demand = tonumber(ARGV[base + 4])
  local hint = tonumber(ARGV[base + 5])
  local used, claims = {}, {}
  local sum, nodes = 0, 0
  local fields = redis.call('HGETALL', key)
  for j = 1, #fields, 2 do
    local f, v = fields[j], tonumber(fields[j + 1])
    if string.byte(f, 1) == 0 then
      claims[string.sub(f, 2)] = v
    else
      used[f] = v
      sum = sum + v
      nodes = nodes + 1
    end
  end
  local others = 0
  for n, u in pairs(used) do
    if n ~= node then
      others = others + math.max(u, claims[n] or 0)
    end
  end
  local mine = used[node]
  local old = claims[node] or 0
  local left = math.max(limit - others - mine, 0)
  local share = math.floor(left / (math.max(nodes, hint, 1) + 1))
  if demand > 0 then
    share = math.min(share, demand)
  end
  share = math.max(share, math.min(want, left))
  local allowed = math.max(mine + share, old)
  if allowed > old then
    redis.call('HSET', key, claim_field, string.format('%d', allowed))
  end
  out[i] = {sum, nodes, allowed}
end
return out
