// The peer: better-auth's phone-number OTP plugin on SQLite (better-sqlite3), served by node:http through
// better-auth's own Node handler, its rate limiter off. The same work a person's send and verify cause:
// `POST /api/auth/phone-number/send-otp` stores a code, `POST /api/auth/phone-number/verify` checks it and
// signs the person up (user + session), as the plugin's documentation shows.
//
// Plain JavaScript run by plain node (no TypeScript loader): better-auth imports modules while it serves,
// and a loader hook would bill those imports to the peer.
//
// `sendOTP` keeps the last code per number in memory instead of texting it; `GET /__bench/codes` hands them
// to the benchmark (bench/run.ts) for the verify pool, and clears them. Started by bench/run.ts as
// `PORT=… PEER_DB=…/peer.db node bench/peers/better-auth.mjs`.
import { createServer } from 'node:http';
import Database from 'better-sqlite3';
import { betterAuth } from 'better-auth';
import { getMigrations } from 'better-auth/db/migration';
import { toNodeHandler } from 'better-auth/node';
import { phoneNumber } from 'better-auth/plugins/phone-number';

const port = Number(process.env.PORT ?? 0);
const database = new Database(process.env.PEER_DB ?? ':memory:');
database.pragma('journal_mode = WAL');
const codes = new Map();

const options = {
  database,
  baseURL: `http://127.0.0.1:${port}`,
  secret: process.env.PEER_SECRET ?? 'bench-peer-secret-bench-peer-secret-0123456789',
  rateLimit: { enabled: false },
  logger: { disabled: true },
  telemetry: { enabled: false },
  plugins: [
    phoneNumber({
      sendOTP: ({ phoneNumber: number, code }) => {
        codes.set(number, code);
      },
      signUpOnVerification: {
        getTempEmail: (number) => `${number.replace(/\D/g, '')}@bench.invalid`,
        getTempName: (number) => number,
      },
    }),
  ],
};

const { runMigrations } = await getMigrations(options);
await runMigrations();
const auth = betterAuth(options);
const handler = toNodeHandler(auth);

const server = createServer((request, response) => {
  if (request.url === '/__bench/codes') {
    const body = JSON.stringify(Object.fromEntries(codes));
    codes.clear();
    response.writeHead(200, { 'content-type': 'application/json' }).end(body);
    return;
  }
  void handler(request, response);
});
server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => server.close(() => process.exit(0)));
