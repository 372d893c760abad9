/**
 * The host metrics agents send, with Azure's names, units and meaning for a VM's host metrics
 * (`Microsoft.Compute/virtualMachines`). `Network Packets In`/`Out` are tripcap's own: Azure has no packet counts.
 */
export interface HostMetricDefinition {
  name: string;
  localizedName: string;
  unit: 'Bytes' | 'Percent' | 'Count';
  /** The aggregation Azure shows this metric with by default. */
  primaryAggregation: 'Average' | 'Total';
  description: string;
}

export const HOST_METRICS: readonly HostMetricDefinition[] = [
  {
    name: 'Percentage CPU',
    localizedName: 'Percentage CPU',
    unit: 'Percent',
    primaryAggregation: 'Average',
    description: 'The percentage of allocated compute units that are currently in use by the Virtual Machine(s).',
  },
  {
    name: 'Network In Total',
    localizedName: 'Network In Total',
    unit: 'Bytes',
    primaryAggregation: 'Total',
    description: 'The number of bytes received on all network interfaces by the Virtual Machine(s) (Incoming Traffic).',
  },
  {
    name: 'Network Out Total',
    localizedName: 'Network Out Total',
    unit: 'Bytes',
    primaryAggregation: 'Total',
    description: 'The number of bytes out on all network interfaces by the Virtual Machine(s) (Outgoing Traffic).',
  },
  {
    name: 'Network Packets In',
    localizedName: 'Network Packets In',
    unit: 'Count',
    primaryAggregation: 'Total',
    description: 'The number of packets received on all network interfaces but loopback (tripcap metric).',
  },
  {
    name: 'Network Packets Out',
    localizedName: 'Network Packets Out',
    unit: 'Count',
    primaryAggregation: 'Total',
    description: 'The number of packets sent on all network interfaces but loopback (tripcap metric).',
  },
  {
    name: 'Available Memory Bytes',
    localizedName: 'Available Memory Bytes',
    unit: 'Bytes',
    primaryAggregation: 'Average',
    description:
      'Amount of physical memory, in bytes, immediately available for allocation to a process or for system use in the Virtual Machine.',
  },
];

const BY_NAME = new Map(HOST_METRICS.map((m) => [m.name.toLowerCase(), m]));

/** The definition of a metric by name (case-insensitive, as Azure compares them), or undefined. */
export function hostMetric(name: string): HostMetricDefinition | undefined {
  return BY_NAME.get(name.trim().toLowerCase());
}

export type { MetricSample } from '../watcher/agent-protocol.js';
