import type { Kysely, Migration } from 'kysely';

/** Migrations in order; never edit a released one, add the next. Written in Kysely's builder so PostgreSQL runs them too. */
export const migrations: Record<string, Migration> = {
  '0001_packet_captures': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .execute();
      await db.schema
        .createTable('vms')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('subscription_id', 'text', (c) => c.notNull())
        .addColumn('resource_group', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('os_type', 'text', (c) => c.notNull())
        .addColumn('nics', 'text', (c) => c.notNull())
        .addColumn('agent_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('agents')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_id', 'text', (c) => c.notNull())
        .addColumn('vm_key', 'text', (c) => c.notNull())
        .addColumn('hostname', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('capture_root', 'text', (c) => c.notNull())
        .addColumn('registered_at', 'text', (c) => c.notNull())
        .addColumn('last_seen_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('network_watchers')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('subscription_id', 'text', (c) => c.notNull())
        .addColumn('resource_group', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('tags', 'text', (c) => c.notNull())
        .addColumn('etag', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('network_watchers_location')
        .on('network_watchers')
        .columns(['subscription_id', 'location'])
        .unique()
        .execute();
      await db.schema
        .createTable('packet_captures')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('job_id', 'text', (c) => c.notNull().unique())
        .addColumn('subscription_id', 'text', (c) => c.notNull())
        .addColumn('watcher_key', 'text', (c) => c.notNull())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('target_key', 'text', (c) => c.notNull())
        .addColumn('agent_id', 'text')
        .addColumn('properties', 'text', (c) => c.notNull())
        .addColumn('bpf', 'text', (c) => c.notNull())
        .addColumn('provisioning_state', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('desired_state', 'text', (c) => c.notNull())
        .addColumn('stop_reason', 'text')
        .addColumn('errors', 'text', (c) => c.notNull())
        .addColumn('capture_start_time', 'text')
        .addColumn('capture_end_time', 'text')
        .addColumn('progress', 'text', (c) => c.notNull())
        .addColumn('etag', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('deleted_at', 'text')
        .execute();
      await db.schema
        .createIndex('packet_captures_active')
        .on('packet_captures')
        .columns(['subscription_id', 'location', 'status'])
        .execute();
      await db.schema
        .createIndex('packet_captures_agent')
        .on('packet_captures')
        .columns(['agent_id', 'status'])
        .execute();
      await db.schema
        .createTable('capture_files')
        .addColumn('capture_key', 'text', (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('blob_name', 'text', (c) => c.notNull())
        .addColumn('local_path', 'text')
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('packets', 'integer', (c) => c.notNull())
        .addColumn('kernel_drops', 'integer', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('first_packet_time', 'text')
        .addColumn('last_packet_time', 'text')
        .addColumn('uploaded_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('capture_files_pk', ['capture_key', 'seq'])
        .execute();
      await db.schema
        .createTable('operations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('resource_key', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('ended_at', 'text')
        .execute();
    },
  },
  '0002_capture_reports': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('capture_reports')
        .addColumn('job_id', 'text', (c) => c.primaryKey())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('report', 'text')
        .addColumn('error', 'text')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0003_host_metrics': {
    async up(db: Kysely<unknown>) {
      // Raw samples (one per agent sample and metric) and per-minute rollups; times are epoch milliseconds (UTC).
      await db.schema
        .createTable('metric_samples')
        .addColumn('vm_key', 'text', (c) => c.notNull())
        .addColumn('metric', 'text', (c) => c.notNull())
        .addColumn('time', 'bigint', (c) => c.notNull())
        .addColumn('value', 'double precision', (c) => c.notNull())
        .addPrimaryKeyConstraint('metric_samples_pk', ['vm_key', 'metric', 'time'])
        .execute();
      await db.schema.createIndex('metric_samples_time').on('metric_samples').column('time').execute();
      await db.schema
        .createTable('metric_rollups')
        .addColumn('vm_key', 'text', (c) => c.notNull())
        .addColumn('metric', 'text', (c) => c.notNull())
        .addColumn('minute', 'bigint', (c) => c.notNull())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('sum', 'double precision', (c) => c.notNull())
        .addColumn('min', 'double precision', (c) => c.notNull())
        .addColumn('max', 'double precision', (c) => c.notNull())
        .addPrimaryKeyConstraint('metric_rollups_pk', ['vm_key', 'metric', 'minute'])
        .execute();
      await db.schema.createIndex('metric_rollups_minute').on('metric_rollups').column('minute').execute();
    },
  },
};
