import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { Keyring } from '../core/keyring.js';
import { createDelivery, type Delivery } from '../delivery/index.js';
import type { Store } from '../store/store.js';
import { AppsService } from './apps.js';
import { FactorsService } from './factors.js';
import { HostedPageService } from './hosted-page.js';
import { NamedVerificationsService } from './named-verifications.js';
import { VerificationsService } from './verifications.js';

/** Everything a route may call. Routes get this object and nothing below it. */
export interface Services {
  apps: AppsService;
  verifications: VerificationsService;
  factors: FactorsService;
  /** Verifications under client-chosen ids (seed 002) and the hosted page over them. */
  namedVerifications: NamedVerificationsService;
  hostedPage: HostedPageService;
  /** Answers when the store does; rejects with STORE_UNAVAILABLE otherwise. */
  health(): Promise<void>;
  /** Waits for messages already handed to providers. */
  drain(): Promise<void>;
}

export interface ServiceDependencies {
  config: Config;
  store: Store;
  keyring: Keyring;
  logger: Logger;
  clock?: () => number;
}

export function createServices(deps: ServiceDependencies): Services {
  const clock = deps.clock ?? Date.now;
  let verifications: VerificationsService | undefined;
  const delivery: Delivery = createDelivery(deps.config, (appId, id, update) => verifications!.recordDeliveryStatus(appId, id, update), deps.logger);
  verifications = new VerificationsService(deps.store, deps.keyring, delivery, clock, deps.logger);
  const apps = new AppsService(deps.store, deps.keyring, clock);
  const namedVerifications = new NamedVerificationsService(deps.store, verifications, clock);
  return {
    apps,
    namedVerifications,
    hostedPage: new HostedPageService(apps, namedVerifications, deps.keyring, clock),
    verifications,
    factors: new FactorsService(deps.store, deps.keyring, clock, deps.logger),
    health: () => deps.store.ping(),
    drain: () => delivery.dispatcher.drain(),
  };
}

export function keyringFrom(config: Config): Keyring {
  return new Keyring(config.secret, config.previousSecret);
}
