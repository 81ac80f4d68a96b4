import { appendFile } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { CHANNELS } from '../core/destination.js';
import type { DeliveryProvider, OutboundMessage, SendResult } from './provider.js';

/**
 * Development outbox (`OTPD_DEV_OUTBOX=/path/file.jsonl`): every message is appended as one JSON line,
 * `{"verificationId","channel","to","code","message","at"}` (plus `messageId`, `subject`, and `segments` and
 * `encoding` for SMS), so scripts and tests can read codes.
 * Refused in production by config validation.
 */
export class DevOutboxProvider implements DeliveryProvider {
  readonly name = 'dev-outbox';
  readonly channels = CHANNELS;

  constructor(private readonly file: string) {
    mkdirSync(dirname(file), { recursive: true });
  }

  async send(message: OutboundMessage): Promise<SendResult> {
    const line = JSON.stringify({
      verificationId: message.verificationId,
      channel: message.channel,
      to: message.to,
      code: message.code,
      message: message.text,
      at: new Date().toISOString(),
      ...(message.messageId ? { messageId: message.messageId } : {}),
      subject: message.subject,
      ...(message.segments ? { segments: message.segments.segments, encoding: message.segments.encoding } : {}),
    });
    await appendFile(this.file, line + '\n', { mode: 0o600 });
    return { status: 'delivered', providerMessageId: `dev-${message.verificationId}-${Date.now()}` };
  }
}
