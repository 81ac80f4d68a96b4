import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { call, spawnServer } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'otpd-shutdown-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Dev-outbox lines per verification id. */
function sendsById(file: string): Map<string, number> {
  const counts = new Map<string, number>();
  if (!existsSync(file)) return counts;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const id = (JSON.parse(line) as { verificationId: string }).verificationId;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

type Outcome = { status: number; id?: string } | { error: string };

describe('otpd serve: SIGTERM under load', () => {
  it('answers or refuses every request, keeps every accepted verification and sends each message exactly once', async () => {
    const env = {
      OTPD_DATABASE: join(dir, 'otpd.db'),
      OTPD_SECRET: 'shutdown-secret-0123456789abcdefghijkl',
      OTPD_API_KEY: 'otpd_shutdown_key_0123456789',
      OTPD_DEV_OUTBOX: join(dir, 'outbox.jsonl'),
    };
    const server = await spawnServer(env);
    const total = 400;
    const signalAfter = 60;
    const outcomes: Outcome[] = [];
    let next = 0;
    let accepted = 0;
    let signalled = false;
    // 16 clients in parallel, each sending until the server is gone or every request has been tried (bounded).
    const client = async () => {
      while (next < total) {
        const to = `+1555${String(7_000_000 + next++)}`;
        try {
          const response = await call(server.url, 'POST', '/v1/verifications', env.OTPD_API_KEY, { to });
          outcomes.push({ status: response.status, id: response.body?.id });
          if (response.status === 201 && ++accepted === signalAfter && !signalled) {
            signalled = true;
            server.child.kill('SIGTERM');
          }
        } catch (error) {
          // Refused or reset once the listener is closed: this request was never answered, so never accepted.
          outcomes.push({ error: (error as Error).message });
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, client));
    assert.ok(signalled, 'the server was signalled mid-load');
    // A second SIGTERM (as some supervisors send) must not cut the shutdown short.
    const exitCode = await server.stop('SIGTERM');
    assert.equal(exitCode, 0, `exit code ${exitCode} (signal ${server.child.signalCode}); stderr: ${server.stderr()}`);

    const answered = outcomes.filter((o): o is { status: number; id?: string } => 'status' in o);
    const acceptedIds = answered.filter((o) => o.status === 201).map((o) => o.id!);
    // Every answer is an acceptance or fastify's "closing" 503; no 500, no half-written reply.
    assert.deepEqual([...new Set(answered.map((o) => o.status))].filter((s) => s !== 201 && s !== 503), []);
    assert.ok(acceptedIds.length >= signalAfter, `accepted ${acceptedIds.length}`);

    // Restart on the same file: whatever the first process had not sent yet is sent now, once.
    const again = await spawnServer(env);
    try {
      const deadline = Date.now() + 15_000;
      let sends = sendsById(env.OTPD_DEV_OUTBOX);
      while (acceptedIds.some((id) => !sends.has(id)) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        sends = sendsById(env.OTPD_DEV_OUTBOX);
      }
      for (const id of acceptedIds) {
        assert.equal(sends.get(id), 1, `messages sent for accepted ${id}`);
        const fetched = await call(again.url, 'GET', `/v1/verifications/${id}`, env.OTPD_API_KEY);
        assert.equal(fetched.status, 200);
        assert.equal(fetched.body.status, 'pending');
      }
      // Nothing was sent for a request that was not accepted... unless its answer was lost in the close,
      // which graceful shutdown must not do: every message sent belongs to an accepted verification.
      assert.deepEqual([...sends.keys()].filter((id) => !acceptedIds.includes(id)), []);
    } finally {
      await again.stop();
    }
  });
});
