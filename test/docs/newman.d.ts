/** The part of newman's API the Postman test uses (newman ships no types; @types/newman is not needed for this). */
declare module 'newman' {
  import type { EventEmitter } from 'node:events';

  export interface RunOptions {
    collection: string | object;
    envVar?: Array<{ key: string; value: string }>;
    reporters?: string | string[];
    timeout?: number;
    timeoutRequest?: number;
    insecure?: boolean;
  }

  export interface Failure {
    error: { name: string; message: string; test?: string };
    source?: { name?: string };
    at?: string;
  }

  export interface Stat {
    total: number;
    failed: number;
    pending?: number;
  }

  export interface Execution {
    item: { name: string };
    response?: { code: number };
    assertions?: Array<{ assertion: string; skipped?: boolean; error?: { message: string } }>;
  }

  export interface Summary {
    run: {
      stats: { requests: Stat; assertions: Stat; testScripts: Stat; prerequestScripts: Stat };
      failures: Failure[];
      executions: Execution[];
      error?: Error;
    };
  }

  export function run(options: RunOptions, callback: (error: Error | null, summary: Summary) => void): EventEmitter;

  const newman: { run: typeof run };
  export default newman;
}
