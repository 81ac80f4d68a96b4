import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import { DeliveryError, type DeliveryProvider, type OutboundMessage, type SendResult } from './provider.js';
import { shortReason } from './http.js';

export interface SmtpConfig {
  type: 'smtp';
  host: string;
  port: number;
  /** Implicit TLS from the first byte (port 465); otherwise STARTTLS is used when the server offers it. */
  secure: boolean;
  /** Refuse to send unless the connection is upgraded with STARTTLS. */
  requireTLS: boolean;
  /** Check the server's certificate (on by default; off only for a test server with a self-signed one). */
  rejectUnauthorized: boolean;
  auth?: { user: string; pass: string };
  /** The From header: an address, or `"Name" <address>`. */
  from: string;
  timeoutMs: number;
}

/** Error codes of nodemailer's SMTP connection that mean "try again later" (network, timeouts). */
const TRANSIENT_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNREFUSED', 'ECONNRESET', 'EPROTOCOL']);

/**
 * Email over SMTP (RFC 5321) through nodemailer's pooled transport: a text and an HTML body, a Message-ID
 * derived from otpd's message id (the same on a retry, so a receiving system can spot a duplicate). An SMTP
 * 4xx reply is transient and a 5xx permanent (RFC 5321 §4.2.1).
 */
export class SmtpProvider implements DeliveryProvider {
  readonly channels = ['email'] as const;
  private readonly transport: Transporter<SMTPPool.SentMessageInfo>;
  private readonly domain: string;

  constructor(
    readonly name: string,
    private readonly config: SmtpConfig,
  ) {
    const options: SMTPPool.Options = {
      pool: true,
      maxConnections: 5,
      host: config.host,
      port: config.port,
      secure: config.secure,
      requireTLS: config.requireTLS,
      tls: { rejectUnauthorized: config.rejectUnauthorized },
      connectionTimeout: config.timeoutMs,
      greetingTimeout: config.timeoutMs,
      socketTimeout: config.timeoutMs,
      ...(config.auth ? { auth: { user: config.auth.user, pass: config.auth.pass } } : {}),
    };
    this.transport = nodemailer.createTransport(options);
    const address = /<([^>]+)>/.exec(config.from)?.[1] ?? config.from;
    this.domain = address.slice(address.lastIndexOf('@') + 1) || 'otpd.invalid';
  }

  async send(message: OutboundMessage): Promise<SendResult> {
    const mail = {
      from: this.config.from,
      to: message.to,
      subject: message.subject,
      text: message.text,
      ...(message.html ? { html: message.html } : {}),
      ...(message.messageId ? { messageId: `<${message.messageId}@${this.domain}>` } : {}),
      headers: { 'Auto-Submitted': 'auto-generated' },
    };
    const sending = this.transport.sendMail(mail);
    let info: SMTPPool.SentMessageInfo;
    try {
      info = await withTimeout(sending, this.config.timeoutMs, this.name);
    } catch (error) {
      throw this.classify(error);
    }
    if (info.rejected.length > 0) throw new DeliveryError(`${this.name}: recipient refused (${shortReason(String(info.response ?? ''))})`, false);
    return { status: 'sent', providerMessageId: info.messageId };
  }

  private classify(error: unknown): DeliveryError {
    if (error instanceof DeliveryError) return error;
    const e = error as { code?: string; responseCode?: number; response?: string; message?: string };
    const detail = shortReason(e.response ?? e.message ?? 'SMTP error');
    if (typeof e.responseCode === 'number') return new DeliveryError(`${this.name}: SMTP ${e.responseCode} (${detail})`, e.responseCode < 500);
    return new DeliveryError(`${this.name}: ${e.code ?? 'SMTP error'} (${detail})`, e.code === undefined || TRANSIENT_CODES.has(e.code));
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}

/**
 * Settles with `work`, or rejects once the time runs out. nodemailer's own timeouts bound each socket
 * phase; this bounds the whole send (the send itself cannot be recalled).
 */
function withTimeout<T>(work: Promise<T>, timeoutMs: number, name: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeliveryError(`${name}: SMTP server did not finish within ${timeoutMs / 1000} s`, true)), timeoutMs);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
