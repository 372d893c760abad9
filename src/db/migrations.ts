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

  '0004_metric_alerts': {
    async up(db: Kysely<unknown>) {
      // Rules and action groups keep their ARM `properties` as posted (normalised), so GET answers what was PUT.
      for (const table of ['metric_alert_rules', 'action_groups']) {
        await db.schema
          .createTable(table)
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('subscription_id', 'text', (c) => c.notNull())
          .addColumn('resource_group', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('location', 'text', (c) => c.notNull())
          .addColumn('tags', 'text', (c) => c.notNull())
          .addColumn('properties', 'text', (c) => c.notNull())
          .addColumn('etag', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
      }
      // One row per rule and VM in its scope: where the evaluator stands, so a restart neither repeats nor loses.
      await db.schema
        .createTable('alert_states')
        .addColumn('rule_key', 'text', (c) => c.notNull())
        .addColumn('vm_key', 'text', (c) => c.notNull())
        .addColumn('alert_id', 'text')
        .addColumn('clean_count', 'integer', (c) => c.notNull())
        .addColumn('last_evaluated', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('alert_states_pk', ['rule_key', 'vm_key'])
        .execute();
      await db.schema
        .createTable('alerts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('rule_key', 'text', (c) => c.notNull())
        .addColumn('vm_key', 'text', (c) => c.notNull())
        .addColumn('subscription_id', 'text', (c) => c.notNull())
        .addColumn('monitor_condition', 'text', (c) => c.notNull())
        .addColumn('severity', 'integer', (c) => c.notNull())
        .addColumn('fired_at', 'text', (c) => c.notNull())
        .addColumn('resolved_at', 'text')
        .addColumn('event', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('alerts_fired_at').on('alerts').column('fired_at').execute();
      // The outbox of notifications: written with the alert change in one transaction, sent and retried from here.
      await db.schema
        .createTable('deliveries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('action_group_key', 'text', (c) => c.notNull())
        .addColumn('alert_id', 'text')
        .addColumn('notification_id', 'text')
        .addColumn('monitor_condition', 'text')
        .addColumn('receiver_name', 'text', (c) => c.notNull())
        .addColumn('receiver_kind', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('next_attempt_at', 'bigint')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('deliveries_due').on('deliveries').columns(['status', 'next_attempt_at']).execute();
      await db.schema
        .createIndex('deliveries_group')
        .on('deliveries')
        .columns(['action_group_key', 'created_at'])
        .execute();
      await db.schema
        .createTable('delivery_attempts')
        .addColumn('delivery_id', 'text', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('duration_ms', 'integer', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('http_status', 'integer')
        .addColumn('error', 'text')
        .addPrimaryKeyConstraint('delivery_attempts_pk', ['delivery_id', 'attempt'])
        .execute();
      // The evaluator reads one metric's window for every VM at once.
      await db.schema
        .createIndex('metric_samples_metric_time')
        .on('metric_samples')
        .columns(['metric', 'time'])
        .execute();
      await db.schema
        .createIndex('metric_rollups_metric_minute')
        .on('metric_rollups')
        .columns(['metric', 'minute'])
        .execute();
      // Things done once per database, such as the starter rule.
      await db.schema
        .createTable('settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },

  '0005_capture_on_alert': {
    async up(db: Kysely<unknown>) {
      // One row per alert the capture function received, from receipt to notification; `dedup_key` makes a repeated
      // delivery of the same alert find its first row instead of starting a second capture.
      await db.schema
        .createTable('capture_jobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('dedup_key', 'text', (c) => c.notNull().unique())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('condition', 'text', (c) => c.notNull())
        .addColumn('rule_name', 'text', (c) => c.notNull())
        .addColumn('vm_id', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('message', 'text')
        .addColumn('deliveries', 'integer', (c) => c.notNull())
        .addColumn('alert', 'text', (c) => c.notNull())
        .addColumn('watcher', 'text')
        .addColumn('capture_name', 'text')
        .addColumn('capture', 'text')
        .addColumn('notifications', 'text', (c) => c.notNull())
        .addColumn('received_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('capture_jobs_vm').on('capture_jobs').columns(['vm_id', 'received_at']).execute();
      await db.schema.createIndex('capture_jobs_status').on('capture_jobs').column('status').execute();
    },
  },

  '0006_flight_recorder': {
    async up(db: Kysely<unknown>) {
      // A VM's flight recorder: its settings (from the API) and the state its agent last reported, both JSON.
      await db.schema.alterTable('vms').addColumn('flight_recorder', 'text').execute();
      await db.schema.alterTable('vms').addColumn('flight_recorder_status', 'text').execute();
    },
  },

  '0007_alert_life': {
    async up(db: Kysely<unknown>) {
      // A capture follows its alert's life: re-fires extend it, Resolved ends it after a tail. What the function
      // needs to stop it at the right time after a restart, and why it ended.
      const columns: Array<[string, 'text' | 'integer']> = [
        ['last_fired_at', 'text'],
        ['resolved_at', 'text'],
        ['capture_started_at', 'text'],
        ['stop_reason', 'text'],
        ['capture_job_id', 'text'],
      ];
      for (const [name, type] of columns) {
        await db.schema.alterTable('capture_jobs').addColumn(name, type).execute();
      }
      await db.schema
        .alterTable('capture_jobs')
        .addColumn('extensions', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      // A job from before this migration last fired when it was received.
      await (db as Kysely<{ capture_jobs: { last_fired_at: string | null; received_at: string } }>)
        .updateTable('capture_jobs')
        .set((eb) => ({ last_fired_at: eb.ref('received_at') }))
        .execute();
    },
  },
};
