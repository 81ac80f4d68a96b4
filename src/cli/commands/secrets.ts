import type { Command } from 'commander';
import { NO_REQUEST } from '../../core/rate-limits.js';
import type { RotationReport } from '../../services/secrets-rotation.js';
import { printJson, withServices } from '../context.js';

function printReport(report: RotationReport): void {
  const verb = report.dryRun ? 'would re-encrypt' : 're-encrypted';
  process.stdout.write(`current key id ${report.currentKid}; previous: ${report.previousKids.join(', ') || 'none (set OTPD_SECRET_PREVIOUS to the old secret)'}\n`);
  for (const ns of report.namespaces) {
    let line = `${ns.namespace}: ${ns.scanned} records, ${verb} ${ns.rewrapped}, already current ${ns.current}`;
    if (ns.failed > 0) line += `, FAILED ${ns.failed} (${ns.failedIds.join(', ')})`;
    if (ns.staleHashes > 0) line += `, ${ns.staleHashes} with hashes under the old key (recovery codes: reissue them before dropping OTPD_SECRET_PREVIOUS)`;
    process.stdout.write(line + '\n');
  }
}

/** `otpd secrets`: key rotation and webhook secrets (docs/security.md "Secrets and rotation"). */
export function registerSecrets(program: Command): void {
  const secrets = program.command('secrets').description('rotate the server secret; show webhook secrets');

  secrets
    .command('rotate')
    .description('re-encrypt every stored secret under OTPD_SECRET (run with OTPD_SECRET=new, OTPD_SECRET_PREVIOUS=old)')
    .option('--dry-run', 'count what would be re-encrypted, change nothing')
    .option('--json', 'print JSON')
    .action(async (options: { dryRun?: boolean; json?: boolean }) => {
      await withServices(async (services) => {
        const report = await services.secretsRotation.rotate({ dryRun: options.dryRun ?? false });
        if (options.json) printJson(report);
        else printReport(report);
        // A record under an unknown key is left as it was: the operator must look, so the exit status says so.
        if (report.namespaces.some((ns) => ns.failed > 0)) process.exitCode = 1;
      });
    });

  secrets
    .command('webhook <app>')
    .description("print an app's webhook signing secret (created on first use); --rotate replaces it")
    .option('--rotate', 'issue a new secret; the old one keeps signing beside it for 24 hours')
    .option('--json', 'print JSON')
    .action(async (name: string, options: { rotate?: boolean; json?: boolean }) => {
      await withServices(async (services) => {
        const app = await services.apps.get(name);
        const { secret, previousValidUntil } = await services.events.webhookSecret(app, { rotate: options.rotate ?? false });
        if (options.rotate) await services.audit.recordNow(app, 'webhook_secret.rotated', { resource: app.id }, NO_REQUEST);
        const until = previousValidUntil === null ? null : new Date(previousValidUntil).toISOString();
        if (options.json) printJson({ app: app.name, webhookUrl: app.settings.webhookUrl, secret, previousSecretValidUntil: until });
        else {
          process.stdout.write(`${secret}\n`);
          if (until) process.stderr.write(`the previous secret also signs deliveries until ${until}\n`);
          if (!app.settings.webhookUrl) process.stderr.write(`no webhookUrl is set: otpd apps update ${app.name} --set webhookUrl=https://…\n`);
        }
      });
    });
}
