import type { Command } from 'commander';
import { invalid } from '../../errors.js';
import { MAX_AUDIT_LIMIT } from '../../services/audit.js';
import { DEFAULT_APP } from '../../services/apps.js';
import { auditEntryView } from '../../http/native/audit.js';
import { withServices } from '../context.js';

interface AuditOptions {
  app?: string;
  event?: string;
  since?: string;
  limit?: string;
  json?: boolean;
}

const MAX_CLI_LIMIT = 100_000;

function parseSince(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw invalid('--since', 'must be an ISO 8601 date or time such as 2025-01-31T12:00:00Z');
  return ms;
}

/** `otpd audit`: an app's audit log, newest first (docs/audit-and-events.md). */
export function registerAudit(program: Command): void {
  program
    .command('audit')
    .description('show the audit log of an app, newest first')
    .option('--app <name>', 'the app (default: default)')
    .option('--event <type>', 'only entries of this event (e.g. code.replayed)')
    .option('--since <iso>', 'only entries at or after this time')
    .option('--limit <n>', 'most entries to show (default 100)')
    .option('--json', 'print JSON lines, one entry per line')
    .action(async (options: AuditOptions) => {
      const limit = options.limit === undefined ? 100 : /^\d+$/.test(options.limit) ? Number(options.limit) : Number.NaN;
      if (!(limit >= 1 && limit <= MAX_CLI_LIMIT)) throw invalid('--limit', `must be an integer from 1 to ${MAX_CLI_LIMIT}`);
      const since = parseSince(options.since);
      await withServices(async (services) => {
        const app = await services.apps.get(options.app ?? DEFAULT_APP);
        let cursor: string | undefined;
        let shown = 0;
        do {
          const page = await services.audit.list(app, { event: options.event, since, limit: Math.min(MAX_AUDIT_LIMIT, limit - shown), cursor });
          for (const entry of page.items) {
            const view = auditEntryView(entry);
            if (options.json) process.stdout.write(JSON.stringify(view) + '\n');
            else {
              const details = view.details ? ' ' + Object.entries(view.details).map(([k, v]) => `${k}=${v}`).join(' ') : '';
              process.stdout.write(`${view.at}  ${view.event.padEnd(34)} ${view.resource ?? '-'}  key=${view.keyId ?? '-'} ip=${view.ip ?? '-'} to=${view.destination?.masked ?? '-'}${details}\n`);
            }
          }
          shown += page.items.length;
          cursor = page.nextCursor;
        } while (cursor !== undefined && shown < limit);
      });
    });
}
