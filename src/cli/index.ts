#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config.js';
import { OtpdError } from '../errors.js';
import { registerApps } from './commands/apps.js';
import { registerAudit } from './commands/audit.js';
import { registerErase } from './commands/erase.js';
import { registerSecrets } from './commands/secrets.js';
import { registerBench } from './commands/bench.js';
import { registerDoctor } from './commands/doctor.js';
import { registerKeys } from './commands/keys.js';
import { registerServe } from './commands/serve.js';
import { registerVerifications } from './commands/verifications.js';
import { registerFactors } from './commands/factors.js';

/** `otpd`: serve the API and manage apps and keys. Every command reads the same OTPD_* environment. */
export function buildProgram(): Command {
  const program = new Command('otpd').description('self-hosted one-time-password server').version('0.1.0');
  program.exitOverride();
  registerServe(program);
  registerApps(program);
  registerKeys(program);
  registerAudit(program);
  registerErase(program);
  registerSecrets(program);
  registerVerifications(program);
  registerFactors(program);
  registerDoctor(program);
  registerBench(program);
  return program;
}

function fail(error: unknown): never {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  if (error instanceof ConfigError) {
    process.stderr.write(`otpd: ${error.message}\n`);
    process.exit(2);
  }
  if (error instanceof OtpdError) {
    process.stderr.write(`otpd: ${error.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`otpd: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}

buildProgram().parseAsync(process.argv).catch(fail);
