import { routingTagOfVerificationId } from '../../core/ids.js';
import { OtpdError } from '../../errors.js';

/**
 * The Redis key layout, in one place. `P` is the configured prefix (`otpd:` by default).
 *
 *   P v:{G}:<verificationId>        hash    one verification (fields in codec.ts); expires at expiresAt + 24 h
 *   P p:{G}                         hash    the pending pointers of one group: destination digest of (app, to)
 *                                           (codec.ts) → the id, without `ve_`, of its latest pending verification;
 *                                           field `prune`: time of the group's next sweep. Expires with the
 *                                           latest expiresAt of its pointers, moved on resend
 *   P d:{G}:<digest>                hash    one destination's send rules (scripts.ts DESTINATION_SEND): u cooldown until,
 *                                           w window start, c sends, p previous window's; `digest` as the pending
 *                                           pointer's. Expires when both the cooldown and the window's counts are over
 *   P {apps}:a:<appId>              hash    app: n name, s settings JSON, c createdAt, u updatedAt; permanent
 *   P {apps}:names                  hash    app name → app id (name uniqueness); permanent
 *   P {apps}:k:<keyHash>            hash    API key: i id, a appId, p prefix, c createdAt, r revokedAt; permanent
 *   P {apps}:ki                     hash    API key id → key hash (revoke by id); permanent
 *   P {apps}:ka:<appId>             set     key hashes of one app (list, cascade delete); permanent
 *   P i:<scope>:<key>               hash    idempotency entry: f fingerprint, r response JSON; expires with its ttl
 *   P q:<windowStart>:<key>         string  fixed-window counter; expires when the window ends
 *   P c:<key>                       string  claimOnce marker (SET NX PX); expires with its ttl
 *   P s:<key>                       hash    sliding-window counter: w window start, c current, p previous; expires two windows after w
 *   P r:<namespace>:<id>            hash    versioned document: v version, d JSON; permanent unless given a ttl
 *   P {audit:<appId>}:log           stream  the app's audit log; trimmed to its retention on every append, and
 *                                           expires (PEXPIRE = retention, refreshed on append) when nothing was added for that long
 *   P o:{G}:<verificationId>        hash    the verification's waiting outbox message: i message id, a appId, p payload
 *                                           (ciphertext), c send, e expiresAt; expires an hour after expiresAt
 *   P o:{<reference>}               hash    the same, for a reference that is no verification (seed-001 codes)
 *   P {outbox}:due                  zset    "<reference>|<messageId>" → next try, or the end of its lease; expiry
 *                                           refreshed to the longest message's
 *   P {outbox}:meta                 hash    same member → "tries|last error"; expiry as the due set
 *   P {events}:due                  zset    webhook event id → next attempt time; expiry refreshed to the longest event's
 *   P {events}:e:<id>               hash    one queued webhook event (a appId, y type, p payload, n attempts, d dueAt,
 *                                           e expiresAt, le last error); expires at expiresAt
 *
 * `{G}` is the group of a verification id: the first 3 characters (15 bits) of its routing tag (core/ids.ts),
 * which is the same for every verification of one (app, destination). Used as the Redis Cluster hash tag, it
 * puts a destination's verifications and its pending pointer in one slot, so "create supersedes the pending one
 * and carries its attempts" is one script. A group, not the whole 20-bit tag, because the pointers of a group
 * share one hash: a key per pending verification costs ~150 bytes of keyspace overhead (dict entries, key name,
 * object header, expiry entry), a pointer inside a shared listpack ~45 (docs/scaling.md, bench/redis-memory.ts).
 * 32,768 groups still spread evenly over the 16,384 slots. Redis 7.0 cannot expire a field, so a pointer goes
 * when a later create replaces it, or when a create sweeps its group (scripts.ts, CREATE_VERIFICATION).
 * Apps and API keys are few and small; one `{apps}` tag keeps their multi-key scripts in one slot too.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {
    // A brace in the prefix would become the hash tag of every key and silently put the whole store in
    // one cluster slot; refuse it instead.
    if (/[{}]/.test(prefix)) throw new OtpdError('CONFIG', `the Redis key prefix must not contain { or }, got ${JSON.stringify(prefix)}`);
  }

  /** `P v:{G}:` — verification keys of one group are this stem plus the id. */
  verificationStem(group: string): string {
    return `${this.prefix}v:{${group}}:`;
  }

  /** undefined for a string that is not a well-formed verification id (it cannot exist). */
  verification(id: string): string | undefined {
    const tag = routingTagOfVerificationId(id);
    return tag === undefined ? undefined : this.verificationStem(groupOf(tag)) + id;
  }

  /** SCAN MATCH pattern for the verification keys of one routing tag (`ve_`, 10 time characters, then the tag). */
  verificationsOfTag(tag: string): string {
    return `${globLiteral(this.verificationStem(groupOf(tag)))}ve_${'?'.repeat(10)}${globLiteral(tag)}*`;
  }

  /** The hash of the group's pending pointers. */
  pendingPointers(group: string): string {
    return `${this.prefix}p:{${group}}`;
  }

  /** A destination's send state, in its group's slot beside its verifications. */
  destination(group: string, digest: string): string {
    return `${this.prefix}d:{${group}}:${digest}`;
  }

  app(appId: string): string {
    return `${this.prefix}{apps}:a:${appId}`;
  }

  appNames(): string {
    return `${this.prefix}{apps}:names`;
  }

  /** `P {apps}:k:` — API key hashes are this stem plus the key's SHA-256. */
  apiKeyStem(): string {
    return `${this.prefix}{apps}:k:`;
  }

  apiKey(hash: string): string {
    return this.apiKeyStem() + hash;
  }

  apiKeyIds(): string {
    return `${this.prefix}{apps}:ki`;
  }

  appApiKeys(appId: string): string {
    return `${this.prefix}{apps}:ka:${appId}`;
  }

  // Scopes and namespaces are encoded so a `:` inside one cannot make two (scope, key) pairs collide;
  // the last component may contain anything.
  idempotency(scope: string, key: string): string {
    return `${this.prefix}i:${encodeURIComponent(scope)}:${key}`;
  }

  counter(key: string, windowStart: number): string {
    return `${this.prefix}q:${windowStart}:${key}`;
  }

  slidingCounter(key: string): string {
    return `${this.prefix}s:${key}`;
  }

  claim(key: string): string {
    return `${this.prefix}c:${key}`;
  }

  record(namespace: string, id: string): string {
    return `${this.recordStem(namespace)}${id}`;
  }

  /** `P r:<namespace>:` — a namespace's records are this stem plus their id (listRecords scans for it). */
  recordStem(namespace: string): string {
    return `${this.prefix}r:${encodeURIComponent(namespace)}:`;
  }

  /** One stream per app: appends of different apps spread over the cluster; one app's log is one slot. */
  auditLog(appId: string): string {
    return `${this.prefix}{audit:${appId}}:log`;
  }

  /**
   * The event queue shares one hash tag, so claiming (read the due set, lease each event) is one script.
   * Webhook events are few next to verifications; the one slot holding them is not a hot spot.
   */
  eventsDue(): string {
    return `${this.prefix}{events}:due`;
  }

  /**
   * A waiting message lives in its verification's slot, so creating or resending a verification writes it
   * in the same script, and a claim reads it together with the verification's state in one script. The due
   * index needs one fixed slot; it is written first (OUTBOX_INDEX), so a crash between the two leaves an
   * index entry without a message (dropped by the claimer), never a message nobody will find.
   */
  outboxStem(group: string): string {
    return `${this.prefix}o:{${group}}:`;
  }

  outboxEntry(reference: string): string {
    const tag = routingTagOfVerificationId(reference);
    return tag === undefined ? `${this.prefix}o:{${reference}}` : this.outboxStem(groupOf(tag)) + reference;
  }

  outboxDue(): string {
    return `${this.prefix}{outbox}:due`;
  }

  outboxMeta(): string {
    return `${this.prefix}{outbox}:meta`;
  }

  eventStem(): string {
    return `${this.prefix}{events}:e:`;
  }

  event(id: string): string {
    return this.eventStem() + id;
  }
}

/** The hash-tag group of a routing tag: its first 3 characters (15 of its 20 bits). */
export function groupOf(tag: string): string {
  return tag.slice(0, 3);
}

/** A literal for a SCAN MATCH pattern: glob characters escaped. */
export function globLiteral(text: string): string {
  return text.replace(/[\\*?[\]]/g, (c) => '\\' + c);
}
