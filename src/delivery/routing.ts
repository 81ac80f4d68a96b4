import type { Channel } from '../core/destination.js';
import type { AppSettings } from '../core/settings.js';

/** One provider to try, on one channel (a route may fall back from SMS to a voice call). */
export interface RouteStep {
  provider: string;
  channel: Channel;
}

const ROUTE_SETTING: Record<Channel, 'smsRoute' | 'emailRoute' | 'voiceRoute' | 'whatsappRoute'> = {
  sms: 'smsRoute',
  email: 'emailRoute',
  voice: 'voiceRoute',
  whatsapp: 'whatsappRoute',
};

/**
 * The providers a message tries, in order: the app's route for its channel (`smsRoute: [twilio-main,
 * vonage-main, voice:twilio-main]`), or else its `deliveryProvider` alone. With the development outbox on,
 * the dev outbox replaces that default (so local runs never reach a real provider by accident), while an
 * explicit route still wins.
 */
export function routeFor(settings: AppSettings, channel: Channel, devOutbox: boolean): RouteStep[] {
  const entries = (settings[ROUTE_SETTING[channel]] as string[] | undefined) ?? [];
  if (entries.length === 0) return [{ provider: devOutbox ? 'dev-outbox' : settings.deliveryProvider, channel }];
  return entries.map((entry) => {
    const colon = entry.indexOf(':');
    return colon === -1 ? { provider: entry, channel } : { provider: entry.slice(colon + 1), channel: entry.slice(0, colon) as Channel };
  });
}

/** How a delivering step is recorded as `delivery.provider`: the provider, and the channel when the route switched it. */
export function stepLabel(step: RouteStep, requested: Channel): string {
  return step.channel === requested ? step.provider : `${step.channel}:${step.provider}`;
}
