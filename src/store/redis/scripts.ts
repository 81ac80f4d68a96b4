/**
 * The Lua scripts behind every decision the Redis store makes. Redis runs a script to completion without
 * running any other client's command in between, so each read-decide-write below is one atomic step, the
 * way one SQL transaction is for the SQLite store (standards T2: no check-then-act race, across any number
 * of otpd processes).
 *
 * The verification scripts mirror src/core/verification.ts rule for rule and in the same order; the field
 * names are those of codec.ts. Times arrive as decimal strings of epoch milliseconds and are stored either as
 * received or through `int()`: Lua 5.1 numbers are doubles (exact below 2^53) and its default
 * number-to-string conversion keeps only 14 significant digits, so no number is ever converted implicitly.
 *
 * Expiries are set with PEXPIRE relative to the caller's `now` (expiresAt + grace - now), not PEXPIREAT:
 * otpd's clock decides `expiresAt`, and a Redis host whose clock differs from it would otherwise drop keys
 * early or keep them late. With synchronised clocks the two are the same.
 *
 * In Redis Cluster, every key a script touches shares one hash tag (keys.ts), including keys a script builds
 * from a stem argument (the superseded verification, the verifications a create's pointer sweep reads, API
 * keys of a deleted app): they are in the script's slot by construction.
 */

import { IMPLIED } from './codec.js';

export interface ScriptDefinition {
  /** Command name registered with ioredis `defineCommand` (EVALSHA, falling back to EVAL on NOSCRIPT). */
  name: string;
  numberOfKeys: number;
  lua: string;
  readOnly?: boolean;
}

/**
 * Every script starts with a Redis 7 shebang. Without one, Redis runs scripts in a compatibility mode that
 * lets them touch keys of other slots as long as those live on the same node, which would hide a key-layout
 * mistake on a small cluster; with it, any key outside the script's slot is an error, so the cluster contract
 * test catches such a mistake every time. `no-writes` marks the read-only script. (Redis 7.0 or newer.)
 */
const WRITES = '#!lua\n';
const READS = '#!lua flags=no-writes\n';

const INT = `local function int(x) return string.format('%.0f', x) end\n`;

/**
 * The defaults a verification hash leaves out (codec.ts `IMPLIED`): a missing field reads as its default here
 * exactly as it does in codec.ts, and a field is written only when it differs from it.
 */
const IMPLIED_LUA =
  `local IMPLIED_STATUS, IMPLIED_DELIVERY = '${IMPLIED.status}', '${IMPLIED.deliveryStatus}'\n` +
  `local IMPLIED_ATTEMPTS, IMPLIED_SENDS, IMPLIED_MAX_ATTEMPTS = ${IMPLIED.attempts}, ${IMPLIED.sends}, ${IMPLIED.maxAttempts}\n`;

/**
 * One destination's send rules (src/core/destination-sends.ts), in one hash: u cooldown until, w window
 * start, c sends in it, p sends in the window before. The same rules as `decideSend`, `refundSend` and
 * `restartCooldown`, in the same order and with the same window arithmetic as SLIDING_HIT, so both stores
 * decide alike; JavaScript derives the admission's answer (Retry-After, which limit) from the state the
 * script decided on (`sendAdmissionFrom`). The expiry is only ever extended: a write under a rule without a
 * window (a resend's restart) must not drop counts another rule still needs. Shared by DESTINATION_SEND and
 * CREATE_VERIFICATION (a create decides its destination's rules in the script that inserts it).
 *
 * destinationSend(key, mode 'admit' | 'refund' | 'restart', now, cooldown ms (0: none), window max (nil:
 * no window), window ms, the cooldown a refund releases) returns 1 | 0 (admitted; refund and restart: 1)
 * and { u, w, c, p } as they were before.
 */
const DESTINATION_LUA = `
local function destinationSend(key, mode, now, cooldown, max, window, claimed)
  local stored = redis.call('HMGET', key, 'u', 'w', 'c', 'p')
  local u, w = tonumber(stored[1]) or 0, tonumber(stored[2]) or 0
  local c, p = tonumber(stored[3]) or 0, tonumber(stored[4]) or 0
  local before = { int(u), int(w), c, p }
  local function roll()
    local start = math.floor(now / window) * window
    if w < start then
      if w == start - window then p = c else p = 0 end
      w = start; c = 0
    end
  end
  if mode == 'admit' then
    if cooldown > 0 and u > now then return 0, before end
    if max then
      roll()
      local elapsed = math.min(window, math.max(0, now - w))
      if p * (window - elapsed) / window + c + 1 > max then return 0, before end
      c = c + 1
    end
    if cooldown > 0 then u = now + cooldown end
  elseif mode == 'refund' then
    if not stored[1] then return 1, before end
    if claimed > 0 and u == claimed then u = 0 end
    if max then
      roll()
      c = math.max(0, c - 1)
    end
  else
    u = math.max(u, now + cooldown)
  end
  redis.call('HSET', key, 'u', int(u), 'w', int(w), 'c', int(c), 'p', int(p))
  local keep = u
  if max then keep = math.max(keep, w + 2 * window) end
  if redis.call('PTTL', key) < keep - now then redis.call('PEXPIRE', key, int(math.max(1, keep - now))) end
  return 1, before
end
`;

/**
 * Create a verification, superseding the destination's pending one (decisions 2, core
 * `attemptsCarriedFrom`). Atomic because the pending pointer is read, the previous verification canceled, its
 * attempts carried and the new one written with nothing in between: two concurrent creates for one
 * destination cannot both carry from the same predecessor, nor leave two verifications pending.
 *
 * The pointer is found by a digest of (app, to) (codec.ts `destinationDigest`), so the previous verification
 * counts only if its app and `to` are the new one's. Its value is the id without `ve_`.
 *
 * The verification's outbox message (decisions 3) is written in the same step, and the superseded
 * verification's waiting message deleted (its code no longer works).
 *
 * Pointers cannot expire one by one (Redis 7.0), so the group's hash expires with its longest-lived pointer and
 * is swept here: at most once per ARGV 11 ms (field `prune` holds the time of the next sweep), a create drops
 * every pointer whose verification is gone, finished, or expired longer than ARGV 11 ms ago (a margin so an
 * instance whose clock runs ahead cannot take a live pointer away). A sweep reads one field pair per pointer
 * of the group; spread over the creates of one sweep interval that is a few reads per create.
 *
 * With a send rule (ARGV 13), the destination's cooldown and send window are decided first
 * (DESTINATION_LUA): a refused create writes nothing.
 *
 * KEYS: 1 new verification, 2 the group's pending pointers, 3 the destination's send rules (`P d:{G}:…`).
 * ARGV: 1 verification key stem `P v:{G}:`, 2 id, 3 now, 4 grace ms kept after expiry, 5 outbox key stem
 * `P o:{G}:`, 6 message id ('' for none), 7 payload, 8 message expiresAt, 9 ms the message is kept after it,
 * 10 destination digest, 11 sweep interval ms, 12 appId (for the message), 13 cooldown ms ('' for no
 * rule), 14 window max ('' for none), 15 window ms, 16.. field/value pairs.
 * Returns { supersededId or nil, stored attempts }, or { 'refused', u, w, c, p } (the destination's state
 * the refusal was decided on).
 */
export const CREATE_VERIFICATION: ScriptDefinition = {
  name: 'otpdCreateVerification',
  numberOfKeys: 3,
  lua:
    WRITES +
    INT +
    IMPLIED_LUA +
    DESTINATION_LUA +
    `
local key, pointers = KEYS[1], KEYS[2]
local stem, id, now, grace = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local outboxStem, messageId, destination, sweepMs = ARGV[5], ARGV[6], ARGV[10], tonumber(ARGV[11])
local FIELDS = 16
local record = {}
for i = FIELDS, #ARGV - 1, 2 do record[ARGV[i]] = ARGV[i + 1] end
if redis.call('EXISTS', key) == 1 then return redis.error_reply('ERR verification ' .. id .. ' already exists') end
if ARGV[13] ~= '' then
  local admitted, before = destinationSend(KEYS[3], 'admit', now, tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15]), 0)
  if admitted == 0 then return { 'refused', unpack(before) } end
end

local carried, superseded = 0, false
local previousRef = redis.call('HGET', pointers, destination)
if previousRef then
  local previousId = 've_' .. previousRef
  local previous = stem .. previousId
  local p = redis.call('HMGET', previous, 'a', 's', 'e', 'n', 't')
  if p[1] == record.a and p[5] == record.t and (p[2] or IMPLIED_STATUS) == 'pending' then
    -- A pending verification is replaced either way: canceled when superseded, expired when stale.
    if now >= tonumber(p[3]) then
      redis.call('HSET', previous, 's', 'expired', 'u', ARGV[3])
    else
      carried = tonumber(p[4] or IMPLIED_ATTEMPTS)
      redis.call('HSET', previous, 's', 'canceled', 'u', ARGV[3])
      superseded = previousId
    end
    redis.call('DEL', outboxStem .. previousId)
  end
end

local attempts = math.max(tonumber(record.n or IMPLIED_ATTEMPTS), carried)
local fields = {}
for i = FIELDS, #ARGV - 1, 2 do
  if ARGV[i] ~= 'n' then
    fields[#fields + 1] = ARGV[i]
    fields[#fields + 1] = ARGV[i + 1]
  end
end
if attempts ~= IMPLIED_ATTEMPTS then
  fields[#fields + 1] = 'n'
  fields[#fields + 1] = int(attempts)
end
redis.call('HSET', key, unpack(fields))
local expiresAt = tonumber(record.e)
redis.call('PEXPIRE', key, int(math.max(1, expiresAt + grace - now)))
if (record.s or IMPLIED_STATUS) == 'pending' then
  redis.call('HSET', pointers, destination, string.sub(id, 4))
  local ttl = math.max(1, expiresAt - now)
  if redis.call('PTTL', pointers) < ttl then redis.call('PEXPIRE', pointers, int(ttl)) end
elseif previousRef then
  redis.call('HDEL', pointers, destination)
end
if messageId ~= '' then
  local entry = outboxStem .. id
  redis.call('DEL', entry)
  redis.call('HSET', entry, 'i', messageId, 'a', ARGV[12], 'p', ARGV[7], 'c', record.c or int(IMPLIED_SENDS), 'e', ARGV[8])
  redis.call('PEXPIRE', entry, int(math.max(1, tonumber(ARGV[8]) + tonumber(ARGV[9]) - now)))
end

local due = redis.call('HGET', pointers, 'prune')
if (due and now >= tonumber(due)) or ((not due) and redis.call('EXISTS', pointers) == 1) then
  local all = redis.call('HGETALL', pointers)
  for i = 1, #all - 1, 2 do
    local field = all[i]
    if field ~= 'prune' and field ~= destination then
      local v = redis.call('HMGET', stem .. 've_' .. all[i + 1], 's', 'e')
      if (not v[2]) or (v[1] or IMPLIED_STATUS) ~= 'pending' or now >= tonumber(v[2]) + sweepMs then
        redis.call('HDEL', pointers, field)
      end
    end
  end
  redis.call('HSET', pointers, 'prune', int(now + sweepMs))
end
return { superseded, attempts }
`,
};

/**
 * One check of a code (core `decideCheck`): not pending → expired → locked → match → wrong (+1, locking at
 * max). Atomic because the attempt count is read, compared and incremented in one step: concurrent wrong
 * guesses from any number of processes can never count past `maxAttempts`, and two right guesses cannot
 * both be approved (standards T1, T2).
 *
 * The comparison is Lua string equality of keyed digests: HMAC(code-hash subkey, code bound to this
 * verification), computed by otpd. Even if its timing varied with the first differing byte, that would
 * reveal how much of an HMAC output matches; without the server secret nobody can pick a code whose digest
 * shares a prefix with the stored one, so the leak says nothing about the code (the reasoning behind the
 * "double HMAC" comparison). Besides, Lua interns strings, so == is a pointer comparison here. A key id and
 * hash stored packed (`K`, codec.ts) are compared with each candidate packed with its key id, so a hash made
 * under another key never matches there either; text ones (`k`, `h`) as they are.
 *
 * KEYS: 1 verification. ARGV: 1 app digest, 2 now, 3.. key id / candidate hash / both packed ('' when they do
 * not pack) triples.
 * Returns nil for an unknown id or another app's, else { outcome, HGETALL }.
 */
export const CHECK_VERIFICATION: ScriptDefinition = {
  name: 'otpdCheckVerification',
  numberOfKeys: 1,
  lua:
    WRITES +
    INT +
    IMPLIED_LUA +
    `
local key = KEYS[1]
local v = redis.call('HMGET', key, 'a', 's', 'e', 'n', 'm', 'K', 'k', 'h')
if v[1] ~= ARGV[1] then return false end
local now = tonumber(ARGV[2])
local status, expiresAt = v[2] or IMPLIED_STATUS, tonumber(v[3])
local attempts, maxAttempts = tonumber(v[4] or IMPLIED_ATTEMPTS), tonumber(v[5] or IMPLIED_MAX_ATTEMPTS)
local outcome
if status ~= 'pending' then
  outcome = 'not_pending'
elseif now >= expiresAt then
  outcome = 'expired'
  redis.call('HSET', key, 's', 'expired', 'u', ARGV[2])
elseif attempts >= maxAttempts then
  outcome = 'locked'
  redis.call('HSET', key, 's', 'max_attempts_reached', 'u', ARGV[2])
else
  -- The record's key id picks the candidate: a hash made under another key never matches.
  local matches = false
  for i = 3, #ARGV - 2, 3 do
    if v[6] then
      if ARGV[i + 2] == v[6] then
        matches = true
        break
      end
    elseif ARGV[i] == v[7] then
      matches = ARGV[i + 1] == v[8]
      break
    end
  end
  if matches then
    outcome = 'approved'
    redis.call('HSET', key, 's', 'approved', 'u', ARGV[2])
  else
    outcome = 'wrong'
    attempts = attempts + 1
    if attempts >= maxAttempts then
      redis.call('HSET', key, 'n', int(attempts), 's', 'max_attempts_reached', 'u', ARGV[2])
    else
      redis.call('HSET', key, 'n', int(attempts), 'u', ARGV[2])
    end
  end
end
return { outcome, redis.call('HGETALL', key) }
`,
};

/**
 * Resend (core `decideResend`): not pending → expired → max sends → cooldown → new code, attempts kept
 * (decisions 1). Atomic so two concurrent resends cannot both pass the cooldown or the send limit. The
 * verification's expiry moves with `expiresAt`, and so does its group's pointer hash when it would expire
 * sooner, so the destination keeps pointing at this verification and a later create still carries its
 * attempts.
 *
 * On success the verification's waiting outbox message is replaced by the new one, in the same step.
 *
 * KEYS: 1 verification, 2 the group's pending pointers. ARGV: 1 app digest, 2 now, 3 new key id and code
 * hash packed ('' when they do not pack), 4 key id, 5 code hash, 6 maxSends, 7 cooldown ms, 8 ttl ms, 9 grace ms, 10 createdAt
 * (the time in the id: lastSentAt when `l` is absent), 11 outbox entry key ('' for no message), 12 message
 * id, 13 payload, 14 ms the message is kept after it expires, 15 appId (for the message).
 * Returns nil for an unknown id or another app's, else { 'ok' | reason, retryAfterMs or nil, HGETALL }.
 */
export const RESEND_VERIFICATION: ScriptDefinition = {
  name: 'otpdResendVerification',
  numberOfKeys: 2,
  lua:
    WRITES +
    INT +
    IMPLIED_LUA +
    `
local key = KEYS[1]
local v = redis.call('HMGET', key, 'a', 's', 'e', 'c', 'l')
if v[1] ~= ARGV[1] then return false end
local now = tonumber(ARGV[2])
local status, expiresAt = v[2] or IMPLIED_STATUS, tonumber(v[3])
local sends, lastSentAt = tonumber(v[4] or IMPLIED_SENDS), tonumber(v[5] or ARGV[10])
if status ~= 'pending' then
  return { 'not_pending', false, redis.call('HGETALL', key) }
end
if now >= expiresAt then
  redis.call('HSET', key, 's', 'expired', 'u', ARGV[2])
  return { 'expired', false, redis.call('HGETALL', key) }
end
if sends >= tonumber(ARGV[6]) then
  return { 'max_sends', math.max(0, expiresAt - now), redis.call('HGETALL', key) }
end
local wait = lastSentAt + tonumber(ARGV[7]) - now
if wait > 0 then
  return { 'cooldown', wait, redis.call('HGETALL', key) }
end

local newExpiresAt = now + tonumber(ARGV[8])
redis.call('HSET', key, 'c', int(sends + 1), 'e', int(newExpiresAt), 'l', ARGV[2], 'u', ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HSET', key, 'K', ARGV[3])
  redis.call('HDEL', key, 'k', 'h')
else
  redis.call('HSET', key, 'k', ARGV[4], 'h', ARGV[5])
  redis.call('HDEL', key, 'K')
end
-- Delivery starts over: no field 'd' reads as 'queued' (codec.ts); the last message's id and failure go.
redis.call('HDEL', key, 'd', 'pm', 'fr')
redis.call('PEXPIRE', key, int(math.max(1, newExpiresAt + tonumber(ARGV[9]) - now)))
local ttl = math.max(1, newExpiresAt - now)
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], int(ttl)) end
if ARGV[11] ~= '' then
  redis.call('DEL', ARGV[11])
  redis.call('HSET', ARGV[11], 'i', ARGV[12], 'a', ARGV[15], 'p', ARGV[13], 'c', int(sends + 1), 'e', int(newExpiresAt))
  redis.call('PEXPIRE', ARGV[11], int(math.max(1, newExpiresAt + tonumber(ARGV[14]) - now)))
end
return { 'ok', false, redis.call('HGETALL', key) }
`,
};

/**
 * Cancel (core `decideCancel`): not pending → expired → canceled. Atomic so a cancel cannot interleave with a
 * check that approves the same verification.
 *
 * KEYS: 1 verification. ARGV: 1 app digest, 2 now. Returns nil, or { 1 | 0, HGETALL }.
 */
export const CANCEL_VERIFICATION: ScriptDefinition = {
  name: 'otpdCancelVerification',
  numberOfKeys: 1,
  lua:
    WRITES +
    IMPLIED_LUA +
    `
local key = KEYS[1]
local v = redis.call('HMGET', key, 'a', 's', 'e')
if v[1] ~= ARGV[1] then return false end
local ok = 0
if (v[2] or IMPLIED_STATUS) == 'pending' then
  if tonumber(ARGV[2]) >= tonumber(v[3]) then
    redis.call('HSET', key, 's', 'expired', 'u', ARGV[2])
  else
    redis.call('HSET', key, 's', 'canceled', 'u', ARGV[2])
    ok = 1
  end
end
return { ok, redis.call('HGETALL', key) }
`,
};

/**
 * A provider's delivery report. Atomic so "fail the verification only while it is still pending" cannot
 * overwrite an approval that lands at the same moment.
 *
 * With a send number (ARGV 11), the report applies only while the verification is on that send and never
 * moves its delivery status back (src/store/delivery-order.ts): queued 0 < sent 1 < the final ones 2.
 *
 * With a message id (ARGV 12), the verification's message (KEYS 2, same slot) is wiped first, as
 * OUTBOX_DELETE_ENTRY does, whether or not the report applies: the message a provider took goes in the same
 * step as the report of it.
 *
 * KEYS: 1 verification, 2 its outbox message. ARGV: 1 app digest, 2 now, 3 delivery status, 4 '1' to fail a
 * pending verification, 5/6 provider, 7/8 provider message id, 9/10 failure reason — each an op ('keep' |
 * 'clear' | 'set') and a value, 11 send ('' for none), 12 id of the message to wipe ('' for none).
 * Returns nil, or HGETALL.
 */
export const RECORD_DELIVERY: ScriptDefinition = {
  name: 'otpdRecordDelivery',
  numberOfKeys: 2,
  lua:
    WRITES +
    IMPLIED_LUA +
    `
local key = KEYS[1]
if ARGV[12] ~= '' and redis.call('HGET', KEYS[2], 'i') == ARGV[12] then redis.call('DEL', KEYS[2]) end
local v = redis.call('HMGET', key, 'a', 's', 'c', 'd')
if v[1] ~= ARGV[1] then return false end
if ARGV[11] ~= '' then
  local rank = { queued = 0, sent = 1, delivered = 2, undelivered = 2, failed = 2 }
  if tonumber(v[3] or IMPLIED_SENDS) ~= tonumber(ARGV[11]) or rank[ARGV[3]] < rank[v[4] or IMPLIED_DELIVERY] then
    return redis.call('HGETALL', key)
  end
end
if ARGV[4] == '1' and (v[2] or IMPLIED_STATUS) == 'pending' then
  redis.call('HSET', key, 's', 'failed')
end
redis.call('HSET', key, 'd', ARGV[3], 'u', ARGV[2])
local optional = { 'p', 'pm', 'fr' }
for i, field in ipairs(optional) do
  local op, value = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  if op == 'set' then
    redis.call('HSET', key, field, value)
  elseif op == 'clear' then
    redis.call('HDEL', key, field)
  end
end
return redis.call('HGETALL', key)
`,
};

/**
 * The destination's pending verification: pointer and record read in one step, so the id found is never
 * paired with a record from another moment. Read-only; the caller checks app and `to` (the pointer is found
 * by a digest) and applies "pending and unexpired".
 *
 * KEYS: 1 the group's pending pointers. ARGV: 1 destination digest, 2 verification key stem.
 * Returns nil or { id, HGETALL }.
 */
export const FIND_PENDING: ScriptDefinition = {
  name: 'otpdFindPending',
  numberOfKeys: 1,
  readOnly: true,
  lua:
    READS +
    `
local ref = redis.call('HGET', KEYS[1], ARGV[1])
if not ref then return false end
local id = 've_' .. ref
return { id, redis.call('HGETALL', ARGV[2] .. id) }
`,
};

/**
 * Insert an app unless its name is taken. Atomic: HSETNX on the name index is the uniqueness check, and the
 * app is written only by the caller that won it.
 *
 * KEYS: 1 app, 2 name index. ARGV: 1 id, 2 name, 3 settings JSON, 4 createdAt, 5 updatedAt. Returns 1, or 0 when taken.
 */
export const INSERT_APP: ScriptDefinition = {
  name: 'otpdInsertApp',
  numberOfKeys: 2,
  lua:
    WRITES +
    `
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'n', ARGV[2], 's', ARGV[3], 'c', ARGV[4], 'u', ARGV[5])
return 1
`,
};

/**
 * Update an app, moving its name in the index. Atomic so a rename cannot race another app taking the name.
 * An unknown id changes nothing (as the SQLite UPDATE).
 *
 * KEYS: 1 app, 2 name index. ARGV: 1 id, 2 name, 3 settings JSON, 4 updatedAt. Returns 1, or 0 when the name is taken.
 */
export const UPDATE_APP: ScriptDefinition = {
  name: 'otpdUpdateApp',
  numberOfKeys: 2,
  lua:
    WRITES +
    `
local oldName = redis.call('HGET', KEYS[1], 'n')
if not oldName then return 1 end
if oldName ~= ARGV[2] then
  local owner = redis.call('HGET', KEYS[2], ARGV[2])
  if owner and owner ~= ARGV[1] then return 0 end
  if redis.call('HGET', KEYS[2], oldName) == ARGV[1] then redis.call('HDEL', KEYS[2], oldName) end
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
end
redis.call('HSET', KEYS[1], 'n', ARGV[2], 's', ARGV[3], 'u', ARGV[4])
return 1
`,
};

/**
 * Delete an app, its name and its API keys. Atomic so no key of a deleted app is left authenticating.
 *
 * KEYS: 1 app, 2 name index, 3 the app's key set, 4 key id index. ARGV: 1 id, 2 API key stem.
 * Returns 1, or 0 when there was no such app.
 */
export const DELETE_APP: ScriptDefinition = {
  name: 'otpdDeleteApp',
  numberOfKeys: 4,
  lua:
    WRITES +
    `
local name = redis.call('HGET', KEYS[1], 'n')
if not name then return 0 end
if redis.call('HGET', KEYS[2], name) == ARGV[1] then redis.call('HDEL', KEYS[2], name) end
redis.call('DEL', KEYS[1])
for _, hash in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local key = ARGV[2] .. hash
  local id = redis.call('HGET', key, 'i')
  if id then redis.call('HDEL', KEYS[4], id) end
  redis.call('DEL', key)
end
redis.call('DEL', KEYS[3])
return 1
`,
};

/**
 * Insert an API key with its two indexes. Atomic so a key is never findable by hash but not by id or app.
 *
 * KEYS: 1 key (by hash), 2 key id index, 3 the app's key set. ARGV: 1 id, 2 appId, 3 hash, 4 prefix,
 * 5 createdAt, 6 revokedAt or ''.
 */
export const INSERT_API_KEY: ScriptDefinition = {
  name: 'otpdInsertApiKey',
  numberOfKeys: 3,
  lua:
    WRITES +
    `
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('ERR an API key with this hash already exists') end
redis.call('HSET', KEYS[1], 'i', ARGV[1], 'a', ARGV[2], 'p', ARGV[4], 'c', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'r', ARGV[6]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
`,
};

/**
 * Revoke an API key once. Atomic so two revocations cannot both report success.
 *
 * KEYS: 1 key id index. ARGV: 1 API key stem, 2 id, 3 now. Returns 1, or 0 when unknown or already revoked.
 */
export const REVOKE_API_KEY: ScriptDefinition = {
  name: 'otpdRevokeApiKey',
  numberOfKeys: 1,
  lua:
    WRITES +
    `
local hash = redis.call('HGET', KEYS[1], ARGV[2])
if not hash then return 0 end
local key = ARGV[1] .. hash
if redis.call('EXISTS', key) == 0 or redis.call('HEXISTS', key, 'r') == 1 then return 0 end
redis.call('HSET', key, 'r', ARGV[3])
return 1
`,
};

/**
 * Begin an idempotent request. Atomic so of two concurrent requests with one key exactly one sees 'new'.
 * A different fingerprint is a mismatch whatever the state, as in the SQLite store.
 *
 * KEYS: 1 entry. ARGV: 1 fingerprint, 2 ttl ms. Returns { state, stored response JSON or nil }.
 */
export const BEGIN_IDEMPOTENT: ScriptDefinition = {
  name: 'otpdBeginIdempotent',
  numberOfKeys: 1,
  lua:
    WRITES +
    `
local entry = redis.call('HMGET', KEYS[1], 'f', 'r')
if not entry[1] then
  redis.call('HSET', KEYS[1], 'f', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return { 'new', false }
end
if entry[1] ~= ARGV[1] then return { 'mismatch', false } end
if not entry[2] then return { 'in_progress', false } end
return { 'done', entry[2] }
`,
};

/**
 * Store the response of an idempotent request and restart its ttl. Atomic so an entry abandoned or expired
 * meanwhile is not recreated without its fingerprint.
 *
 * KEYS: 1 entry. ARGV: 1 response JSON, 2 ttl ms.
 */
export const COMPLETE_IDEMPOTENT: ScriptDefinition = {
  name: 'otpdCompleteIdempotent',
  numberOfKeys: 1,
  lua:
    WRITES +
    `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'r', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`,
};

/**
 * Fixed-window counter. Atomic so concurrent hits can never admit more than `limit` in one window (a plain
 * INCR would count the refused hits too). The key names its window and expires when the window ends.
 *
 * KEYS: 1 counter of this window. ARGV: 1 limit, 2 cost, 3 ms until the window ends.
 * Returns { 1 | 0 allowed, count }.
 */
export const HIT: ScriptDefinition = {
  name: 'otpdHit',
  numberOfKeys: 1,
  lua:
    WRITES +
    `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count + tonumber(ARGV[2]) > tonumber(ARGV[1]) then return { 0, count } end
count = redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return { 1, count }
`,
};

/**
 * Sliding-window counter (src/core/sliding-window.ts): the same roll and estimate as `decideSliding`, in the
 * same order of operations so both stores round alike. One hash per key — w window start, c current
 * count, p previous window's count — expiring two windows after its window starts. JavaScript derives the
 * estimate and Retry-After from the returned state (`slidingResult`).
 *
 * KEYS: 1 counter. ARGV: 1 limit, 2 window ms, 3 now, 4 cost (negative refunds).
 * Returns { 1 | 0 allowed, window start, current, previous } after the hit.
 */
export const SLIDING_HIT: ScriptDefinition = {
  name: 'otpdSlidingHit',
  numberOfKeys: 1,
  lua:
    WRITES +
    INT +
    `
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local start = math.floor(now / window) * window
local stored = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local w = tonumber(stored[1])
local c = tonumber(stored[2]) or 0
local p = tonumber(stored[3]) or 0
if w == nil then
  w = start; c = 0; p = 0
elseif w < start then
  if w == start - window then p = c else p = 0 end
  w = start; c = 0
end
local elapsed = math.min(window, math.max(0, now - w))
local count = p * (window - elapsed) / window + c
if cost > 0 and count + cost > limit then return { 0, int(w), c, p } end
c = math.max(0, c + cost)
redis.call('HSET', KEYS[1], 'w', int(w), 'c', c, 'p', p)
redis.call('PEXPIRE', KEYS[1], math.max(1, w + 2 * window - now))
return { 1, int(w), c, p }
`,
};

/**
 * Write a versioned document: unconditionally, only if absent, or only if at a given version. Atomic, so it
 * is a true compare-and-set: of concurrent writers expecting one version exactly one wins.
 *
 * KEYS: 1 record. ARGV: 1 JSON, 2 mode ('any' | 'absent' | 'version'), 3 expected version, 4 ttl ms or ''.
 * Returns the new version, or nil when the condition failed.
 */
export const PUT_RECORD: ScriptDefinition = {
  name: 'otpdPutRecord',
  numberOfKeys: 1,
  lua:
    WRITES +
    INT +
    `
local current = tonumber(redis.call('HGET', KEYS[1], 'v'))
if ARGV[2] == 'absent' and current then return false end
if ARGV[2] == 'version' and current ~= tonumber(ARGV[3]) then return false end
local version = (current or 0) + 1
redis.call('HSET', KEYS[1], 'v', int(version), 'd', ARGV[1])
if ARGV[4] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  redis.call('PERSIST', KEYS[1])
end
return version
`,
};

/**
 * Erase one verification of a destination (personal-data erasure) and the destination's pending pointer.
 * Atomic so a verification is never left pending without its pointer or the other way round. The key was
 * found by the destination's routing tag, which other destinations share, so the script deletes it only
 * when its app and `to` are the person's.
 *
 * KEYS: 1 verification, 2 the group's pending pointers. ARGV: 1 app digest, 2 encoded `to` (codec.ts),
 * 3 destination digest. Returns 1 when erased, else 0.
 */
export const ERASE_VERIFICATION: ScriptDefinition = {
  name: 'otpdEraseVerification',
  numberOfKeys: 2,
  lua:
    WRITES +
    `
local v = redis.call('HMGET', KEYS[1], 'a', 't')
redis.call('HDEL', KEYS[2], ARGV[3])
if v[1] ~= ARGV[1] or v[2] ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`,
};

/**
 * A send to a destination outside a create (Store `admitSend`, `refundSend`, `restartCooldown`). Atomic, so
 * of concurrent sends to one destination exactly as many pass as the rules allow, from any number of
 * processes.
 *
 * KEYS: 1 the destination's hash. ARGV: 1 mode, 2 now, 3 cooldown ms, 4 window max ('' when there is no
 * window), 5 window ms, 6 the cooldown a refund releases. Returns { admitted, u, w, c, p as before }.
 */
export const DESTINATION_SEND: ScriptDefinition = {
  name: 'otpdDestinationSend',
  numberOfKeys: 1,
  lua:
    WRITES +
    INT +
    DESTINATION_LUA +
    `
local admitted, before = destinationSend(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
return { admitted, unpack(before) }
`,
};

/**
 * Drops the due-index entry of a message whose create or resend was refused after the index was written
 * (the index goes first, OUTBOX_INDEX): the claimer would otherwise find it without its message and drop
 * it only after a grace period.
 *
 * KEYS: 1 due index, 2 meta. ARGV: 1 member.
 */
export const OUTBOX_UNINDEX: ScriptDefinition = {
  name: 'otpdOutboxUnindex',
  numberOfKeys: 2,
  lua:
    WRITES +
    `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`,
};

/**
 * Append audit entries to an app's stream. Atomic so the ids stay in order: each entry's id is
 * `<ms>-<seq>` with ms = max(entry time, the stream's last generated id), so otpd's clock (not Redis')
 * dates the entries and a clock step backwards cannot make XADD refuse one. MINID ~ trims entries older
 * than the retention on the way (approximately: whole macro-nodes), and the key's expiry is pushed to one
 * retention period from now: a log nobody wrote to for that long holds only expired entries, so it goes
 * as a whole (no key without an expiry).
 *
 * KEYS: 1 stream. ARGV: 1 oldest id to keep (ms), 2 retention ms, then per entry: time ms, n, n field/value strings.
 * Returns the new ids.
 */
export const APPEND_AUDIT: ScriptDefinition = {
  name: 'otpdAppendAudit',
  numberOfKeys: 1,
  lua:
    WRITES +
    INT +
    `
local key = KEYS[1]
local lastMs = 0
if redis.call('EXISTS', key) == 1 then
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info - 1, 2 do
    if info[i] == 'last-generated-id' then lastMs = tonumber(string.match(info[i + 1], '^(%d+)-')) end
  end
end
local ids = {}
local i = 3
while i <= #ARGV do
  local ms = math.max(tonumber(ARGV[i]), lastMs)
  local n = tonumber(ARGV[i + 1])
  local args = { 'XADD', key, 'MINID', '~', ARGV[1], int(ms) .. '-*' }
  for j = i + 2, i + 1 + n do args[#args + 1] = ARGV[j] end
  ids[#ids + 1] = redis.call(unpack(args))
  lastMs = ms
  i = i + 2 + n
end
redis.call('PEXPIRE', key, ARGV[2])
return ids
`,
};

/**
 * Queue one webhook event (once: an id already queued is left alone). Atomic so the due set and the event
 * never disagree. The due set's expiry is kept at least as long as its longest-lived event's.
 *
 * KEYS: 1 due set, 2 event. ARGV: 1 id, 2 appId, 3 type, 4 payload, 5 dueAt, 6 expiresAt, 7 ttl ms.
 */
export const ENQUEUE_EVENT: ScriptDefinition = {
  name: 'otpdEnqueueEvent',
  numberOfKeys: 2,
  lua:
    WRITES +
    `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[2], 'a', ARGV[2], 'y', ARGV[3], 'p', ARGV[4], 'n', '0', 'd', ARGV[5], 'e', ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[7]) then redis.call('PEXPIRE', KEYS[1], ARGV[7]) end
return 1
`,
};

/**
 * Lease the events due now: each gets one more attempt counted and its due time moved to the end of the
 * lease, so no other process takes it meanwhile. Atomic so two processes never lease one event at once.
 * Ids whose event has expired are dropped from the due set on the way.
 *
 * KEYS: 1 due set. ARGV: 1 now, 2 lease ms, 3 limit, 4 event key stem. Returns { id, HGETALL } pairs.
 */
export const CLAIM_EVENTS: ScriptDefinition = {
  name: 'otpdClaimEvents',
  numberOfKeys: 1,
  lua:
    WRITES +
    INT +
    `
local leaseEnd = int(tonumber(ARGV[1]) + tonumber(ARGV[2]))
local out = {}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local key = ARGV[4] .. id
  if redis.call('EXISTS', key) == 0 then
    redis.call('ZREM', KEYS[1], id)
  else
    redis.call('HINCRBY', key, 'n', 1)
    redis.call('HSET', key, 'd', leaseEnd)
    redis.call('ZADD', KEYS[1], leaseEnd, id)
    out[#out + 1] = { id, redis.call('HGETALL', key) }
  end
end
return out
`,
};

/**
 * Reschedule an event after a failed attempt. Atomic with the due set, as above.
 *
 * KEYS: 1 due set, 2 event. ARGV: 1 id, 2 dueAt, 3 last error.
 */
export const RETRY_EVENT: ScriptDefinition = {
  name: 'otpdRetryEvent',
  numberOfKeys: 2,
  lua:
    WRITES +
    `
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[2], 'd', ARGV[2], 'le', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
`,
};

/** Drop an event (delivered or abandoned). KEYS: 1 due set, 2 event. ARGV: 1 id. */
export const COMPLETE_EVENT: ScriptDefinition = {
  name: 'otpdCompleteEvent',
  numberOfKeys: 2,
  lua:
    WRITES +
    `
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[2])
`,
};

// --- outbox (src/store/outbox.ts) -------------------------------------------------------------------
//
// A waiting message lives in its verification's slot (written by CREATE_VERIFICATION / RESEND_VERIFICATION
// or OUTBOX_PUT); the due index `{outbox}:due` and its per-message "tries|last error" hash `{outbox}:meta`
// share one fixed slot. A member is "<reference>|<messageId>" and its score the next try, or the end of the
// lease while a process sends it. The lease end is also the fence: renew, reschedule and complete act only
// while the score is still the one the claimer was given (a later claim always sets a later end).

/**
 * Index a new message: due at ARGV 2 with ARGV 4 tries so far (0; 1 for a message written already leased,
 * whose ARGV 2 is then its lease end, as OUTBOX_CLAIM would have left it). Runs before the message itself
 * is written, so a crash in between leaves only an index entry (the claimer drops it), never a message
 * without one. Both keys keep at least ARGV 3 ms of life (the longest message's).
 *
 * KEYS: 1 due set, 2 meta hash. ARGV: 1 member, 2 dueAt, 3 ms to keep the index at least, 4 tries.
 */
export const OUTBOX_INDEX: ScriptDefinition = {
  name: 'otpdOutboxIndex',
  numberOfKeys: 2,
  lua:
    WRITES +
    `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4] .. '|')
local keep = tonumber(ARGV[3])
for _, k in ipairs(KEYS) do
  if redis.call('PTTL', k) < keep then redis.call('PEXPIRE', k, ARGV[3]) end
end
return 1
`,
};

/**
 * Write the waiting message of a reference that is no verification (replacing any earlier one).
 *
 * KEYS: 1 message key. ARGV: 1 message id, 2 appId, 3 payload, 4 send, 5 expiresAt, 6 ttl ms.
 */
export const OUTBOX_PUT: ScriptDefinition = {
  name: 'otpdOutboxPut',
  numberOfKeys: 1,
  lua:
    WRITES +
    `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'i', ARGV[1], 'a', ARGV[2], 'p', ARGV[3], 'c', ARGV[4], 'e', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
`,
};

/**
 * Lease the due messages: each member's score moves to the lease end and its tries go up by one, in one
 * step, so two processes never lease the same message at once.
 *
 * KEYS: 1 due set, 2 meta hash. ARGV: 1 now, 2 lease ms, 3 limit.
 * Returns { lease end, { { member, tries, last error }… } }.
 */
export const OUTBOX_CLAIM: ScriptDefinition = {
  name: 'otpdOutboxClaim',
  numberOfKeys: 2,
  lua:
    WRITES +
    INT +
    `
local leaseEnd = int(tonumber(ARGV[1]) + tonumber(ARGV[2]))
local out = {}
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(members) do
  redis.call('ZADD', KEYS[1], leaseEnd, m)
  local meta = redis.call('HGET', KEYS[2], m) or '0|'
  local bar = string.find(meta, '|', 1, true)
  local tries = tonumber(string.sub(meta, 1, bar - 1)) + 1
  local lastError = string.sub(meta, bar + 1)
  redis.call('HSET', KEYS[2], m, int(tries) .. '|' .. lastError)
  out[#out + 1] = { m, int(tries), lastError }
end
return { leaseEnd, out }
`,
};

/**
 * Read a claimed verification's message together with the verification's ownership, status and sends (the
 * sender skips a message whose verification is no longer waiting for it), in one step: both keys carry the
 * verification's group as hash tag (keys.ts), so they share a slot. Read-only.
 *
 * KEYS: 1 message key, 2 verification key. Returns { HGETALL of the message, { a, s, c } } (nil for a
 * missing field; codec.ts `verificationStateFromFields` reads a missing `s` or `c` as its default).
 */
export const OUTBOX_READ_WITH_VERIFICATION: ScriptDefinition = {
  name: 'otpdOutboxReadWithVerification',
  numberOfKeys: 2,
  readOnly: true,
  lua:
    READS +
    `
return { redis.call('HGETALL', KEYS[1]), redis.call('HMGET', KEYS[2], 'a', 's', 'c') }
`,
};

/**
 * What a lease holder may do, while the member's score is still its lease end (ARGV 2): 'renew' or
 * 'reschedule' (with an error) moves the score to ARGV 4; 'defer' does too without counting the try;
 * 'complete' removes the member.
 *
 * KEYS: 1 due set, 2 meta hash. ARGV: 1 member, 2 lease end, 3 op, 4 new score, 5 last error.
 * Returns 1, or 0 when the lease is no longer held.
 */
export const OUTBOX_FENCED: ScriptDefinition = {
  name: 'otpdOutboxFenced',
  numberOfKeys: 2,
  lua:
    WRITES +
    INT +
    `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not score) or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
local op = ARGV[3]
if op == 'complete' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
if op == 'reschedule' or op == 'defer' then
  local meta = redis.call('HGET', KEYS[2], ARGV[1]) or '1|'
  local bar = string.find(meta, '|', 1, true)
  local tries = tonumber(string.sub(meta, 1, bar - 1))
  if op == 'reschedule' then
    redis.call('HSET', KEYS[2], ARGV[1], int(tries) .. '|' .. ARGV[5])
  else
    redis.call('HSET', KEYS[2], ARGV[1], int(math.max(0, tries - 1)) .. string.sub(meta, bar))
  end
end
return 1
`,
};

/**
 * Wipe a sent (or abandoned) message, unless a newer message of the same reference replaced it meanwhile.
 *
 * KEYS: 1 message key. ARGV: 1 message id. Returns 1 when deleted.
 */
export const OUTBOX_DELETE_ENTRY: ScriptDefinition = {
  name: 'otpdOutboxDeleteEntry',
  numberOfKeys: 1,
  lua:
    WRITES +
    `
if redis.call('HGET', KEYS[1], 'i') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`,
};

export const SCRIPTS: readonly ScriptDefinition[] = [
  CREATE_VERIFICATION,
  CHECK_VERIFICATION,
  RESEND_VERIFICATION,
  CANCEL_VERIFICATION,
  RECORD_DELIVERY,
  FIND_PENDING,
  INSERT_APP,
  UPDATE_APP,
  DELETE_APP,
  INSERT_API_KEY,
  REVOKE_API_KEY,
  BEGIN_IDEMPOTENT,
  COMPLETE_IDEMPOTENT,
  HIT,
  SLIDING_HIT,
  DESTINATION_SEND,
  PUT_RECORD,
  ERASE_VERIFICATION,
  APPEND_AUDIT,
  ENQUEUE_EVENT,
  CLAIM_EVENTS,
  RETRY_EVENT,
  COMPLETE_EVENT,
  OUTBOX_INDEX,
  OUTBOX_PUT,
  OUTBOX_CLAIM,
  OUTBOX_READ_WITH_VERIFICATION,
  OUTBOX_FENCED,
  OUTBOX_DELETE_ENTRY,
  OUTBOX_UNINDEX,
];
