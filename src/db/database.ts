import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, type MigrationProvider, Migrator, SqliteDialect } from 'kysely';
import { migrations } from './migrations.js';
import type { Schema } from './schema.js';

export type Database = Kysely<Schema>;

export interface DatabaseOptions {
  /** SQLite file, or ':memory:' for tests. */
  file: string;
}

export async function createDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.file !== ':memory:') mkdirSync(dirname(options.file), { recursive: true, mode: 0o700 });
  const sqlite = new SQLite(options.file);
  // WAL keeps readers off the writer's back; FULL sync because a state change is acknowledged only once it is durable.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: sqlite }) });
  const provider: MigrationProvider = { getMigrations: async () => migrations };
  const { error } = await new Migrator({ db, provider }).migrateToLatest();
  if (error) {
    await db.destroy();
    throw error;
  }
  return db;
}
