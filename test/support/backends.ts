import { randomBytes } from 'node:crypto';

/** The stores every HTTP feature test runs on (decisions 20): SQLite, and the Redis on 127.0.0.1:6379 under a fresh key prefix. */
export interface Backend {
  name: 'sqlite' | 'redis';
  env(): Record<string, string>;
}

export const REDIS_URL = 'redis://127.0.0.1:6379';

export const STORE_BACKENDS: Backend[] = [
  { name: 'sqlite', env: () => ({}) },
  { name: 'redis', env: () => ({ OTPD_REDIS_URL: REDIS_URL, OTPD_REDIS_PREFIX: `otpd-test-${process.pid}-${randomBytes(4).toString('hex')}:` }) },
];
