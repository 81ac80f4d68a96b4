import { readdirSync, readFileSync } from 'node:fs';
import type { Database } from 'better-sqlite3';

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);

interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Numbered SQL files `NNN_name.sql`, in order. */
export function loadMigrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((file) => /^\d{3}_[\w-]+\.sql$/.test(file))
    .sort()
    .map((file) => ({ version: Number(file.slice(0, 3)), name: file, sql: readFileSync(new URL(file, MIGRATIONS_DIR), 'utf8') }));
}

/**
 * Applies every migration newer than `PRAGMA user_version`, each in its own IMMEDIATE transaction, so
 * several processes starting on one file at once apply each migration exactly once.
 *
 * A file that is up to date is only read: no write lock. Another connection of this process may hold that
 * lock until its event-loop turn ends (group-commit.ts), and `BEGIN IMMEDIATE` would wait for it
 * synchronously, in that very turn, for the whole busy_timeout, then fail with SQLITE_BUSY.
 */
export function migrate(db: Database): number {
  const migrations = loadMigrations();
  const latest = migrations[migrations.length - 1]?.version ?? 0;
  if ((db.pragma('user_version', { simple: true }) as number) >= latest) return 0;
  let applied = 0;
  for (const migration of migrations) {
    db.exec('BEGIN IMMEDIATE');
    try {
      const current = db.pragma('user_version', { simple: true }) as number;
      if (migration.version > current) {
        db.exec(migration.sql);
        db.pragma(`user_version = ${migration.version}`);
        applied++;
      }
      db.exec('COMMIT');
    } catch (error) {
      db.exec('ROLLBACK');
      throw new Error(`migration ${migration.name} failed: ${(error as Error).message}`, { cause: error });
    }
  }
  return applied;
}
