import type { Logger } from 'pino';
import { ConfigFileError, loadConfigFile, type FileConfig } from './config-file.js';
import { OtpdError } from './errors.js';
import type { Services } from './services/index.js';

/**
 * Applies the apps a config file declares (decisions 6: the database holds the live values, the file seeds
 * and updates them): an app the store lacks is created with the file's settings (and its `apiKey`, if
 * given); an existing app gets the settings the file names, only when they differ, so restarts do not
 * rewrite unchanged apps. Settings the file does not name are left as they are.
 */
export async function applyFileApps(apps: Services['apps'], file: FileConfig, logger: Logger): Promise<void> {
  const existing = new Map((await apps.list()).map((app) => [app.name, app]));
  for (const [name, declared] of Object.entries(file.apps)) {
    const current = existing.get(name);
    if (!current) {
      try {
        await apps.create(name, declared.settings, declared.apiKey);
        logger.info({ app: name }, 'app created from the config file');
        continue;
      } catch (error) {
        // Another process (a sibling worker) created it first: update it like an existing one.
        if (!(error instanceof OtpdError && error.code === 'APP_EXISTS')) throw error;
      }
    }
    const stored = (current ?? (await apps.get(name))).settings as unknown as Record<string, unknown>;
    const changes = Object.fromEntries(Object.entries(declared.settings).filter(([key, value]) => JSON.stringify(stored[key]) !== JSON.stringify(value)));
    if (Object.keys(changes).length > 0) {
      await apps.update(name, changes);
      logger.info({ app: name, settings: Object.keys(changes) }, 'app settings updated from the config file');
    }
  }
}

/**
 * Re-reads the config file on SIGHUP. A valid file replaces providers, templates and outbox options for the
 * next message and updates the apps it declares; requests keep being served throughout, and sends already
 * under way finish on the providers they started with. An invalid file is refused with every problem
 * logged, and the running configuration stays. Returns the function that stops listening.
 */
export function reloadOnHangup(path: string | undefined, services: Services, logger: Logger, env: NodeJS.ProcessEnv = process.env): () => void {
  let running: Promise<void> = Promise.resolve();
  const reload = async (): Promise<void> => {
    if (!path) {
      logger.warn('SIGHUP: no OTPD_CONFIG file to reload');
      return;
    }
    let file: FileConfig;
    try {
      file = loadConfigFile(path, env);
    } catch (error) {
      if (error instanceof ConfigFileError) {
        logger.error({ file: path, problems: error.problems }, 'config reload refused; the running configuration stays');
        return;
      }
      throw error;
    }
    services.delivery.reload(file);
    await applyFileApps(services.apps, file, logger);
    logger.info({ file: path, providers: Object.keys(file.providers), apps: Object.keys(file.apps) }, 'config reloaded');
  };
  const onHangup = (): void => {
    // One reload at a time; a signal during one runs another after it.
    running = running.then(reload).catch((error: unknown) => logger.error({ err: error }, 'config reload failed'));
  };
  process.on('SIGHUP', onHangup);
  return () => process.off('SIGHUP', onHangup);
}
