import type { Generated } from 'kysely';

/** Times are UTC ISO-8601 strings; JSON columns hold serialised objects (SQLite has no JSON type). */
export interface TokensTable {
  id: string;
  name: string;
  role: string;
  secret_hash: string;
  created_at: string;
  revoked_at: string | null;
}

export interface AgentsTable {
  id: string;
  token_id: string;
  vm_key: string;
  hostname: string;
  version: string;
  capture_root: string;
  registered_at: string;
  last_seen_at: string;
}

export interface VmsTable {
  key: string;
  id: string;
  subscription_id: string;
  resource_group: string;
  name: string;
  location: string;
  os_type: string;
  nics: string;
  agent_id: string | null;
  created_at: string;
  updated_at: string;
  /** FlightRecorderSettings JSON, or null when never set. */
  flight_recorder: string | null;
  /** FlightRecorderReport JSON from the agent's last heartbeat, or null. */
  flight_recorder_status: string | null;
}

export interface NetworkWatchersTable {
  key: string;
  id: string;
  subscription_id: string;
  resource_group: string;
  name: string;
  location: string;
  tags: string;
  etag: string;
  created_at: string;
}

export interface PacketCapturesTable {
  /** Lower-cased ARM id; a deleted capture's key gets a suffix so its name can be reused while its files stay. */
  key: string;
  id: string;
  name: string;
  /** The opaque id agents know the capture by. */
  job_id: string;
  subscription_id: string;
  watcher_key: string;
  location: string;
  target_key: string;
  agent_id: string | null;
  properties: string;
  bpf: string;
  provisioning_state: string;
  status: string;
  desired_state: string;
  stop_reason: string | null;
  errors: string;
  capture_start_time: string | null;
  capture_end_time: string | null;
  progress: string;
  etag: string;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

export interface CaptureFilesTable {
  capture_key: string;
  seq: number;
  blob_name: string;
  local_path: string | null;
  size: number;
  packets: number;
  kernel_drops: number;
  sha256: string;
  first_packet_time: string | null;
  last_packet_time: string | null;
  uploaded_at: string;
}

export interface OperationsTable {
  id: string;
  resource_key: string;
  kind: string;
  status: string;
  error: string | null;
  created_at: string;
  ended_at: string | null;
}

/** The analysis of a capture's uploaded files, redone when another file arrives. */
export interface CaptureReportsTable {
  job_id: string;
  /** Pending | Running | Succeeded | Failed */
  status: string;
  report: string | null;
  error: string | null;
  updated_at: string;
}

/** One host metric sample as the agent sent it; `time` in epoch milliseconds (UTC). */
export interface MetricSamplesTable {
  vm_key: string;
  metric: string;
  time: number;
  value: number;
}

/** The samples of one VM, metric and UTC minute (`minute`: epoch milliseconds of its start). */
export interface MetricRollupsTable {
  vm_key: string;
  metric: string;
  minute: number;
  count: number;
  sum: number;
  min: number;
  max: number;
}

/** A metric alert rule or an action group: an ARM resource whose `properties` JSON is kept as normalised. */
export interface ArmResourceTable {
  key: string;
  id: string;
  subscription_id: string;
  resource_group: string;
  name: string;
  location: string;
  tags: string;
  properties: string;
  etag: string;
  created_at: string;
  updated_at: string;
}

/** Where a rule stands for one VM in its scope. */
export interface AlertStatesTable {
  rule_key: string;
  vm_key: string;
  /** The alert currently Fired (stateful rules), or null. */
  alert_id: string | null;
  /** Consecutive evaluations without the condition since the alert fired (3 resolve it). */
  clean_count: number;
  /** Epoch ms of the last evaluation time (window end) done for this VM. */
  last_evaluated: number;
}

/** An alert instance: one rule and one VM, from Fired to Resolved. `event` is the AlertEvent JSON. */
export interface AlertsTable {
  id: string;
  rule_key: string;
  vm_key: string;
  subscription_id: string;
  /** Fired | Resolved */
  monitor_condition: string;
  severity: number;
  fired_at: string;
  resolved_at: string | null;
  event: string;
}

/** One notification to one receiver of an action group. */
export interface DeliveriesTable {
  id: string;
  action_group_key: string;
  alert_id: string | null;
  /** Set for "test action group" notifications. */
  notification_id: string | null;
  /** Fired | Resolved: the alert change this notification tells of. */
  monitor_condition: string | null;
  receiver_name: string;
  /** webhook | azureFunction | email */
  receiver_kind: string;
  /** URL (webhooks, functions) or e-mail address. */
  target: string;
  /** The exact body (JSON) or e-mail message (JSON of subject/text/html) to send. */
  payload: string;
  /** Pending | Sending | Succeeded | Failed */
  status: string;
  attempts: number;
  /** Epoch ms of the next attempt while Pending. */
  next_attempt_at: number | null;
  created_at: string;
  updated_at: string;
}

export interface DeliveryAttemptsTable {
  delivery_id: string;
  attempt: number;
  started_at: string;
  duration_ms: number;
  /** Succeeded | Retry | Failed */
  outcome: string;
  http_status: number | null;
  error: string | null;
}

export interface SettingsTable {
  key: string;
  value: string;
}

/** An alert received by the capture function and what came of it. JSON columns: see src/functions/capture-function.ts. */
export interface CaptureJobsTable {
  id: string;
  dedup_key: string;
  source: string;
  /** Fired | Resolved */
  condition: string;
  rule_name: string;
  vm_id: string | null;
  /**
   * Creating | Capturing | Notifying | Completed | Failed | Rejected | AlreadyCapturing | CoolingDown | LimitReached |
   * Recorded | Extended
   */
  status: string;
  /** Why it ended as it did (a code such as TargetNotFound, LimitReached). */
  reason: string | null;
  message: string | null;
  /** How many times this alert was delivered (repeats are counted here). */
  deliveries: number;
  alert: string;
  watcher: string | null;
  capture_name: string | null;
  capture: string | null;
  notifications: string;
  received_at: string;
  updated_at: string;
  /** The job's last Fired alert (its own, or one that extended it): the capture runs until this plus its duration. */
  last_fired_at: string | null;
  /** A Resolved alert of the job arrived: the capture stops this plus the tail later (a re-fire clears it). */
  resolved_at: string | null;
  /** When the function created the capture (its hard cap counts from here). */
  capture_started_at: string | null;
  /**
   * Why the capture ended: AlertQuiet | Resolved | MaxDuration | TotalBytesExceeded | StoppedElsewhere | CaptureFailed
   * (or the capture's own reason). Set before the function stops the capture, so a restart knows it asked.
   */
  stop_reason: string | null;
  /** Extended and Resolved rows: the capturing job they extended or ended. */
  capture_job_id: string | null;
  /** How many firings extended this job's capture. */
  extensions: Generated<number>;
}

export interface Schema {
  tokens: TokensTable;
  agents: AgentsTable;
  vms: VmsTable;
  network_watchers: NetworkWatchersTable;
  packet_captures: PacketCapturesTable;
  capture_files: CaptureFilesTable;
  operations: OperationsTable;
  capture_reports: CaptureReportsTable;
  metric_samples: MetricSamplesTable;
  metric_rollups: MetricRollupsTable;
  metric_alert_rules: ArmResourceTable;
  action_groups: ArmResourceTable;
  alert_states: AlertStatesTable;
  alerts: AlertsTable;
  deliveries: DeliveriesTable;
  delivery_attempts: DeliveryAttemptsTable;
  settings: SettingsTable;
  capture_jobs: CaptureJobsTable;
  schema_version?: { version: Generated<number> };
}
