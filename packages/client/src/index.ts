/**
 * @otpd/client: a typed client for otpd's native `/v1` API (docs/api.md).
 *
 * - Every method maps to one route and returns that route's JSON, typed.
 * - Errors are RFC 9457 problem documents; they are thrown as `OtpdProblemError` with the problem's
 *   `type`, `title`, `status`, `detail` and field `errors`.
 * - 429 and 503 answers (and a 409 for an Idempotency-Key still in progress) are retried, honouring
 *   `Retry-After`, at most `maxRetries` times and never waiting longer than `maxRetryDelayMs` at once; a
 *   longer `Retry-After` (a cooldown, a spent quota) is thrown at once for the caller to decide.
 * - `verifications.create` sends an Idempotency-Key (generated unless given) and reuses it on its own
 *   retries, so a retry never sends a second code.
 *
 * No dependencies: it uses the platform's `fetch`, `AbortSignal.timeout` and `crypto.randomUUID`, so it
 * runs on Node.js >= 20.19 and in browsers (though an API key belongs on a server, not in a browser).
 */

export type Channel = 'sms' | 'email' | 'voice' | 'whatsapp';
export type VerificationStatus = 'pending' | 'approved' | 'canceled' | 'expired' | 'max_attempts_reached' | 'failed';
export type DeliveryStatus = 'queued' | 'sent' | 'delivered' | 'undelivered' | 'failed';

export interface Verification {
  id: string;
  status: VerificationStatus;
  to: string;
  channel: Channel;
  attempts: number;
  maxAttempts: number;
  sends: number;
  expiresAt: string;
  createdAt: string;
  updatedAt: string;
  delivery: { status: DeliveryStatus; provider: string | null };
  locale: string | null;
  metadata: Record<string, unknown> | null;
}

export interface VerificationCheck extends Verification {
  /** True when the code was right; the verification is then `approved`. */
  valid: boolean;
}

export interface CreateVerificationInput {
  /** E.164 phone number (`+` and 8-15 digits) or an email address. */
  to: string;
  channel?: Channel;
  codeLength?: number;
  /** Seconds the code stays valid. */
  ttl?: number;
  maxAttempts?: number;
  locale?: string;
  metadata?: Record<string, unknown>;
}

export type FactorType = 'totp' | 'hotp';
export type FactorAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';

export interface Factor {
  id: string;
  type: FactorType;
  status: 'unverified' | 'verified';
  account: string;
  issuer: string;
  algorithm: FactorAlgorithm;
  digits: number;
  period: number | null;
  recoveryCodesRemaining: number | null;
  lockedUntil: string | null;
  createdAt: string;
  updatedAt: string;
  verifiedAt: string | null;
}

export interface FactorEnrolment extends Factor {
  /** Base32 without padding; returned only at enrolment. */
  secret: string;
  /** otpauth:// URI (Key Uri Format). */
  uri: string;
  qr: { png: string; svg: string };
}

export interface EnrolFactorInput {
  type: FactorType;
  account: string;
  issuer?: string;
  digits?: number;
  period?: number;
  algorithm?: FactorAlgorithm;
}

export interface FactorCheck {
  valid: boolean;
  status: 'unverified' | 'verified';
  reason?: 'invalid_code' | 'code_reused';
  recoveryCodesRemaining?: number;
}

export interface RecoveryCodes {
  factorId: string;
  codes: string[];
}

export interface Subject {
  id: string;
  phone: string | null;
  email: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface PutSubjectInput {
  phone?: string | null;
  email?: string | null;
}

export interface FieldError {
  field: string;
  message: string;
}

/** An RFC 9457 problem document as otpd sends it; extension members (e.g. `verificationStatus`) included. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

/** An error answer from otpd (or from something in front of it, turned into the same shape). */
export class OtpdProblemError extends Error {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly errors: FieldError[];
  /** The whole problem document, extension members included. */
  readonly problem: Problem;
  /** Seconds from `Retry-After`, when the answer had one. */
  readonly retryAfter: number | undefined;
  /** `X-Request-Id` of the answer: quote it when asking about a failure; the server logs carry it. */
  readonly requestId: string | undefined;

  constructor(problem: Problem, retryAfter: number | undefined, requestId: string | undefined) {
    super(`${problem.status} ${problem.title}: ${problem.detail}`);
    this.name = 'OtpdProblemError';
    this.type = problem.type;
    this.title = problem.title;
    this.status = problem.status;
    this.detail = problem.detail;
    this.errors = problem.errors ?? [];
    this.problem = problem;
    this.retryAfter = retryAfter;
    this.requestId = requestId;
  }

  /** The problem's code as otpd names it: `urn:otpd:problem:not-pending` → `not-pending`. */
  get code(): string {
    return this.type.startsWith('urn:otpd:problem:') ? this.type.slice('urn:otpd:problem:'.length) : this.type;
  }
}

/** The request never got an answer (connection refused or reset, timeout) after every allowed try. */
export class OtpdConnectionError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'OtpdConnectionError';
  }
}

export interface OtpdClientOptions {
  /** otpd's base URL, e.g. `http://127.0.0.1:8080` (a path prefix is kept). */
  baseUrl: string;
  apiKey: string;
  /** Retries after the first try (default 3). */
  maxRetries?: number;
  /** Longest single wait before a retry, in ms (default 10 000); a longer Retry-After is not waited for. */
  maxRetryDelayMs?: number;
  /** Wait before the first retry when the answer has no Retry-After, doubled each time (default 250 ms). */
  retryBaseDelayMs?: number;
  /** Per-try timeout in ms (default 10 000). */
  timeoutMs?: number;
  /** Another fetch (a proxy agent, tests); default the global one. */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  /** Cancels the call, its retries and waits included. */
  signal?: AbortSignal;
}

export interface CreateOptions extends RequestOptions {
  /** Default: a random UUID per call, reused by this call's retries. */
  idempotencyKey?: string;
}

interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Whether repeating the request after a lost answer is harmless (GET, PUT, a create with its key). */
  repeatable: boolean;
  signal?: AbortSignal | undefined;
}

/** Problem types worth retrying besides 429/503: the first request with this key is still running. */
const RETRYABLE_TYPES = new Set(['urn:otpd:problem:idempotency-in-progress']);

function segment(id: string): string {
  if (typeof id !== 'string' || id.length === 0) throw new TypeError('id must be a non-empty string');
  return encodeURIComponent(id);
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

async function problemFrom(response: Response): Promise<Problem> {
  const text = await response.text();
  try {
    const parsed = JSON.parse(text) as Partial<Problem>;
    if (parsed && typeof parsed === 'object' && typeof parsed.type === 'string' && typeof parsed.status === 'number') {
      return { ...parsed, title: parsed.title ?? response.statusText, detail: parsed.detail ?? parsed.title ?? response.statusText } as Problem;
    }
  } catch {
    // Not JSON: a proxy's or load balancer's page. Described below in the same shape.
  }
  return { type: 'about:blank', title: response.statusText || `HTTP ${response.status}`, status: response.status, detail: text.slice(0, 200) || `HTTP ${response.status} without a body` };
}

export class OtpdClient {
  private readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly maxRetries: number;
  private readonly maxRetryDelayMs: number;
  private readonly retryBaseDelayMs: number;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: OtpdClientOptions) {
    if (!options || typeof options.baseUrl !== 'string' || !/^https?:\/\//.test(options.baseUrl)) throw new TypeError('baseUrl must be an http:// or https:// URL');
    if (typeof options.apiKey !== 'string' || options.apiKey.length === 0) throw new TypeError('apiKey is required');
    const bounded = (value: number | undefined, fallback: number, name: string, max: number) => {
      const chosen = value ?? fallback;
      if (!Number.isInteger(chosen) || chosen < 0 || chosen > max) throw new RangeError(`${name} must be an integer from 0 to ${max}`);
      return chosen;
    };
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.maxRetries = bounded(options.maxRetries, 3, 'maxRetries', 10);
    this.maxRetryDelayMs = bounded(options.maxRetryDelayMs, 10_000, 'maxRetryDelayMs', 300_000);
    this.retryBaseDelayMs = bounded(options.retryBaseDelayMs, 250, 'retryBaseDelayMs', 60_000);
    this.timeoutMs = bounded(options.timeoutMs, 10_000, 'timeoutMs', 600_000);
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  readonly verifications = {
    /** Sends a code. Retries reuse one Idempotency-Key, so at most one code is sent. */
    create: (input: CreateVerificationInput, options: CreateOptions = {}): Promise<Verification> =>
      this.call({
        method: 'POST',
        path: '/v1/verifications',
        body: input,
        headers: { 'idempotency-key': options.idempotencyKey ?? globalThis.crypto.randomUUID() },
        repeatable: true,
        signal: options.signal,
      }),
    get: (id: string, options: RequestOptions = {}): Promise<Verification> => this.call({ method: 'GET', path: `/v1/verifications/${segment(id)}`, repeatable: true, signal: options.signal }),
    /** A wrong code counts as an attempt, so a check whose answer was lost is not sent again. */
    check: (id: string, code: string, options: RequestOptions = {}): Promise<VerificationCheck> =>
      this.call({ method: 'POST', path: `/v1/verifications/${segment(id)}/check`, body: { code }, repeatable: false, signal: options.signal }),
    checkByDestination: (to: string, code: string, options: RequestOptions = {}): Promise<VerificationCheck> =>
      this.call({ method: 'POST', path: '/v1/verifications/check', body: { to, code }, repeatable: false, signal: options.signal }),
    resend: (id: string, options: RequestOptions = {}): Promise<Verification> => this.call({ method: 'POST', path: `/v1/verifications/${segment(id)}/resend`, repeatable: false, signal: options.signal }),
    cancel: (id: string, options: RequestOptions = {}): Promise<Verification> => this.call({ method: 'POST', path: `/v1/verifications/${segment(id)}/cancel`, repeatable: false, signal: options.signal }),
  };

  readonly factors = {
    /** Returns the secret, URI and QR code once; store nothing of it but the factor id. */
    enrol: (input: EnrolFactorInput, options: RequestOptions = {}): Promise<FactorEnrolment> => this.call({ method: 'POST', path: '/v1/factors', body: input, repeatable: false, signal: options.signal }),
    get: (id: string, options: RequestOptions = {}): Promise<Factor> => this.call({ method: 'GET', path: `/v1/factors/${segment(id)}`, repeatable: true, signal: options.signal }),
    delete: async (id: string, options: RequestOptions = {}): Promise<void> => {
      await this.call({ method: 'DELETE', path: `/v1/factors/${segment(id)}`, repeatable: false, signal: options.signal });
    },
    verify: (id: string, code: string, options: RequestOptions = {}): Promise<FactorCheck> => this.call({ method: 'POST', path: `/v1/factors/${segment(id)}/verify`, body: { code }, repeatable: false, signal: options.signal }),
    /** A new set of recovery codes (the previous set stops working); shown only in this answer. */
    issueRecoveryCodes: (id: string, options: RequestOptions = {}): Promise<RecoveryCodes> =>
      this.call({ method: 'POST', path: `/v1/factors/${segment(id)}/recovery-codes`, repeatable: false, signal: options.signal }),
  };

  readonly subjects = {
    /** Replaces the subject's contact points (creates it when new). */
    put: (id: string, input: PutSubjectInput, options: RequestOptions = {}): Promise<Subject> => this.call({ method: 'PUT', path: `/v1/subjects/${segment(id)}`, body: input, repeatable: true, signal: options.signal }),
    get: (id: string, options: RequestOptions = {}): Promise<Subject> => this.call({ method: 'GET', path: `/v1/subjects/${segment(id)}`, repeatable: true, signal: options.signal }),
    delete: async (id: string, options: RequestOptions = {}): Promise<void> => {
      await this.call({ method: 'DELETE', path: `/v1/subjects/${segment(id)}`, repeatable: false, signal: options.signal });
    },
  };

  /** Wait before retry number `retry` (0-based): Retry-After when given, else exponential with full jitter. */
  private delayFor(retry: number, retryAfter: number | undefined): number {
    if (retryAfter !== undefined) return retryAfter * 1000;
    return Math.min(this.maxRetryDelayMs, Math.round(Math.random() * this.retryBaseDelayMs * 2 ** retry));
  }

  private async call<T>(call: Call): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json', authorization: `Bearer ${this.apiKey}`, ...call.headers };
    let payload: string | undefined;
    if (call.body !== undefined) {
      payload = JSON.stringify(call.body);
      headers['content-type'] = 'application/json';
    }
    for (let retry = 0; ; retry++) {
      const signals = [AbortSignal.timeout(this.timeoutMs), ...(call.signal ? [call.signal] : [])];
      let response: Response;
      try {
        response = await this.fetchImpl(this.baseUrl + call.path, { method: call.method, headers, body: payload, signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0] });
      } catch (error) {
        if (call.signal?.aborted) throw call.signal.reason;
        if (call.repeatable && retry < this.maxRetries) {
          await sleep(this.delayFor(retry, undefined), call.signal);
          continue;
        }
        throw new OtpdConnectionError(`${call.method} ${call.path}: no answer from otpd (${error instanceof Error ? error.message : String(error)})`, { cause: error });
      }
      if (response.ok) {
        if (response.status === 204) return undefined as T;
        return (await response.json()) as T;
      }
      const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
      const problem = await problemFrom(response);
      const retryable = response.status === 429 || response.status === 503 || RETRYABLE_TYPES.has(problem.type);
      const delay = this.delayFor(retry, retryAfter);
      if (retryable && retry < this.maxRetries && delay <= this.maxRetryDelayMs) {
        await sleep(delay, call.signal);
        continue;
      }
      throw new OtpdProblemError(problem, retryAfter, response.headers.get('x-request-id') ?? undefined);
    }
  }
}
