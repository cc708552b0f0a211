"""Every Lua script cubehook runs in Redis, each with its KEYS and ARGV documented beside it (after
RQ's rq/scripts.py). Redis runs a script atomically: what one does, no other client sees half done.

One clock for the whole fleet: Redis's own (TIME), read by the REDIS_NOW snippet that every script
needing the time begins with. The web side stamps each event with it as it accepts it; the workers
stamp each look at a session with it (workers.sessions) and compare the two, so the stamps must come
from the same clock, never a process's.

Keys travel in KEYS, but for RQ's own in the accept script (in ARGV, the commands RQ would have
sent): fine on a standalone or Sentinel-managed Redis, not on a Redis Cluster.
"""

from __future__ import annotations

# Sets ``now``: Redis's clock in microseconds as a string of digits (a Lua number would print as
# 1.7e+15), and ``now_us``: the same as a number (exact: below 2^53 until the year 2255).
REDIS_NOW = """
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
local now_us = tonumber(now)
"""

# --- accepting events (service.queue) ---------------------------------------------------------------
# KEYS[1] the event's seen key, KEYS[2] the last-event key, KEYS[3] the event's copies counter,
# KEYS[4] the hash of copies by event type.
# ARGV[1] the seen key's retention (s), ARGV[2] the time (s, for the last-event key), ARGV[3] the
# replay window (s), ARGV[4] the event type, ARGV[5] how many types are counted by name, ARGV[6] the
# name the others are counted under; then, for the accept script, the job's values (ARGV[7]...).
# The seen key holds when the event was first seen (``now``). A copy of an event seen before (a
# ComplyCube retry, a replayed capture) costs no job: ``copy()`` counts it, per event and per type,
# for the replay window, and answers 0 for the first copy in the window (the caller puts it on the
# audit trail), -1 for the others.
ACCEPT_FIXED_ARGS = 6
COPY = """
local function copy()
  local name = ARGV[4]
  if redis.call('HEXISTS', KEYS[4], name) == 0 and redis.call('HLEN', KEYS[4]) >= tonumber(ARGV[5]) then
    name = ARGV[6]
  end
  redis.call('HINCRBY', KEYS[4], name, 1)
  redis.call('EXPIRE', KEYS[4], ARGV[3])
  if redis.call('INCR', KEYS[3]) == 1 then
    redis.call('EXPIRE', KEYS[3], ARGV[3])
    return 0
  end
  return -1
end
"""
# Accepting an event: 1 when its job was queued (the caller appends RQ's commands: see
# service.job_template, which makes the whole script); else copy().
ACCEPT_HEAD = (
    REDIS_NOW
    + COPY
    + """
if not redis.call('SET', KEYS[1], now, 'NX', 'EX', ARGV[1]) then return copy() end
redis.call('SET', KEYS[2], ARGV[2])
"""
)
# The same KEYS and ARGV[1..6], for the transaction that queues an event with RQ's own
# Queue.enqueue_job when no job template can be used: claims the seen key (1), or counts a copy.
CLAIM_SEEN = ACCEPT_HEAD + "return 1\n"
# Seeing an event cubehook does not act on (the same KEYS and ARGV): 1 the first time (the caller
# puts it on record); else copy().
SEE_IGNORED = (
    REDIS_NOW
    + COPY
    + """
if redis.call('SET', KEYS[1], now, 'NX', 'EX', ARGV[1]) then return 1 end
return copy()
"""
)

# --- the quarantine (service.quarantine) ---------------------------------------------------------
# Shared head. KEYS[1] the index, KEYS[2] the sizes, KEYS[3] the total; ARGV[1] the item key prefix,
# ARGV[2] the retention (s). Defines ``forget(id)`` and forgets the items past their retention
# (their keys have expired already). Numbers passed to redis.call keep all their digits.
QUARANTINE_HEAD = (
    REDIS_NOW
    + """
local function forget(id)
  local size = tonumber(redis.call('HGET', KEYS[2], id) or '0')
  redis.call('DEL', ARGV[1] .. id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('DECRBY', KEYS[3], size)
  return redis.call('ZREM', KEYS[1], id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_us - tonumber(ARGV[2]) * 1000000)) do
  forget(id)
end
"""
)
# KEYS: index, sizes, total, evicted. ARGV: item key prefix, retention (s), item id, body,
# signature, flaw, reason, max items, max bytes. Keeps the item, then evicts the oldest others
# while over a bound (the new one always fits: the settings keep max bytes >= the body limit).
# Returns {when kept (µs), items evicted}.
QUARANTINE_KEEP = (
    QUARANTINE_HEAD
    + """
local id, body = ARGV[3], ARGV[4]
redis.call('HSET', ARGV[1] .. id, 'body', body, 'signature', ARGV[5], 'flaw', ARGV[6], 'reason', ARGV[7],
           'at', now_us)
redis.call('EXPIRE', ARGV[1] .. id, ARGV[2])
redis.call('ZADD', KEYS[1], now_us, id)
redis.call('HSET', KEYS[2], id, #body)
local total = redis.call('INCRBY', KEYS[3], #body)
local evicted = 0
while redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[8]) or total > tonumber(ARGV[9]) do
  -- the oldest but the new one (items kept in the same microsecond tie, ordered by id)
  local two = redis.call('ZRANGE', KEYS[1], 0, 1)
  local oldest = two[1] == id and two[2] or two[1]
  if not oldest then break end
  total = total - tonumber(redis.call('HGET', KEYS[2], oldest) or '0')
  forget(oldest)
  evicted = evicted + 1
end
if evicted > 0 then redis.call('INCRBY', KEYS[4], evicted) end
return {now_us, evicted}
"""
)
# KEYS: index, sizes, total. ARGV: item key prefix, retention (s), item id. 1 when it was held.
QUARANTINE_FORGET = QUARANTINE_HEAD + "return forget(ARGV[3])\n"
# KEYS: index, sizes, total, evicted. ARGV: item key prefix, retention (s). Returns {items, bytes,
# evicted ever}, after forgetting the items past their retention.
QUARANTINE_TOTALS = (
    QUARANTINE_HEAD
    + "return {redis.call('ZCARD', KEYS[1]), tonumber(redis.call('GET', KEYS[3]) or '0'),"
    + " tonumber(redis.call('GET', KEYS[4]) or '0')}\n"
)
# KEYS[1]: the ignored-types hash. ARGV: the event type, the most distinct names kept, the name the
# others are counted under. Returns {the name counted, its count now}: 1 means seen first now.
COUNT_IGNORED = """
local name = ARGV[1]
if redis.call('HEXISTS', KEYS[1], name) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[2]) then
  name = ARGV[3]
end
return {name, redis.call('HINCRBY', KEYS[1], name, 1)}
"""

# --- a session's lock and rounds (workers.sessions) -----------------------------------------------
# Take the lock: {1, fence, covered}, where covered is when the last completed look at the session
# started; or leave the holder a request: {0, the holder's fence}. A request keeps the latest time
# it was asked for (ARGV[4], or now). KEYS: lock, request, fence, covered. ARGV: token, lease (ms),
# the request's life (ms), asked (µs, or ''), the fence's life (s: longer than the state's, so that
# a fence never restarts under a stored decision that names a higher one).
HAND_OFF = (
    REDIS_NOW
    + """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence = redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], ARGV[5])
  return {1, fence, redis.call('GET', KEYS[4]) or '0'}
end
local asked = ARGV[4] ~= '' and ARGV[4] or now
local previous = redis.call('GET', KEYS[2])
if not previous or tonumber(previous) < tonumber(asked) then previous = asked end
redis.call('SET', KEYS[2], previous, 'PX', ARGV[3])
return {0, tonumber(redis.call('GET', KEYS[3]) or '0')}
"""
)
# Start a round: take the requests over, renew the lease; returns when the round started (``now``).
# KEYS: lock, request. ARGV: lease (ms).
BEGIN_ROUND = (
    REDIS_NOW
    + """
redis.call('DEL', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return now
"""
)
# Let go after a round that started at ARGV[3], unless a request asked after that (keep the lease,
# look again: 0). KEYS: lock, request, covered. ARGV: token, lease (ms), the round's start (µs),
# covered's life (s). -1 when the lease was lost.
RELEASE_IF_IDLE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local asked = redis.call('GET', KEYS[2])
if asked and tonumber(asked) >= tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
redis.call('DEL', KEYS[2])
local covered = redis.call('GET', KEYS[3])
if not covered or tonumber(covered) < tonumber(ARGV[3]) then
  redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
end
redis.call('DEL', KEYS[1])
return 1
"""

# --- leases (workers.leases) ------------------------------------------------------------------
# KEYS[1]: the lease key. ARGV[1]: the holder's token, ARGV[2]: the lease in milliseconds.
# Renews the lease when the key still holds the token: 1; else (lapsed, or taken over) 0.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# KEYS[1]: the lease key. ARGV[1]: the holder's token. Deletes the key when it still holds it.
DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# --- the fleet's rate limit (workers.complycube.ratelimit): GCRA ------------------------------------------
# KEYS[1]: the limiter key. ARGV[1]: interval between requests in microseconds.
# Returns 0 when the caller may go now, else the microseconds to wait before asking again.
GCRA = (
    REDIS_NOW
    + """
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now_us then tat = now_us end
if tat - now_us > 0 then return tat - now_us end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(interval / 1000) + 1000)
return 0
"""
)
# KEYS[1]: the limiter key. ARGV[1]: microseconds from now before which no request may go.
# Never brings the next allowed time forward.
PAUSE = (
    REDIS_NOW
    + """
local until_time = now_us + tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') < until_time then
  redis.call('SET', KEYS[1], until_time, 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return 0
"""
)
