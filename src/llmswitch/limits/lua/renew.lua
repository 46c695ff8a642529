-- Extend one admitted request's leases: its parallel slots and budget reservations expire a TTL from now.
-- KEYS, 4 per subject: rate hash, slots zset, budget hash, budget reservations zset.
-- ARGV: now, ttl, lease id, then 2 per subject: '1' if it holds a slot, the reservation's amount as
--       formatted at admission ('' = none).
-- Only leases still held are touched (XX): one that expired, or was settled meanwhile, is not revived.
local id = ARGV[3]
local BASE, PER = 3, 2
local n = (#ARGV - BASE) / PER
local expires = now + ttl

for i = 1, n do
  local a, k = BASE + (i - 1) * PER, (i - 1) * 4
  if ARGV[a + 1] == '1' and redis.call('ZADD', KEYS[k + 2], 'XX', 'CH', fmt(expires), id) == 1 then
    redis.call('PEXPIRE', KEYS[k + 2], ms(ttl))
  end
  local amount_s = ARGV[a + 2]
  if amount_s ~= '' and redis.call('ZADD', KEYS[k + 4], 'XX', 'CH', fmt(expires), id .. ':' .. amount_s) == 1 then
    redis.call('PEXPIRE', KEYS[k + 4], ms(ttl))
  end
end
return 'ok'
