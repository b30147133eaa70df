// Lua scripts of the Redis backend. Each runs atomically on the server, so
// compare-and-swap needs no client-side locking, and each first ends expired
// leases using the server's clock, so expiry works for any number of hosts
// without a single sweeper.
//
// Data model under prefix P (ARGV[1]); ARGV[2] is the event log's length bound:
//   P.."rev"        store revision (INCR per change)
//   P.."k:"..key    hash {v value, c createRevision, m modRevision, l lease}
//   P.."idx"        sorted set of all keys (score 0) for prefix listing by lex range
//   P.."log"        stream of events, entry id "REV-SEQ", so watching from a
//                   revision is reading the stream after an id
//   P.."lease"      sorted set lease id -> expiry (ms, server clock)
//   P.."lk:"..id    set of keys attached to a lease
//   P.."lttl"       hash lease id -> TTL seconds
//   P.."leaseseq"   lease id counter

const PRELUDE = `
local P = ARGV[1]
local MAXLEN = ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function num(n) return string.format('%d', n) end

local function logev(rev, seq, fields)
  redis.call('XADD', P .. 'log', 'MAXLEN', '~', MAXLEN, num(rev) .. '-' .. num(seq), unpack(fields))
end

local function curRev()
  return tonumber(redis.call('GET', P .. 'rev') or '0')
end

-- Ends every lease whose expiry has passed: deletes its keys in one revision.
local function purge()
  local ids = redis.call('ZRANGEBYSCORE', P .. 'lease', '-inf', now)
  if #ids == 0 then return end
  local rev = nil
  local seq = 0
  for _, id in ipairs(ids) do
    for _, key in ipairs(redis.call('SMEMBERS', P .. 'lk:' .. id)) do
      local hk = P .. 'k:' .. key
      if redis.call('HGET', hk, 'l') == id then
        if not rev then rev = redis.call('INCR', P .. 'rev') end
        redis.call('DEL', hk)
        redis.call('ZREM', P .. 'idx', key)
        logev(rev, seq, {'t', 'd', 'k', key})
        seq = seq + 1
      end
    end
    redis.call('DEL', P .. 'lk:' .. id)
    redis.call('HDEL', P .. 'lttl', id)
    redis.call('ZREM', P .. 'lease', id)
  end
end
purge()
`;

/** ARGV[3]: JSON {c: [[key, 'm'|'a'|'p', rev]], o: [['p', key, value, lease|''] | ['d', key]]}. */
export const TXN = `${PRELUDE}
local req = cjson.decode(ARGV[3])
for i, c in ipairs(req.c) do
  local m = tonumber(redis.call('HGET', P .. 'k:' .. c[1], 'm') or '0')
  local ok
  if c[2] == 'm' then ok = (m == c[3]) elseif c[2] == 'a' then ok = (m == 0) else ok = (m ~= 0) end
  if not ok then return {'conflict', i} end
end
local changes = false
for _, o in ipairs(req.o) do
  if o[1] == 'p' then
    if o[4] ~= '' and not redis.call('ZSCORE', P .. 'lease', o[4]) then return {'nolease', o[4]} end
    changes = true
  elseif redis.call('EXISTS', P .. 'k:' .. o[2]) == 1 then
    changes = true
  end
end
if not changes then return {'ok', curRev(), 0} end
local rev = redis.call('INCR', P .. 'rev')
local seq = 0
local deleted = 0
for _, o in ipairs(req.o) do
  local key = o[2]
  local hk = P .. 'k:' .. key
  local old = redis.call('HMGET', hk, 'c', 'l')
  if old[2] then redis.call('SREM', P .. 'lk:' .. old[2], key) end
  if o[1] == 'p' then
    local c = old[1] or num(rev)
    redis.call('HSET', hk, 'v', o[3], 'c', c, 'm', num(rev))
    if o[4] ~= '' then
      redis.call('HSET', hk, 'l', o[4])
      redis.call('SADD', P .. 'lk:' .. o[4], key)
    else
      redis.call('HDEL', hk, 'l')
    end
    redis.call('ZADD', P .. 'idx', 0, key)
    logev(rev, seq, {'t', 'p', 'k', key, 'v', o[3], 'c', c, 'l', o[4]})
    seq = seq + 1
  elseif old[1] then
    redis.call('DEL', hk)
    redis.call('ZREM', P .. 'idx', key)
    logev(rev, seq, {'t', 'd', 'k', key})
    seq = seq + 1
    deleted = deleted + 1
  end
end
return {'ok', rev, deleted}
`;

/** ARGV[3]: key. Returns {v, c, m, l} or false. */
export const GET = `${PRELUDE}
local r = redis.call('HMGET', P .. 'k:' .. ARGV[3], 'v', 'c', 'm', 'l')
if not r[1] then return false end
return {r[1], r[2], r[3], r[4] or ''}
`;

/** ARGV[3]: prefix. Returns a flat array key, v, c, m, l, ... sorted by key. */
export const LIST = `${PRELUDE}
local keys
if ARGV[3] == '' then
  keys = redis.call('ZRANGEBYLEX', P .. 'idx', '-', '+')
else
  -- UTF-8 never contains byte 255, so it bounds every key with the prefix.
  keys = redis.call('ZRANGEBYLEX', P .. 'idx', '[' .. ARGV[3], '(' .. ARGV[3] .. '\\255')
end
local out = {}
for _, key in ipairs(keys) do
  local r = redis.call('HMGET', P .. 'k:' .. key, 'v', 'c', 'm', 'l')
  if r[1] then
    out[#out + 1] = key
    out[#out + 1] = r[1]
    out[#out + 1] = r[2]
    out[#out + 1] = r[3]
    out[#out + 1] = r[4] or ''
  end
end
return out
`;

/** The current revision; also the periodic sweep that ends expired leases. */
export const REVISION = `${PRELUDE}
return curRev()
`;

/** ARGV[3]: TTL seconds. Returns the new lease id. */
export const GRANT = `${PRELUDE}
local id = num(redis.call('INCR', P .. 'leaseseq'))
redis.call('ZADD', P .. 'lease', now + tonumber(ARGV[3]) * 1000, id)
redis.call('HSET', P .. 'lttl', id, ARGV[3])
return id
`;

/** ARGV[3]: lease id. Returns 1, or 0 when the lease is gone. */
export const RENEW = `${PRELUDE}
if not redis.call('ZSCORE', P .. 'lease', ARGV[3]) then return 0 end
local ttl = tonumber(redis.call('HGET', P .. 'lttl', ARGV[3]))
redis.call('ZADD', P .. 'lease', now + ttl * 1000, ARGV[3])
return 1
`;

/** ARGV[3]: lease id. Ends it now by expiring it and purging again. */
export const REVOKE = `${PRELUDE}
if not redis.call('ZSCORE', P .. 'lease', ARGV[3]) then return 0 end
redis.call('ZADD', P .. 'lease', 0, ARGV[3])
purge()
return 1
`;
