/**
 * What the evaluator decided about one rule and one VM: the facts every outgoing payload (common alert schema,
 * AzureMonitorMetricAlert schema, e-mail) is written from. Stored with the alert, so a restart sends the same thing.
 */

export type MonitorCondition = 'Fired' | 'Resolved';

export const OPERATORS = [
  'Equals',
  'NotEquals',
  'GreaterThan',
  'GreaterThanOrEqual',
  'LessThan',
  'LessThanOrEqual',
] as const;
export type StaticOperator = (typeof OPERATORS)[number];
export const DYNAMIC_OPERATORS = ['GreaterThan', 'LessThan', 'GreaterOrLessThan'] as const;
export type DynamicOperator = (typeof DYNAMIC_OPERATORS)[number];

export const TIME_AGGREGATIONS = ['Average', 'Minimum', 'Maximum', 'Total', 'Count'] as const;
export type TimeAggregation = (typeof TIME_AGGREGATIONS)[number];

export const SENSITIVITIES = ['Low', 'Medium', 'High'] as const;
export type Sensitivity = (typeof SENSITIVITIES)[number];

/** One criterion of the rule with the value the window had. */
export interface CriterionOutcome {
  name: string;
  metricName: string;
  metricNamespace: string;
  timeAggregation: TimeAggregation;
  operator: StaticOperator | DynamicOperator;
  /** The static threshold, or the dynamic one computed for this window (the bound that was crossed or nearest). */
  threshold: number;
  /** The window's aggregate; null when the window had no samples. */
  metricValue: number | null;
  /** Whether this criterion was met in this evaluation. */
  met: boolean;
  dynamic?: {
    alertSensitivity: Sensitivity;
    failingPeriods: { numberOfEvaluationPeriods: number; minFailingPeriodsToAlert: number };
    ignoreDataBefore: string | null;
    lowerBound: number;
    upperBound: number;
  };
}

export interface AlertEvent {
  /** The alert instance's GUID (stays the same from Fired to Resolved). */
  alertId: string;
  monitorCondition: MonitorCondition;
  rule: {
    id: string;
    name: string;
    description: string;
    /** 0 (critical) to 4 (verbose). */
    severity: number;
    subscriptionId: string;
    resourceGroup: string;
    /** SingleResourceMultipleMetricCriteria | MultipleResourceMultipleMetricCriteria | DynamicThresholdCriteria */
    conditionType: string;
    /** ISO-8601, as the rule has it. */
    windowSize: string;
    /** The action's `webHookProperties` (customProperties in the common schema); filled per action group. */
    webHookProperties: Record<string, string>;
  };
  target: {
    id: string;
    name: string;
    subscriptionId: string;
    resourceGroup: string;
    /** A stable GUID for the VM: the value of the `ResourceId` dimension in Azure's payloads. */
    vmGuid: string;
    location: string;
  };
  firedDateTime: string;
  resolvedDateTime: string | null;
  /** The window that decided this change. */
  windowStartTime: string;
  windowEndTime: string;
  criteria: CriterionOutcome[];
}
