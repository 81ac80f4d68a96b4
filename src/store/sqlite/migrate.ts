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
 */
export function migrate(db: Database): number {
  let applied = 0;
  for (const migration of loadMigrations()) {
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
