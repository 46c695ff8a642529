-- Admit one request against every limit of its subjects: check all, then consume all or nothing.
-- KEYS, 4 per subject: rate hash, slots zset, budget hash, budget reservations zset.
-- ARGV: now, ttl, lease id, tokens, cost (nano-dollars, as the caller formatted it: it is part of the
--       lease's name), rate period, strict ('1': report a budget that was never seeded instead of
--       trusting it), count (requests admitted at once: more than 1 is an allowance, whose tokens and
--       cost are the total), then 5 per subject: rpm, tpm, max parallel, max budget (nano-dollars),
--       budget period end ('' = no such limit).
-- An allowance is admitted only where ROOM times it would fit (near a limit every request is admitted
-- here on its own), and its cost must fit the budget whole: it never overshoots one.
-- Returns the status ('ok' | 'refused' | 'unseeded') and 15 fields per subject (admission.FIELDS),
-- separated by spaces.
local id, tokens, cost_s = ARGV[3], tonumber(ARGV[4]), ARGV[5]
local cost, period, strict = tonumber(cost_s), tonumber(ARGV[6]), ARGV[7] == '1'
local count = tonumber(ARGV[8]) or 1
local BASE, PER, ROOM = 8, 5, 16
local room = 1
if count > 1 then room = ROOM end

-- take, for an allowance only where `room` times the amount fits
local function take_room(debt, limit, amount)
  if room > 1 then
    local ok, remaining, reset, retry = take(debt, limit, amount * room, period)
    if ok == 0 then return 0, remaining, reset, retry, debt end
  end
  return take(debt, limit, amount, period)
end
local n = (#ARGV - BASE) / PER

local out = {'ok'}
local plans = {}
local refused, unseeded = false, false
for i = 1, n do
  local a, k = BASE + (i - 1) * PER, (i - 1) * 4
  local rpm, tpm, par = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local max_budget, period_end = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local r = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0}
  local p = {}
  if rpm or tpm then
    local v = redis.call('HMGET', KEYS[k + 1], 'rd', 'rt', 'td', 'tt')
    -- calls from several processes can arrive out of clock order: a bucket's time never goes back,
    -- or the next call would count the same interval's drain twice and over-admit
    p.rt = math.max(now, tonumber(v[2]) or now)
    p.tt = math.max(now, tonumber(v[4]) or now)
    if rpm then
      local ok
      ok, r[2], r[3], r[4], p.rd = take_room(decay(tonumber(v[1]), tonumber(v[2]), rpm), rpm, count)
      if ok == 0 then r[1] = 0; refused = true end
    end
    if tpm then
      local ok
      ok, r[6], r[7], r[8], p.td = take_room(decay(tonumber(v[3]), tonumber(v[4]), tpm), tpm, tokens)
      if ok == 0 then r[5] = 0; refused = true end
    end
  end
  if par then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 2], '-inf', now)
    local used = redis.call('ZCARD', KEYS[k + 2])
    r[10] = used
    if used >= par then r[9] = 0; refused = true end
  end
  if max_budget then
    local b = load_budget(KEYS[k + 3], KEYS[k + 4], period_end)
    if not b.seeded then
      r[15] = 1
      if strict then
        unseeded = true
      else
        b.seeded, b.dirty = true, true  -- no store to ask: what is held is the whole truth
      end
    end
    r[12], r[13], r[14] = b.spent, b.reserved, b.reset_at
    if b.spent + b.reserved >= max_budget or (room > 1 and b.spent + b.reserved + cost * room > max_budget) then
      r[11] = 0; refused = true
    end
    p.b = b
  end
  p.rpm, p.tpm, p.par = rpm, tpm, par
  plans[i] = p
  out[#out + 1] = r
end

if unseeded or refused then
  out[1] = unseeded and 'unseeded' or 'refused'
  -- keep the housekeeping done while checking (rollovers, expired reservations), never invent a budget
  for i = 1, n do
    local b = plans[i].b
    if b and b.dirty and not (b.fresh and strict) then save_budget(KEYS[(i - 1) * 4 + 3], KEYS[(i - 1) * 4 + 4], b) end
  end
else
  local expires = now + ttl
  for i = 1, n do
    local p, k, r = plans[i], (i - 1) * 4, out[i + 1]
    if p.rpm or p.tpm then
      local drain = 0
      if p.rpm then
        redis.call('HSET', KEYS[k + 1], 'rd', fmt(p.rd), 'rt', fmt(p.rt))
        drain = p.rd / p.rpm
      end
      if p.tpm then
        redis.call('HSET', KEYS[k + 1], 'td', fmt(p.td), 'tt', fmt(p.tt), 'tl', fmt(p.tpm))
        if p.tpm > 0 and p.td / p.tpm > drain then drain = p.td / p.tpm end
      end
      -- gone once full again and no settle can still arrive for it
      redis.call('PEXPIRE', KEYS[k + 1], ms(drain + ttl))
    end
    if p.par then
      redis.call('ZADD', KEYS[k + 2], fmt(expires), id)
      redis.call('PEXPIRE', KEYS[k + 2], ms(ttl))
      r[10] = r[10] + 1
    end
    if p.b then
      local b = p.b
      b.reserved = b.reserved + cost
      save_budget(KEYS[k + 3], KEYS[k + 4], b)
      redis.call('ZADD', KEYS[k + 4], fmt(expires), id .. ':' .. cost_s)
      redis.call('PEXPIRE', KEYS[k + 4], ms(ttl))
      r[13] = b.reserved
    end
  end
end

-- one bulk string rather than an array: a client parses one reply instead of 15 per subject
local flat = {out[1]}
for i = 2, #out do
  for j = 1, 15 do flat[#flat + 1] = fmt(out[i][j]) end
end
return table.concat(flat, ' ')
