import type { Logger } from 'pino';
import type { Keyring } from '../core/keyring.js';
import { isOtpdError } from '../errors.js';
import type { Store } from '../store/store.js';
import { allRecords } from './all-records.js';

/**
 * How to re-encrypt one kind of stored record under the keyring's current key. The service that owns a
 * record format declares it (factors, app credentials, webhook secrets), so rotation never needs to know
 * what is inside a record.
 */
export interface RecordRewrap<T = any> {
  namespace: string;
  /**
   * The record with every keyring ciphertext re-encrypted under `keyring.currentKid`, or undefined when it
   * holds none under another key. Throws SECRET_MISMATCH when a ciphertext's key is not configured.
   */
  rewrap(value: T, id: string, keyring: Keyring): T | undefined;
  /**
   * Keyed hashes in the record that cannot be re-made without their plaintext (e.g. recovery-code hashes):
   * how many there are under another key id. They stop working once that key is no longer configured.
   */
  staleHashes?(value: T, keyring: Keyring): number;
}

export interface NamespaceReport {
  namespace: string;
  /** Records examined. */
  scanned: number;
  /** Re-encrypted under the current key (or, with `dryRun`, that would be). */
  rewrapped: number;
  /** Already under the current key. */
  current: number;
  /** Under a key neither OTPD_SECRET nor OTPD_SECRET_PREVIOUS is (left as they are). */
  failed: number;
  /** Keyed hashes that cannot be re-made (see `staleHashes`). */
  staleHashes: number;
  /** Ids of the first failed records, for the operator to look at. */
  failedIds: string[];
}

export interface RotationReport {
  currentKid: string;
  previousKids: string[];
  dryRun: boolean;
  namespaces: NamespaceReport[];
}

const PAGE = 200;
const MAX_CAS_ROUNDS = 5;
const MAX_FAILED_IDS = 20;

/**
 * `otpd secrets rotate`: run with OTPD_SECRET = the new secret and OTPD_SECRET_PREVIOUS = the old one — the
 * configuration every server already reads during a rotation (docs/security.md "Secrets and rotation").
 * Pages through each registered namespace and rewrites every record whose ciphertexts are under another key,
 * with compare-and-set: a record a server changes meanwhile is read again and re-wrapped again, so servers
 * keep running throughout. Idempotent: a second run finds nothing to do.
 */
export class SecretsRotationService {
  private readonly rewraps = new Map<string, RecordRewrap>();

  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly clock: () => number,
    private readonly logger: Logger,
  ) {}

  register(rewrap: RecordRewrap): void {
    if (this.rewraps.has(rewrap.namespace)) throw new Error(`a re-wrap for namespace ${rewrap.namespace} is already registered`);
    this.rewraps.set(rewrap.namespace, rewrap);
  }

  get namespaces(): string[] {
    return [...this.rewraps.keys()];
  }

  async rotate(options: { dryRun?: boolean } = {}): Promise<RotationReport> {
    const report: RotationReport = {
      currentKid: this.keyring.currentKid,
      previousKids: this.keyring.kids.filter((kid) => kid !== this.keyring.currentKid),
      dryRun: options.dryRun ?? false,
      namespaces: [],
    };
    for (const rewrap of this.rewraps.values()) report.namespaces.push(await this.rotateNamespace(rewrap, report.dryRun));
    return report;
  }

  private async rotateNamespace(rewrap: RecordRewrap, dryRun: boolean): Promise<NamespaceReport> {
    const out: NamespaceReport = { namespace: rewrap.namespace, scanned: 0, rewrapped: 0, current: 0, failed: 0, staleHashes: 0, failedIds: [] };
    for await (const item of allRecords<unknown>(this.store, rewrap.namespace, PAGE, this.clock)) {
      out.scanned++;
      const result = await this.rotateRecord(rewrap, item, dryRun);
      out[result.outcome]++;
      out.staleHashes += result.staleHashes;
      if (result.outcome === 'failed' && out.failedIds.length < MAX_FAILED_IDS) out.failedIds.push(item.id);
    }
    this.logger.info({ namespace: rewrap.namespace, scanned: out.scanned, rewrapped: out.rewrapped, failed: out.failed }, 'secrets rotation');
    return out;
  }

  private async rotateRecord(
    rewrap: RecordRewrap,
    first: { id: string; value: unknown; version: number; expiresAt: number | null },
    dryRun: boolean,
  ): Promise<{ outcome: 'rewrapped' | 'current' | 'failed'; staleHashes: number }> {
    let item: typeof first | undefined = first;
    for (let round = 0; round < MAX_CAS_ROUNDS && item; round++) {
      let next: unknown;
      try {
        next = rewrap.rewrap(item.value, item.id, this.keyring);
      } catch (error) {
        if (!isOtpdError(error, 'SECRET_MISMATCH')) throw error;
        return { outcome: 'failed', staleHashes: 0 };
      }
      const staleHashes = rewrap.staleHashes?.(next ?? item.value, this.keyring) ?? 0;
      if (next === undefined) return { outcome: 'current', staleHashes };
      if (dryRun) return { outcome: 'rewrapped', staleHashes };
      const now = this.clock();
      // The record keeps its expiry; one whose expiry passed meanwhile is left to go.
      if (item.expiresAt !== null && item.expiresAt <= now) return { outcome: 'current', staleHashes: 0 };
      const ttl = item.expiresAt === null ? {} : { ttlMs: item.expiresAt - now };
      const written = await this.store.putRecord(rewrap.namespace, item.id, next, { ifVersion: item.version, ...ttl }, now);
      if (written !== undefined) return { outcome: 'rewrapped', staleHashes };
      // Changed by a server meanwhile: re-wrap what it wrote.
      const fresh: { value: unknown; version: number } | undefined = await this.store.getRecord<unknown>(rewrap.namespace, item.id, now);
      item = fresh && { id: item.id, value: fresh.value, version: fresh.version, expiresAt: item.expiresAt };
    }
    if (!item) return { outcome: 'current', staleHashes: 0 };
    this.logger.warn({ namespace: rewrap.namespace, id: first.id }, 'record kept changing during rotation; run the rotation again');
    return { outcome: 'failed', staleHashes: 0 };
  }
}
