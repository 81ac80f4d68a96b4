import type { Logger } from 'pino';
import { parseDestination } from '../core/destination.js';
import type { RequestContext } from '../core/rate-limits.js';
import type { AppRecord, Store } from '../store/store.js';
import type { AuditService } from './audit.js';
import type { SubjectsService } from './subjects.js';

export interface ErasureReport {
  app: string;
  /** Verifications removed (pending ones included). */
  verifications: number;
  /** Audit entries removed. */
  auditEntries: number;
}

const DAY_MS = 86_400_000;
const DELETE_CHUNK = 500;
/** How often the per-app retention runs in a server. */
const RETENTION_INTERVAL_MS = 3_600_000;

/**
 * Personal data (docs/audit-and-events.md "Personal data"): per-app retention of finished verifications
 * and audit entries, and erasure of everything otpd holds about one person.
 *
 * Erasure removes every verification of the destination (pending ones too: they stop working) and every
 * audit entry about it, then records one `subject.erased` entry holding only the destination's keyed hash
 * and the counts — the fact of the erasure, without the person.
 */
export class PersonalDataService {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly audit: AuditService,
    private readonly subjects: SubjectsService,
    private readonly clock: () => number,
    private readonly logger: Logger,
    /** OTPD_RETENTION_DAYS: the global cleanup's age, the default and the ceiling of per-app retention. */
    private readonly defaultRetentionMs: number,
  ) {}

  /** Erases a destination's data in one app. `to` is normalised as when the verification was created. */
  async eraseDestination(app: AppRecord, to: string, context: RequestContext): Promise<ErasureReport> {
    const destination = parseDestination(to).value;
    // Entries being written right now should be erased too.
    await this.audit.flush();
    const verifications = await this.store.eraseDestination(app.id, destination);
    const ids = await this.audit.idsForDestination(app.id, destination);
    let auditEntries = 0;
    for (let i = 0; i < ids.length; i += DELETE_CHUNK) auditEntries += await this.store.deleteAudit(app.id, ids.slice(i, i + DELETE_CHUNK));
    const hash = this.audit.destinationHash(app.id, destination);
    // The erasure itself is recorded, with the hash only (so a later erasure request can be answered).
    await this.audit.recordNow(app, 'subject.erased', { details: { destinationHash: hash, verifications, auditEntries } }, context);
    this.logger.info({ appId: app.id, verifications, auditEntries }, 'personal data erased');
    return { app: app.name, verifications, auditEntries };
  }

  /**
   * `DELETE /v1/subjects/:id`: the subject's phone number and address are erased as destinations before
   * the subject goes. Nothing happens for an unknown subject (the delete then answers 404).
   */
  async eraseSubject(app: AppRecord, subjectId: string, context: RequestContext): Promise<ErasureReport[]> {
    const subject = await this.subjects.find(app, subjectId);
    if (!subject) return [];
    const reports: ErasureReport[] = [];
    for (const destination of [subject.phone, subject.email]) {
      if (destination) reports.push(await this.eraseDestination(app, destination, context));
    }
    return reports;
  }

  /**
   * Per-app retention: audit entries older than `auditRetentionDays`, and finished verifications older than
   * `verificationRetentionDays` where an app sets one shorter than OTPD_RETENTION_DAYS (the server's
   * global cleanup removes the rest at that age; the Redis store keeps finished verifications only 24 h).
   */
  async applyRetention(): Promise<{ verifications: number; auditEntries: number }> {
    const now = this.clock();
    let verifications = 0;
    let auditEntries = 0;
    for (const app of await this.store.listApps()) {
      const days = app.settings.verificationRetentionDays;
      if (days !== null && days * DAY_MS < this.defaultRetentionMs) verifications += await this.store.purgeVerifications(now - days * DAY_MS, app.id);
      auditEntries += await this.store.purgeAudit(app.id, now - app.settings.auditRetentionDays * DAY_MS);
    }
    return { verifications, auditEntries };
  }

  /** Runs the retention now and then every hour, until `stop` (the HTTP server starts it; CLI commands do not). */
  start(): void {
    if (this.timer) return;
    const run = (): void => {
      if (this.running) return;
      this.running = this.applyRetention()
        .then(
          (removed) => {
            if (removed.verifications + removed.auditEntries > 0) this.logger.info(removed, 'retention cleanup');
          },
          (error: unknown) => this.logger.warn({ err: error }, 'retention cleanup failed'),
        )
        .finally(() => (this.running = undefined));
    };
    this.timer = setInterval(run, RETENTION_INTERVAL_MS);
    this.timer.unref();
    run();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
