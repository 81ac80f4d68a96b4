import type { Command } from 'commander';
import { maskDestination } from '../../core/destination.js';
import { NO_REQUEST } from '../../core/rate-limits.js';
import { verificationView, type VerificationView } from '../../http/native/views.js';
import { printJson, withServices } from '../context.js';

interface VerificationOptions {
  app: string;
  json?: boolean;
}

/** A few aligned lines for a person; `--json` prints the same object the native API returns. */
function printVerification(view: VerificationView): void {
  const rows: Array<[string, string]> = [
    ['id', view.id],
    ['status', view.status],
    // Masked like the logs: a terminal or its scrollback is no place for a full phone number.
    ['to', maskDestination(view.to)],
    ['channel', view.channel],
    ['attempts', `${view.attempts} of ${view.maxAttempts}`],
    ['sends', String(view.sends)],
    ['delivery', view.delivery.provider ? `${view.delivery.status} (${view.delivery.provider})` : view.delivery.status],
    ['created', view.createdAt],
    ['expires', view.expiresAt],
    ['updated', view.updatedAt],
  ];
  process.stdout.write(rows.map(([key, value]) => `${key.padEnd(9)} ${value}`).join('\n') + '\n');
}

function withAppOptions(command: Command): Command {
  return command.option('--app <name>', 'the app the verification belongs to', 'default').option('--json', 'print JSON (the native API’s verification object)');
}

/** `otpd verifications get|cancel ID`: support look-ups without an API key, through the same services. */
export function registerVerifications(program: Command): void {
  const verifications = program.command('verifications').description('look up or cancel verifications');

  withAppOptions(verifications.command('get <id>').description('show a verification (never its code)')).action(async (id: string, options: VerificationOptions) => {
    await withServices(async (services) => {
      const app = await services.apps.get(options.app);
      const view = verificationView(await services.verifications.get(app, id));
      if (options.json) printJson(view);
      else printVerification(view);
    });
  });

  withAppOptions(verifications.command('cancel <id>').description('cancel a pending verification; its code stops working')).action(async (id: string, options: VerificationOptions) => {
    await withServices(async (services) => {
      const app = await services.apps.get(options.app);
      const view = verificationView(await services.verifications.cancel(app, id, NO_REQUEST));
      if (options.json) printJson(view);
      else process.stdout.write(`canceled ${view.id}\n`);
    });
  });
}
