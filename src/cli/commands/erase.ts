import type { Command } from 'commander';
import { NO_REQUEST } from '../../core/rate-limits.js';
import { printJson, withServices } from '../context.js';

/** `otpd erase --to NUMBER [--app NAME]`: removes what otpd holds about a person (docs/audit-and-events.md). */
export function registerErase(program: Command): void {
  program
    .command('erase')
    .description("erase a person's verifications and audit entries (every app, or one with --app)")
    .requiredOption('--to <destination>', 'the phone number (E.164) or email address')
    .option('--app <name>', 'only this app')
    .option('--json', 'print JSON')
    .action(async (options: { to: string; app?: string; json?: boolean }) => {
      await withServices(async (services) => {
        const apps = options.app === undefined ? await services.apps.list() : [await services.apps.get(options.app)];
        const reports = [];
        for (const app of apps) reports.push(await services.personalData.eraseDestination(app, options.to, NO_REQUEST));
        if (options.json) printJson({ erased: reports });
        else for (const r of reports) process.stdout.write(`${r.app}: ${r.verifications} verifications, ${r.auditEntries} audit entries erased\n`);
      });
    });
}
