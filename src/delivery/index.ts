import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { DevOutboxProvider } from './dev-outbox.js';
import { Dispatcher, type DeliveryReporter } from './dispatcher.js';
import { LogProvider } from './log.js';
import type { DeliveryProvider } from './provider.js';

export interface Delivery {
  dispatcher: Dispatcher;
  /** The provider an app's messages go to: the dev outbox overrides every app while it is on. */
  providerNameFor(appProvider: string): string;
}

export function createDelivery(config: Config, report: DeliveryReporter, logger: Logger): Delivery {
  const providers = new Map<string, DeliveryProvider>();
  const add = (provider: DeliveryProvider) => providers.set(provider.name, provider);
  add(new LogProvider(config.production));
  if (config.devOutbox) add(new DevOutboxProvider(config.devOutbox));
  const override = config.devOutbox ? 'dev-outbox' : undefined;
  return {
    dispatcher: new Dispatcher(providers, report, logger),
    providerNameFor: (appProvider) => override ?? appProvider,
  };
}
