import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { Keyring } from '../core/keyring.js';
import { createDelivery, type Delivery } from '../delivery/index.js';
import { Metrics, timedDelivery } from '../metrics.js';
import { instrumentStore } from '../store/instrumented.js';
import type { Store } from '../store/store.js';
import { APP_CREDENTIALS_REWRAP, AppsService } from './apps.js';
import { AuditedAppsService, AuditService } from './audit.js';
import { PersonalDataService } from './erasure.js';
import { EventsService, WEBHOOK_SECRET_RECORDS, WEBHOOK_SECRET_REWRAP } from './events.js';
import { FACTOR_RECORDS, FACTOR_REWRAP, FactorsService } from './factors.js';
import { HostedPageService } from './hosted-page.js';
import { NamedVerificationsService } from './named-verifications.js';
import { PartnerService } from './partner.js';
import { PartnerTokenService } from './partner-token.js';
import { ReceiptsService } from './receipts.js';
import { SecretsRotationService } from './secrets-rotation.js';
import { SUBJECT_RECORDS, SubjectsService } from './subjects.js';
import { TimeWindowService } from './time-window.js';
import { UserOtpService } from './user-otp.js';
import { VerificationsService } from './verifications.js';

/** Everything a route may call. Routes get this object and nothing below it. */
export interface Services {
  apps: AppsService;
  verifications: VerificationsService;
  factors: FactorsService;
  /** Verifications under client-chosen ids (seed 002) and the hosted page over them. */
  namedVerifications: NamedVerificationsService;
  hostedPage: HostedPageService;
  /** An app's users and their contact points (native /v1/subjects; seed 000 sends to them). */
  subjects: SubjectsService;
  /** Seed 001: derived time-window codes. */
  timeWindow: TimeWindowService;
  /** Seed 003: OTPs remembered per caller-chosen user id. */
  userOtp: UserOtpService;
  /** Seed 000: partner tokens and signed OTP requests. */
  partnerTokens: PartnerTokenService;
  partner: PartnerService;
  /** Prometheus instruments of this process (GET /metrics). */
  metrics: Metrics;
  /** The outbox worker, delivery providers, their status callbacks and config reloads (src/delivery). */
  delivery: Delivery;
  /** The audit log (docs/audit-and-events.md). */
  audit: AuditService;
  /** Webhook events: their queue, worker and secrets. */
  events: EventsService;
  /** Signed approval receipts and the JWKS that verifies them. */
  receipts: ReceiptsService;
  /** Per-app retention and erasure of a person's data. */
  personalData: PersonalDataService;
  /** `otpd secrets rotate`: re-encrypts stored ciphertexts under the current key. */
  secretsRotation: SecretsRotationService;
  /** Work a server runs besides answering requests (webhook delivery, retention); CLI commands do not start it. */
  background: { start(): void; stop(): Promise<void> };
  /** Answers when the store does; rejects with STORE_UNAVAILABLE otherwise. */
  health(): Promise<void>;
  /** Sends what the outbox holds due now and waits for sends in flight (bounded); a later create starts the worker again. */
  drain(): Promise<void>;
}

export interface ServiceDependencies {
  config: Config;
  store: Store;
  keyring: Keyring;
  logger: Logger;
  clock?: () => number;
  /** Created from the config when not given. */
  metrics?: Metrics;
}

export function createServices(deps: ServiceDependencies): Services {
  const clock = deps.clock ?? Date.now;
  const metrics = deps.metrics ?? new Metrics({ defaultMetrics: true, bearerToken: deps.config.metricsToken });
  // Every service below sees the timed store (otpd_store_operation_duration_seconds).
  deps = { ...deps, store: instrumentStore(deps.store, metrics) };
  let verifications: VerificationsService | undefined;
  const store = deps.store;
  const delivery: Delivery = createDelivery(
    deps.config,
    store,
    deps.keyring,
    {
      app: (appId) => apps.byId(appId),
      report: (appId, id, update, sent) => verifications!.recordDeliveryStatus(appId, id, update, sent),
    },
    clock,
    deps.logger,
  );
  timedDelivery(metrics, delivery);
  const events = new EventsService(deps.store, deps.keyring, clock, deps.logger, { retryScheduleMs: deps.config.webhookRetryScheduleMs, timeoutMs: deps.config.webhookTimeoutMs });
  const audit = new AuditService(deps.store, deps.keyring, clock, deps.logger, events);
  verifications = new VerificationsService(deps.store, deps.keyring, delivery, clock, deps.logger, metrics, audit);
  const apps: AppsService = new AuditedAppsService(deps.store, deps.keyring, clock, deps.config.production).auditWith(audit);
  apps.deletesWithApp(SUBJECT_RECORDS, ...FACTOR_RECORDS, WEBHOOK_SECRET_RECORDS);
  const subjects = new SubjectsService(deps.store, clock);
  const personalData = new PersonalDataService(deps.store, audit, subjects, clock, deps.logger, deps.config.retentionMs);
  const secretsRotation = new SecretsRotationService(deps.store, deps.keyring, clock, deps.logger);
  for (const rewrap of [FACTOR_REWRAP, APP_CREDENTIALS_REWRAP, WEBHOOK_SECRET_REWRAP]) secretsRotation.register(rewrap);
  const partnerTokens = new PartnerTokenService(apps, deps.keyring, clock);
  const namedVerifications = new NamedVerificationsService(deps.store, verifications, clock);
  return {
    apps,
    namedVerifications,
    hostedPage: new HostedPageService(apps, namedVerifications, deps.keyring, clock),
    verifications,
    factors: new FactorsService(deps.store, deps.keyring, clock, deps.logger, audit),
    subjects,
    timeWindow: new TimeWindowService(deps.store, deps.keyring, verifications, clock),
    userOtp: new UserOtpService(deps.store, verifications, clock),
    partnerTokens,
    partner: new PartnerService(deps.store, apps, partnerTokens, subjects, verifications, clock),
    metrics,
    audit,
    events,
    receipts: new ReceiptsService(deps.keyring, clock),
    personalData,
    secretsRotation,
    background: {
      start: () => {
        events.start();
        personalData.start();
      },
      stop: async () => {
        await Promise.all([events.stop(), personalData.stop()]);
        await audit.flush();
      },
    },
    health: () => deps.store.ping(),
    delivery,
    drain: () => delivery.drain(),
  };
}

export function keyringFrom(config: Config): Keyring {
  return new Keyring(config.secret, config.previousSecret);
}
