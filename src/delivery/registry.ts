import type { Config } from '../config.js';
import type { FileConfig, ProviderConfig } from '../config-file.js';
import type { Keyring } from '../core/keyring.js';
import { deriveCallbackToken } from './callback-token.js';
import { DevOutboxProvider } from './dev-outbox.js';
import { LogProvider } from './log.js';
import { Msg91Provider } from './msg91.js';
import { NoopProvider } from './noop.js';
import type { DeliveryProvider } from './provider.js';
import { SmtpProvider } from './smtp.js';
import { TwilioProvider } from './twilio.js';
import { VonageProvider } from './vonage.js';
import { WebhookProvider } from './webhook.js';

/** The providers in force: the built-in ones plus those of the config file. A reload swaps the whole set. */
export class ProviderRegistry {
  constructor(private readonly providers: ReadonlyMap<string, DeliveryProvider>) {}

  get(name: string): DeliveryProvider | undefined {
    return this.providers.get(name);
  }

  /** Closes connection pools; called for a registry a reload replaced, once its sends have finished. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.providers.values()].map((provider) => provider.close?.()));
  }
}

export function createProvider(name: string, config: ProviderConfig, keyring: Keyring, clock: () => number): DeliveryProvider {
  switch (config.type) {
    case 'twilio':
      return new TwilioProvider(name, config);
    case 'vonage':
      return new VonageProvider(name, { ...config, callbackToken: config.callbackToken ?? deriveCallbackToken(keyring, name) }, clock);
    case 'msg91':
      return new Msg91Provider(name, config);
    case 'smtp':
      return new SmtpProvider(name, config);
    case 'webhook':
      return new WebhookProvider(name, config, clock);
  }
}

export function buildRegistry(config: Config, file: FileConfig | undefined, keyring: Keyring, clock: () => number): ProviderRegistry {
  const providers = new Map<string, DeliveryProvider>();
  providers.set('log', new LogProvider(config.production));
  providers.set('noop', new NoopProvider());
  if (config.devOutbox) providers.set('dev-outbox', new DevOutboxProvider(config.devOutbox));
  for (const [name, providerConfig] of Object.entries(file?.providers ?? {})) providers.set(name, createProvider(name, providerConfig, keyring, clock));
  return new ProviderRegistry(providers);
}
