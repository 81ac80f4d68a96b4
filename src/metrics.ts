import cluster from 'node:cluster';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { CheckOutcome, VerificationRecord } from './core/verification.js';
import type { Delivery } from './delivery/index.js';
import type { DeliveryUpdate } from './store/store.js';

/**
 * Prometheus metrics of one otpd process (docs/observability.md lists every series). Services, the store
 * proxy (src/store/instrumented.ts) and the HTTP hooks (src/http/metrics-route.ts) increment the named
 * instruments below; nothing else registers metrics, so the names stay in one place.
 *
 * Each instance has its own registry (never prom-client's global one), so several servers in one test
 * process do not share counts.
 */
export interface MetricsOptions {
  /** Process metrics (CPU, memory, GC, event-loop lag). Off for throwaway instances, on for servers. */
  defaultMetrics?: boolean;
  /**
   * When set, `GET /metrics` requires `Authorization: Bearer TOKEN` (OTPD_METRICS_TOKEN). It lives here,
   * beside the registry it guards, because the route is built from the services alone.
   */
  bearerToken?: string | undefined;
}

/** Buckets in seconds for fast local work (store calls, HTTP answers): 0.5 ms to 5 s. */
const FAST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Buckets in seconds for calls to outside providers: 10 ms to 60 s. */
const PROVIDER_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  readonly registry = new Registry();
  readonly bearerToken: string | undefined;

  readonly httpRequests = new Counter({ name: 'otpd_http_requests_total', help: 'HTTP requests answered, by method, route pattern and status code', labelNames: ['method', 'route', 'status'] as const, registers: [this.registry] });
  readonly httpDuration = new Histogram({ name: 'otpd_http_request_duration_seconds', help: 'Time to answer an HTTP request, by method and route pattern', labelNames: ['method', 'route'] as const, buckets: FAST_BUCKETS, registers: [this.registry] });

  readonly verifications = new Counter({ name: 'otpd_verifications_total', help: 'Verifications that entered a status (pending on create, then approved, canceled, max_attempts_reached, expired or failed), by channel', labelNames: ['status', 'channel'] as const, registers: [this.registry] });
  readonly checks = new Counter({ name: 'otpd_verification_checks_total', help: 'Code checks, by outcome (approved, wrong, expired, locked, not_pending) and channel', labelNames: ['outcome', 'channel'] as const, registers: [this.registry] });
  readonly resends = new Counter({ name: 'otpd_verification_resends_total', help: 'Codes sent again for an existing verification, by channel', labelNames: ['channel'] as const, registers: [this.registry] });

  readonly deliveries = new Counter({ name: 'otpd_deliveries_total', help: 'Delivery status reports (provider answers and later receipts), by provider and status', labelNames: ['provider', 'status'] as const, registers: [this.registry] });
  readonly providerLatency = new Histogram({ name: 'otpd_provider_latency_seconds', help: 'Time of one provider call (each failover step is a call), by provider and its answer', labelNames: ['provider', 'status'] as const, buckets: PROVIDER_BUCKETS, registers: [this.registry] });

  /** Incremented by the HTTP layer for every rate-limit error, and by any code that refuses for a limit without throwing. */
  readonly rateLimitHits = new Counter({ name: 'otpd_rate_limit_hits_total', help: 'Requests refused by a limit (quota, cooldown, send or attempt limits), by limit', labelNames: ['limit'] as const, registers: [this.registry] });

  readonly storeDuration = new Histogram({ name: 'otpd_store_operation_duration_seconds', help: 'Time of a store call, by backend and operation', labelNames: ['backend', 'operation'] as const, buckets: FAST_BUCKETS, registers: [this.registry] });
  readonly storeErrors = new Counter({ name: 'otpd_store_errors_total', help: 'Store calls that failed, by backend and operation', labelNames: ['backend', 'operation'] as const, registers: [this.registry] });

  constructor(options: MetricsOptions = {}) {
    this.bearerToken = options.bearerToken;
    if (options.defaultMetrics) {
      // Includes nodejs_eventloop_lag_seconds and its percentiles (perf_hooks.monitorEventLoopDelay).
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
    }
    if (cluster.isWorker) {
      // Under `otpd serve --workers N` the primary aggregates every worker's registry (see clusterMetrics);
      // constructing an AggregatorRegistry in a worker installs prom-client's answer to the primary's request.
      AggregatorRegistry.setRegistries([this.registry]);
      new AggregatorRegistry();
    }
  }

  /** One decided check: its outcome, and the status the verification entered because of it, if any. */
  recordCheck(outcome: CheckOutcome, verification: Pick<VerificationRecord, 'status' | 'channel'>): void {
    this.checks.inc({ outcome, channel: verification.channel });
    // `not_pending` changes nothing; every other outcome that ends the verification is a transition.
    if (outcome !== 'not_pending' && verification.status !== 'pending') this.verifications.inc({ status: verification.status, channel: verification.channel });
  }

  /** One delivery report, and the verification's move to `failed` when every provider gave up. */
  recordDelivery(update: DeliveryUpdate, verification: Pick<VerificationRecord, 'status' | 'channel' | 'deliveryProvider'> | undefined): void {
    // A receipt names no provider: it is the one the verification's message went through.
    this.deliveries.inc({ provider: update.provider ?? verification?.deliveryProvider ?? 'none', status: update.status });
    if (update.failVerification && verification?.status === 'failed') this.verifications.inc({ status: 'failed', channel: verification.channel });
  }

  /** The exposition text of this process, or of every worker summed when running under the cluster primary. */
  async scrape(): Promise<string> {
    return cluster.isWorker && process.send ? askPrimaryForMetrics() : this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

// --- cluster aggregation ----------------------------------------------------------------------------

const REQUEST = 'otpd:metrics:request';
const RESPONSE = 'otpd:metrics:response';
/** prom-client's own wait for workers is 5 s; the worker waits a little longer for the primary's answer. */
const WORKER_WAIT_MS = 6_000;

interface MetricsMessage {
  type: string;
  id: number;
  text?: string;
  error?: string;
}

let nextRequest = 0;

/**
 * A worker cannot see its siblings' counters and a scrape reaches any one worker, so the worker asks the
 * primary, which collects every worker's registry over IPC and sums them (prom-client AggregatorRegistry).
 */
function askPrimaryForMetrics(): Promise<string> {
  const id = nextRequest++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      reject(new Error(`the cluster primary did not answer a metrics request within ${WORKER_WAIT_MS} ms`));
    }, WORKER_WAIT_MS);
    const onMessage = (message: unknown) => {
      const reply = message as MetricsMessage;
      if (reply?.type !== RESPONSE || reply.id !== id) return;
      clearTimeout(timer);
      process.off('message', onMessage);
      if (reply.error !== undefined) reject(new Error(reply.error));
      else resolve(reply.text ?? '');
    };
    process.on('message', onMessage);
    process.send!({ type: REQUEST, id } satisfies MetricsMessage);
  });
}

/** Called once in the `--workers` primary: answers workers' metrics requests with the sum over all workers. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: MetricsMessage) => {
    if (message?.type !== REQUEST) return;
    aggregator.clusterMetrics().then(
      (text) => worker.isConnected() && worker.send({ type: RESPONSE, id: message.id, text } satisfies MetricsMessage),
      (error: Error) => worker.isConnected() && worker.send({ type: RESPONSE, id: message.id, error: error.message } satisfies MetricsMessage),
    );
  });
}

// --- delivery timing ---------------------------------------------------------------------------------

/**
 * Times every provider call of the outbox worker (src/delivery/outbox-worker.ts) into
 * `otpd_provider_latency_seconds{provider, status}`: one observation per call, failover steps included,
 * with the provider's answer (`sent`, `delivered`, or `failed`). Receipts that arrive later through
 * provider callbacks are not provider calls and are not timed here.
 */
export function timedDelivery(metrics: Metrics, delivery: Delivery): Delivery {
  delivery.onProviderCall((provider, status, seconds) => metrics.providerLatency.observe({ provider, status }, seconds));
  return delivery;
}
