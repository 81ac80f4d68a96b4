import { DeliveryError, type DeliveryProvider, type OutboundMessage, type SendResult } from './provider.js';
import type { RouteStep } from './routing.js';

export interface FailedStep {
  step: RouteStep;
  reason: string;
  transient: boolean;
}

export type RouteOutcome =
  | { ok: true; step: RouteStep; provider: DeliveryProvider; result: SendResult; failures: FailedStep[] }
  /** `transient`: some step failed in a way worth trying again later; `stopped`: the caller's guard ended the walk. */
  | { ok: false; failures: FailedStep[]; transient: boolean; stopped: boolean };

export interface RouteHooks {
  /** The provider behind a name (the registry in force now). */
  lookup(name: string): DeliveryProvider | undefined;
  /** The message for one step (rendered for its channel), or why that step cannot carry it. */
  compose(step: RouteStep): OutboundMessage | { refused: string };
  /** Called before each provider call; false stops the walk (the outbox lease was lost). */
  beforeStep?(): Promise<boolean>;
  /** Told how long each provider call took and how it ended (metrics). */
  observe?(provider: string, status: string, seconds: number): void;
}

/**
 * Failover: tries each step of the route in order until one provider accepts the message. A provider that
 * fails, times out or cannot send that channel moves the message on to the next step; the failures are
 * kept, so the caller can record why and decide whether a later retry may help.
 */
export async function sendAlongRoute(steps: RouteStep[], hooks: RouteHooks): Promise<RouteOutcome> {
  const failures: FailedStep[] = [];
  for (const step of steps) {
    const provider = hooks.lookup(step.provider);
    if (!provider) {
      failures.push({ step, reason: `no provider named ${step.provider} is configured`, transient: false });
      continue;
    }
    if (!provider.channels.includes(step.channel)) {
      failures.push({ step, reason: `provider ${step.provider} does not send ${step.channel}`, transient: false });
      continue;
    }
    const message = hooks.compose(step);
    if ('refused' in message) {
      failures.push({ step, reason: message.refused, transient: false });
      continue;
    }
    if (hooks.beforeStep && !(await hooks.beforeStep())) return { ok: false, failures, transient: true, stopped: true };
    const started = performance.now();
    try {
      const result = await provider.send(message);
      hooks.observe?.(provider.name, result.status, (performance.now() - started) / 1000);
      return { ok: true, step, provider, result, failures };
    } catch (error) {
      hooks.observe?.(provider.name, 'failed', (performance.now() - started) / 1000);
      const known = error instanceof DeliveryError;
      const reason = known ? error.message : `${step.provider}: unexpected error (${error instanceof Error ? error.message : String(error)})`;
      // A provider's error text may quote the message back; the code must not reach logs or the store.
      failures.push({ step, reason: reason.split(message.code).join('***'), transient: known ? error.transient : true });
    }
  }
  return { ok: false, failures, transient: failures.some((f) => f.transient), stopped: false };
}

/** One line for `failureReason`: every step's failure, in order. */
export function describeFailures(failures: FailedStep[]): string {
  const text = failures.map((f) => f.reason).join('; ');
  return text.length > 500 ? text.slice(0, 497) + '...' : text || 'no provider configured';
}
