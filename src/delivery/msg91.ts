import { constantTimeEqual } from '../core/codes.js';
import type { DeliveryStatus } from '../core/verification.js';
import { isTransientStatus, joinUrl, providerFetch, shortReason } from './http.js';
import { fillPlaceholders } from './templates.js';
import {
  CallbackAuthError,
  DeliveryError,
  type CallbackRequest,
  type DeliveryProvider,
  type OutboundMessage,
  type Receipt,
  type ReceiptHandler,
  type SendResult,
} from './provider.js';

export interface Msg91Config {
  type: 'msg91';
  authKey: string;
  /** The approved (DLT) template the SMS is sent with; MSG91 fills its `##VAR##` variables. */
  templateId: string;
  /** Variable name → value with otpd placeholders, e.g. `{ OTP: '{code}', APP: '{app}' }`. */
  variables: Record<string, string>;
  sender?: string;
  /** Token in the delivery-report URL configured in the MSG91 panel; receipts are refused without one. */
  callbackToken?: string;
  baseUrl: string;
  timeoutMs: number;
}

/**
 * MSG91 (https://docs.msg91.com): SMS through the Flow API, `POST /api/v5/flow` with the `authkey` header and
 * `{template_id, sender, recipients: [{mobiles, VAR: value…}]}`; it answers `{"type":"success","message":
 * REQUEST_ID}` or `{"type":"error","message":…}`. The text itself is the registered template (as Indian DLT
 * rules require), so otpd's templates only fill its variables. Delivery reports go to one webhook URL set in
 * the panel, as a form field `data` holding a JSON array (v2) or a JSON object per report (v3); MSG91 signs
 * neither, so the URL carries a secret token (decisions 8).
 */
export class Msg91Provider implements DeliveryProvider {
  readonly channels = ['sms'] as const;
  readonly receipts: ReceiptHandler;

  constructor(
    readonly name: string,
    private readonly config: Msg91Config,
  ) {
    this.receipts = {
      authenticate: (request) => {
        const token = request.query.token;
        if (!config.callbackToken || !token || !constantTimeEqual(token, config.callbackToken)) throw new CallbackAuthError(`${name}: missing or wrong token`);
      },
      parse: (request) => parseMsg91Reports(request),
    };
  }

  async send(message: OutboundMessage): Promise<SendResult> {
    const values = { code: message.code, app: message.appName, minutes: String(message.minutes ?? ''), link: message.link ?? '' };
    const recipient: Record<string, string> = { mobiles: message.to.replace(/^\+/, '') };
    for (const [variable, template] of Object.entries(this.config.variables)) {
      recipient[variable] = fillPlaceholders(template, values);
    }
    const body: Record<string, unknown> = { template_id: this.config.templateId, short_url: '0', recipients: [recipient] };
    if (this.config.sender) body.sender = this.config.sender;
    if (message.segments?.encoding === 'UCS-2') body.unicode = 1;
    const response = await providerFetch(
      this.name,
      joinUrl(this.config.baseUrl, '/api/v5/flow'),
      { method: 'POST', headers: { authkey: this.config.authKey, 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body) },
      { timeoutMs: this.config.timeoutMs },
    );
    const answer = (response.json ?? {}) as { type?: unknown; message?: unknown };
    if (response.status < 200 || response.status >= 300) {
      throw new DeliveryError(`${this.name}: HTTP ${response.status}${response.text ? ` (${shortReason(response.text)})` : ''}`, isTransientStatus(response.status));
    }
    if (answer.type !== 'success' || typeof answer.message !== 'string' || answer.message === '') {
      throw new DeliveryError(`${this.name}: ${typeof answer.message === 'string' ? shortReason(answer.message) : 'unexpected answer'}`, false);
    }
    return { status: 'sent', providerMessageId: answer.message };
  }
}

const NUMERIC_STATUS: Record<string, DeliveryStatus> = {
  '1': 'delivered',
  '2': 'failed',
  '9': 'undelivered',
  '16': 'failed',
  '17': 'undelivered',
  '25': 'failed',
};

const WORD_STATUS: Record<string, DeliveryStatus> = {
  delivered: 'delivered',
  failed: 'failed',
  rejected: 'failed',
  undelivered: 'undelivered',
  ndnc: 'undelivered',
  blocked: 'undelivered',
  sent: 'sent',
};

function statusOf(status: unknown, desc: unknown): DeliveryStatus | undefined {
  const text = String(status ?? '').trim();
  return NUMERIC_STATUS[text] ?? WORD_STATUS[text.toLowerCase()] ?? WORD_STATUS[String(desc ?? '').trim().toLowerCase()];
}

function receipt(requestId: unknown, status: unknown, desc: unknown, reason: unknown): Receipt | undefined {
  if (typeof requestId !== 'string' || requestId === '') return undefined;
  const mapped = statusOf(status, desc);
  if (!mapped) return undefined;
  const detail = [desc, reason].filter((part) => typeof part === 'string' && part !== '').join(': ');
  return { providerMessageId: requestId, status: mapped, failureReason: mapped === 'delivered' || mapped === 'sent' ? null : `msg91 ${detail || String(status)}` };
}

/** Reads every report a callback carries, in any of MSG91's webhook versions. */
function parseMsg91Reports(request: CallbackRequest): Receipt[] {
  let entries: unknown = request.json;
  if (request.form?.data !== undefined) {
    try {
      entries = JSON.parse(request.form.data);
    } catch {
      return [];
    }
  }
  const list = Array.isArray(entries) ? entries : entries && typeof entries === 'object' ? [entries] : [];
  const out: Receipt[] = [];
  for (const entry of list as Array<Record<string, unknown>>) {
    if (!entry || typeof entry !== 'object') continue;
    if (Array.isArray(entry.report)) {
      for (const report of entry.report as Array<Record<string, unknown>>) {
        const found = receipt(entry.requestId, report.status, report.desc, report.failedReason);
        if (found) out.push(found);
      }
    } else {
      const found = receipt(entry.requestId, entry.status, entry.desc ?? entry.description, entry.failureReason ?? entry.failedReason);
      if (found) out.push(found);
    }
  }
  return out;
}
