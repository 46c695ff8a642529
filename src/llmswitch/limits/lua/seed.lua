-- Load, overwrite or read one subject's budget.
-- KEYS: budget hash, budget reservations zset.
-- ARGV: now, ttl, mode ('raise' | 'set' | 'read'), spent, valid ('1': spent belongs to the current
--       period), period end.
-- 'raise' keeps the larger spend within the current period (idempotent: a replayed seed changes
-- nothing) or, on a state only settlements have written since it was lost, adds to it; 'set'
-- overwrites spend and period; 'read' changes nothing.
-- Returns spent, reserved, reset_at; or nothing when reading a budget that is not held.
local mode, spent, valid, period_end = ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6])

if mode == 'read' then
  local v = redis.call('HMGET', KEYS[1], 'spent', 'reset_at', 'unit')
  if not v[2] or v[3] ~= 'nusd' then return {} end
  local current, reset_at = tonumber(v[1]), tonumber(v[2])
  if reset_at > 0 and reset_at <= now then current = 0 end
  -- an allowance whose holder never reported back counts as spent in full once expired (common.lua)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', fmt(now))
  for i = 1, #gone do
    if string.byte(gone[i], 1) == 43 then current = current + tonumber(string.match(gone[i], '^[^:]*:(.*)$')) end
  end
  local reserved = 0
  local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. fmt(now), '+inf')
  for i = 1, #live do
    reserved = reserved + tonumber(string.match(live[i], '^[^:]*:(.*)$'))
  end
  return {fmt(current), fmt(reserved), fmt(reset_at)}
end

local b = load_budget(KEYS[1], KEYS[2], period_end)
if mode == 'set' or not b.seeded then
  -- from now on the store's (or the admin's) figure holds every settlement made before it
  b.born = now
end
if mode == 'set' then
  b.spent, b.reset_at = spent, period_end
elseif valid and not b.seeded then
  -- settled here since the state was lost: the store may not have it yet, so add (erring towards refusing)
  b.spent = b.spent + spent
elseif valid and spent > b.spent then
  b.spent = spent
end
b.seeded = true
save_budget(KEYS[1], KEYS[2], b)
return {fmt(b.spent), fmt(b.reserved), fmt(b.reset_at)}
