import type { Command } from 'commander';
import { parseSettingAssignment } from '../../core/settings.js';
import type { AppRecord } from '../../store/store.js';
import { printJson, withServices } from '../context.js';

interface SettingOptions {
  set?: string[];
  apiCallsPerHour?: string;
  echoCode?: boolean;
  json?: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--set k=v` pairs plus the named shortcuts, validated by the one settings schema. */
function settingsFrom(options: SettingOptions): Record<string, unknown> {
  const changes: Record<string, unknown> = {};
  for (const assignment of options.set ?? []) {
    const [key, value] = parseSettingAssignment(assignment);
    changes[key] = value;
  }
  if (options.apiCallsPerHour !== undefined) {
    const [key, value] = parseSettingAssignment(`apiCallsPerHour=${options.apiCallsPerHour}`);
    changes[key] = value;
  }
  if (options.echoCode === false) changes.echoCode = false;
  return changes;
}

function appView(app: AppRecord) {
  return { id: app.id, name: app.name, settings: app.settings, createdAt: new Date(app.createdAt).toISOString() };
}

function withSettingOptions(command: Command): Command {
  return command
    .option('--set <key=value>', 'set a setting (repeatable); see docs/configuration.md', collect)
    .option('--api-calls-per-hour <n>', 'API calls allowed per API key per hour')
    .option('--no-echo-code', 'never return codes in dialect responses that would echo them')
    .option('--json', 'print JSON');
}

export function registerApps(program: Command): void {
  const apps = program.command('apps').description('manage apps (tenants) and their settings');

  withSettingOptions(apps.command('create <name>').description('create an app and its first API key')).action(async (name: string, options: SettingOptions) => {
    await withServices(async (services) => {
      const created = await services.apps.create(name, settingsFrom(options));
      if (options.json) printJson({ name: created.app.name, apiKey: created.apiKey, ...created.credentials });
      else process.stdout.write(`created app ${created.app.name}\nAPI key (shown once): ${created.apiKey}\nappKey: ${created.credentials.appKey}\nPartnerID: ${created.credentials.partnerId}\nEncryptKey (shown once): ${created.credentials.encryptKey}\n`);
    });
  });

  withSettingOptions(apps.command('update <name>').description('change settings of an app')).action(async (name: string, options: SettingOptions) => {
    await withServices(async (services) => {
      const changes = settingsFrom(options);
      if (Object.keys(changes).length === 0) throw new Error('nothing to update: give --set key=value or a setting flag');
      const app = await services.apps.update(name, changes);
      if (options.json) printJson(appView(app));
      else process.stdout.write(`updated app ${app.name}: ${Object.keys(changes).join(', ')}\n`);
    });
  });

  apps.command('list').description('list apps').option('--json', 'print JSON').action(async (options: { json?: boolean }) => {
    await withServices(async (services) => {
      const list = await services.apps.list();
      if (options.json) printJson(list.map(appView));
      else for (const app of list) process.stdout.write(`${app.name}\t${app.id}\n`);
    });
  });

  apps.command('show <name>').description('show an app and its settings').action(async (name: string) => {
    await withServices(async (services) => printJson(appView(await services.apps.get(name))));
  });

  apps.command('delete <name>').description('delete an app, its API keys, subjects, factors and secrets').option('--json', 'print JSON').action(async (name: string, options: { json?: boolean }) => {
    await withServices(async (services) => {
      await services.apps.delete(name);
      if (options.json) printJson({ deleted: name });
      else process.stdout.write(`deleted app ${name}\n`);
    });
  });
}
