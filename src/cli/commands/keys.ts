import type { Command } from 'commander';
import { printJson, withServices } from '../context.js';

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('manage API keys');

  keys.command('create <app>').description('issue a new API key for an app').option('--json', 'print JSON').action(async (app: string, options: { json?: boolean }) => {
    await withServices(async (services) => {
      const issued = await services.apps.createKey(app);
      if (options.json) printJson(issued);
      else process.stdout.write(`API key ${issued.id} for ${issued.app} (shown once): ${issued.apiKey}\n`);
    });
  });

  keys.command('list <app>').description('list the API keys of an app').option('--json', 'print JSON').action(async (app: string, options: { json?: boolean }) => {
    await withServices(async (services) => {
      const list = (await services.apps.listKeys(app)).map((key) => ({
        id: key.id,
        prefix: key.prefix,
        createdAt: new Date(key.createdAt).toISOString(),
        revokedAt: key.revokedAt === null ? null : new Date(key.revokedAt).toISOString(),
      }));
      if (options.json) printJson(list);
      else for (const key of list) process.stdout.write(`${key.id}\t${key.prefix}…\t${key.revokedAt ? 'revoked ' + key.revokedAt : 'active'}\n`);
    });
  });

  keys.command('revoke <keyId>').description('revoke an API key').option('--json', 'print JSON').action(async (keyId: string, options: { json?: boolean }) => {
    await withServices(async (services) => {
      await services.apps.revokeKey(keyId);
      if (options.json) printJson({ revoked: keyId });
      else process.stdout.write(`revoked ${keyId}\n`);
    });
  });
}
