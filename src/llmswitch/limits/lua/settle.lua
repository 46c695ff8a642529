-- Give back what one admitted request holds, and charge what it really cost.
-- KEYS, 4 per subject: rate hash, slots zset, budget hash, budget reservations zset.
-- ARGV: now, ttl, lease id, rate period, settled at ('' = now; a time = a settlement made then, during
--       an outage of this Redis, replayed), held until ('' = unknown; for a replay of a request this
--       Redis admitted: before that time its reservations cannot have expired), then 6 per subject
--       ('' = nothing of that kind):
--       token delta (actual - estimate), tpm limit ('' = the one stored at admission), '1' to free a
--       slot, the reservation's amount as formatted at admission, the actual cost, budget period end,
--       requests given back unused (an allowance's) and the rpm limit they go back to.
-- A reservation that already expired is not subtracted twice; its cost is charged all the same.
-- A replayed settlement is not charged to a budget this Redis lost, nor to one loaded again from the
-- store after it was made: the gateway journaled it to the store, whose spend that load counts.
-- Nor is a replay whose reservation is gone while it was still held: the settlement it repeats was
-- written before the outage and done here, its answer lost (a cut connection, a deadline passed).
-- An allowance (lease id starting with '+') whose reservation expired was charged in full then
-- (common.lua): its settlement charges nothing more.
local id, period, replayed, held = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local BASE, PER = 6, 8
local allowance = string.byte(id, 1) == 43  -- '+'
local n = (#ARGV - BASE) / PER

if replayed and held and now < held then
  for i = 1, n do
    local amount_s = ARGV[BASE + (i - 1) * PER + 4]
    if amount_s ~= '' and not redis.call('ZSCORE', KEYS[(i - 1) * 4 + 4], id .. ':' .. amount_s) then
      return 'done before'
    end
  end
end

for i = 1, n do
  local a, k = BASE + (i - 1) * PER, (i - 1) * 4
  local delta, tpm = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local amount_s, actual, period_end = ARGV[a + 4], tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  if delta and delta ~= 0 then
    local v = redis.call('HMGET', KEYS[k + 1], 'td', 'tt', 'tl')
    local limit = tpm or tonumber(v[3])
    -- nothing counted (state gone, no limit known) means nothing to give back
    if limit and limit > 0 and (v[1] or delta > 0) then
      local debt = decay(tonumber(v[1]), tonumber(v[2]), limit) + delta * period
      if debt < 0 then debt = 0 end
      redis.call('HSET', KEYS[k + 1], 'td', fmt(debt), 'tt', fmt(math.max(now, tonumber(v[2]) or now)), 'tl', fmt(limit))
      redis.call('PEXPIRE', KEYS[k + 1], ms(debt / limit + ttl))
    end
  end
  local back, rpm = tonumber(ARGV[a + 7]), tonumber(ARGV[a + 8])
  if back and back > 0 and rpm and rpm > 0 then
    local v = redis.call('HMGET', KEYS[k + 1], 'rd', 'rt')
    if v[1] then
      local debt = decay(tonumber(v[1]), tonumber(v[2]), rpm) - back * period
      if debt < 0 then debt = 0 end
      redis.call('HSET', KEYS[k + 1], 'rd', fmt(debt), 'rt', fmt(math.max(now, tonumber(v[2]) or now)))
    end
  end
  if ARGV[a + 3] == '1' then
    redis.call('ZREM', KEYS[k + 2], id)
  end
  local b = actual and load_budget(KEYS[k + 3], KEYS[k + 4], period_end)
  if b and replayed and (b.fresh or not b.seeded or replayed < b.born) then
    b = nil
  end
  if b then
    local held_here = amount_s ~= '' and not b.fresh
    if held_here and redis.call('ZREM', KEYS[k + 4], id .. ':' .. amount_s) == 1 then
      b.reserved = b.reserved - tonumber(amount_s)
      if b.reserved < 0 or redis.call('ZCARD', KEYS[k + 4]) == 0 then b.reserved = 0 end
    elseif held_here and allowance then
      actual = 0  -- expired, and charged in full then
    end
    b.spent = b.spent + actual
    save_budget(KEYS[k + 3], KEYS[k + 4], b)
  end
end
return 'ok'
