import type { Command } from 'commander';
import { factorView } from '../../http/native/factors.js';
import { printJson, withServices } from '../context.js';

interface FactorOptions {
  app: string;
  json?: boolean;
}

function withAppOptions(command: Command): Command {
  return command.option('--app <name>', 'the app the factor belongs to', 'default').option('--json', 'print JSON (the native API’s factor object)');
}

/**
 * `otpd factors get|delete ID`: support look-ups and removal of an authenticator (a lost phone) without an
 * API key, through the same service as `GET`/`DELETE /v1/factors/:id`. The secret is never shown.
 */
export function registerFactors(program: Command): void {
  const factors = program.command('factors').description('look up or remove authenticator factors');

  withAppOptions(factors.command('get <id>').description('show a factor (never its secret)')).action(async (id: string, options: FactorOptions) => {
    await withServices(async (services) => {
      const app = await services.apps.get(options.app);
      const view = factorView(await services.factors.get(app, id));
      if (options.json) printJson(view);
      else process.stdout.write(Object.entries(view).map(([key, value]) => `${key.padEnd(14)} ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`).join('\n') + '\n');
    });
  });

  withAppOptions(factors.command('delete <id>').description('remove a factor; its codes and recovery codes stop working')).action(async (id: string, options: FactorOptions) => {
    await withServices(async (services) => {
      const app = await services.apps.get(options.app);
      await services.factors.delete(app, id);
      if (options.json) printJson({ deleted: id });
      else process.stdout.write(`deleted factor ${id}\n`);
    });
  });
}
