-- Shared by every llmswitch limits script; the script's own body follows.
-- ARGV[1] is now and ARGV[2] the lease TTL, both in microseconds from the gateway's clock, so every
-- process of a deployment measures windows on the same (NTP-synced) time and tests can inject a clock.
-- Numbers are kept as decimal strings written with %.17g, which round-trips a double exactly
-- (Redis would otherwise stringify Lua numbers with 14 digits). Money is whole nano-dollars: integers,
-- exact in a double up to 2^53 (about 9 million USD), so budgets add and compare without drift.
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])

local function fmt(x)
  return string.format('%.17g', x)
end

-- floor(a / b) and the remainder, exact for integers below 2^53 (fmod is exact; a / b may round)
local function floor_div(a, b)
  local r = math.fmod(a, b)
  return (a - r) / b, r
end

local function ceil_div(a, b)
  local q, r = floor_div(a, b)
  if r > 0 then return q + 1 end
  return q
end

-- GCRA (see gcra.py): a debt that drains at `limit` units per microsecond
local function decay(debt, last, limit)
  if not debt or debt <= 0 then return 0 end
  local elapsed = now - (last or now)
  if elapsed <= 0 or not limit then return debt end
  local left = debt - elapsed * limit
  if left > 0 then return left end
  return 0
end

-- ok, remaining, reset, retry, new debt; exactly gcra.take
local function take(debt, limit, cost, period)
  if limit <= 0 then return 0, 0, 0, -1, debt end
  local capacity = limit * period
  local need = cost
  if need < 1 then need = 1 end
  if debt + need * period <= capacity then
    local new = debt + cost * period
    return 1, (floor_div(capacity - new, period)), ceil_div(new, limit), 0, new
  end
  local retry = -1
  if need <= limit then retry = ceil_div(debt + need * period - capacity, limit) end
  local remaining = 0
  if capacity > debt then remaining = (floor_div(capacity - debt, period)) end
  return 0, remaining, ceil_div(debt, limit), retry, debt
end

-- milliseconds for PEXPIRE, at least 1
local function ms(us)
  local m = math.ceil(us / 1000)
  if m < 1 then m = 1 end
  return fmt(m)
end

-- A budget: hash {spent, reserved, reset_at, seeded} and a sorted set of reservations "id:amount"
-- scored by expiry. Loading rolls an ended period over (spend back to 0, reset_at to the caller's
-- period_end) and drops reservations whose holders never settled them. "seeded" is '0' while the
-- state holds only what settlements added since it was lost (a flushed or restarted Redis): the
-- spend the store knows has still to be added. A hash without unit 'nusd' holds float USD from an
-- older llmswitch: it counts as lost too, so the store's spend is loaded into it once. "born" is when
-- the store's spend was last loaded into a lost state (0: never), so a settlement replayed after an
-- outage can tell whether that load already counted it.
local function load_budget(bkey, lkey, period_end)
  local v = redis.call('HMGET', bkey, 'spent', 'reserved', 'reset_at', 'seeded', 'unit', 'born')
  local b = {
    spent = tonumber(v[1]), reserved = tonumber(v[2]), reset_at = tonumber(v[3]), seeded = v[4] ~= '0',
    born = tonumber(v[6]) or 0, dirty = false, fresh = false,
  }
  if not b.reset_at or v[5] ~= 'nusd' then
    b.fresh, b.dirty, b.seeded, b.born = true, true, false, 0
    b.spent, b.reserved, b.reset_at = 0, 0, period_end
    return b
  end
  if b.reset_at > 0 and b.reset_at <= now then
    b.spent, b.reset_at, b.dirty = 0, period_end, true
  end
  local expired = redis.call('ZRANGEBYSCORE', lkey, '-inf', now)
  if #expired > 0 then
    for i = 1, #expired do
      local amount = tonumber(string.match(expired[i], '^[^:]*:(.*)$'))
      b.reserved = b.reserved - amount
      -- an allowance (its id starts with '+') never reported back may have been spent in full: it is
      -- counted so, never given back (its holder died): a budget is over-counted, not resurrected
      if string.byte(expired[i], 1) == 43 then b.spent = b.spent + amount end
    end
    b.dirty = true
    redis.call('ZREMRANGEBYSCORE', lkey, '-inf', now)
    if redis.call('ZCARD', lkey) == 0 then b.reserved = 0 end
  end
  if b.reserved < 0 then b.reserved = 0 end
  return b
end

local function save_budget(bkey, lkey, b)
  if b.fresh then
    -- reservations of a budget we had lost are not in its "reserved": forget them too
    redis.call('DEL', lkey)
  end
  redis.call('HSET', bkey, 'spent', fmt(b.spent), 'reserved', fmt(b.reserved), 'reset_at', fmt(b.reset_at),
    'seeded', b.seeded and '1' or '0', 'unit', 'nusd')
  if b.born > 0 then redis.call('HSET', bkey, 'born', fmt(b.born)) end
  if b.reset_at > 0 then
    -- the state is useless once its period is over (the next call starts a fresh one)
    redis.call('PEXPIRE', bkey, ms(b.reset_at - now + ttl))
  else
    redis.call('PERSIST', bkey)
  end
  b.fresh, b.dirty = false, false
end
