/**
 * A metric alert rule's ARM `properties` (Microsoft.Insights/metricAlerts), validated and normalised. Every refusal
 * is a 400 whose `target` is the property path and whose message says what is accepted.
 */
import { formatDuration, parseDuration, parseInstant } from '../lib/duration.js';
import { badRequest } from '../lib/errors.js';
import { isObject } from '../lib/json.js';
import {
  DYNAMIC_OPERATORS,
  type DynamicOperator,
  OPERATORS,
  SENSITIVITIES,
  type Sensitivity,
  type StaticOperator,
  TIME_AGGREGATIONS,
  type TimeAggregation,
} from './alert-event.js';
import { HOST_METRICS, hostMetric } from './host-metrics.js';

export const VM_NAMESPACE = 'Microsoft.Compute/virtualMachines';
export const SINGLE_RESOURCE = 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria';
export const MULTIPLE_RESOURCE = 'Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria';

/** Azure's evaluation frequencies, and below a minute tripcap's extension (agents sample every second). */
export const FREQUENCIES = ['PT10S', 'PT15S', 'PT20S', 'PT30S', 'PT1M', 'PT5M', 'PT15M', 'PT30M', 'PT1H'];
/** Azure's window sizes (aggregation granularity): the frequencies and longer ones, with the same extension. */
export const WINDOW_SIZES = [...FREQUENCIES, 'PT6H', 'PT12H', 'P1D'];
const MAX_CRITERIA = 5;
const MAX_SCOPES = 100;
const MAX_ACTIONS = 5;

interface CriterionBase {
  name: string;
  metricName: string;
  metricNamespace: string;
  timeAggregation: TimeAggregation;
  dimensions: [];
  skipMetricValidation: boolean;
}
export interface StaticCriterion extends CriterionBase {
  criterionType: 'StaticThresholdCriterion';
  operator: StaticOperator;
  threshold: number;
}
export interface DynamicCriterion extends CriterionBase {
  criterionType: 'DynamicThresholdCriterion';
  operator: DynamicOperator;
  alertSensitivity: Sensitivity;
  failingPeriods: { numberOfEvaluationPeriods: number; minFailingPeriodsToAlert: number };
  ignoreDataBefore: string | null;
}
export type Criterion = StaticCriterion | DynamicCriterion;

export interface RuleAction {
  actionGroupId: string;
  webHookProperties: Record<string, string>;
}

/** The normalised `properties` as stored and served (without the read-only ones). */
export interface RuleProperties {
  description: string;
  severity: number;
  enabled: boolean;
  scopes: string[];
  evaluationFrequency: string;
  windowSize: string;
  targetResourceType: string;
  targetResourceRegion: string | null;
  criteria: { 'odata.type': string; allOf: Criterion[] };
  autoMitigate: boolean;
  actions: RuleAction[];
}

function fail(target: string, message: string): never {
  throw badRequest('BadRequest', message, target);
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], target: string, what: string): T {
  const found =
    typeof value === 'string' ? allowed.find((a) => a.toLowerCase() === value.trim().toLowerCase()) : undefined;
  if (!found) fail(target, `${what} ${describe(value)} is not valid: use one of ${allowed.join(', ')}.`);
  return found;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value.slice(0, 100)}'`;
  return value === undefined ? '(missing)' : (JSON.stringify(value)?.slice(0, 100) ?? String(value));
}

function optionalString(value: unknown, target: string, max = 2048): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') fail(target, `${target} must be a string.`);
  if (value.length > max) fail(target, `${target} must be at most ${max} characters.`);
  return value;
}

function optionalBoolean(value: unknown, target: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') fail(target, `${target} must be true or false, not ${describe(value)}.`);
  return value;
}

/** A duration from Azure's lists, normalised to its canonical spelling (PT24H → P1D). */
function duration(value: unknown, allowed: readonly string[], target: string): { text: string; ms: number } {
  if (typeof value !== 'string') fail(target, `${target} is required: an ISO-8601 duration such as PT5M.`);
  const ms = parseDuration(value);
  if (ms === null) {
    fail(target, `${target} '${value.slice(0, 50)}' is not an ISO-8601 duration (such as PT1M, PT5M, PT1H).`);
  }
  const text = formatDuration(ms);
  if (!allowed.includes(text)) fail(target, `${target} '${value}' is not supported: use one of ${allowed.join(', ')}.`);
  return { text, ms };
}

function finiteNumber(value: unknown, target: string): number {
  // ARM templates sometimes carry numbers as strings ("threshold": "25" in Azure's own payloads).
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n)) fail(target, `${target} must be a number, not ${describe(value)}.`);
  return n;
}

function integerIn(value: unknown, min: number, max: number, target: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(target, `${target} must be a whole number from ${min} to ${max}, not ${describe(value)}.`);
  }
  return value;
}

function parseCriterion(raw: unknown, i: number, odataType: string): Criterion {
  const t = `properties.criteria.allOf[${i}]`;
  if (!isObject(raw)) fail(t, `${t} must be an object.`);
  const criterionType = oneOf(
    raw.criterionType ?? 'StaticThresholdCriterion',
    ['StaticThresholdCriterion', 'DynamicThresholdCriterion'] as const,
    `${t}.criterionType`,
    'Criterion type',
  );
  if (criterionType === 'DynamicThresholdCriterion' && odataType === SINGLE_RESOURCE) {
    fail(
      `${t}.criterionType`,
      `Dynamic thresholds need criteria of odata.type '${MULTIPLE_RESOURCE}' (as in Azure), not '${SINGLE_RESOURCE}'.`,
    );
  }
  const metricName = typeof raw.metricName === 'string' ? raw.metricName : '';
  const metric = hostMetric(metricName);
  if (!metric) {
    fail(
      `${t}.metricName`,
      `Metric ${describe(raw.metricName)} is not a metric of ${VM_NAMESPACE}: use one of ${HOST_METRICS.map((m) => `'${m.name}'`).join(', ')}.`,
    );
  }
  const namespace = optionalString(raw.metricNamespace, `${t}.metricNamespace`) ?? VM_NAMESPACE;
  if (namespace.toLowerCase() !== VM_NAMESPACE.toLowerCase()) {
    fail(`${t}.metricNamespace`, `Metric namespace '${namespace}' is not served: tripcap has '${VM_NAMESPACE}'.`);
  }
  if (raw.dimensions !== undefined && raw.dimensions !== null) {
    if (!Array.isArray(raw.dimensions)) fail(`${t}.dimensions`, `${t}.dimensions must be an array.`);
    if (raw.dimensions.length > 0) {
      fail(`${t}.dimensions`, `Host metrics have no dimensions: give 'dimensions': [] (each VM is alerted apart).`);
    }
  }
  const base: CriterionBase = {
    name: optionalString(raw.name, `${t}.name`, 256) || `Metric${i + 1}`,
    metricName: metric.name,
    metricNamespace: VM_NAMESPACE,
    timeAggregation: oneOf(raw.timeAggregation, TIME_AGGREGATIONS, `${t}.timeAggregation`, 'Time aggregation'),
    dimensions: [],
    skipMetricValidation: optionalBoolean(raw.skipMetricValidation, `${t}.skipMetricValidation`) ?? false,
  };
  if (criterionType === 'StaticThresholdCriterion') {
    return {
      ...base,
      criterionType,
      operator: oneOf(raw.operator, OPERATORS, `${t}.operator`, 'Operator'),
      threshold: finiteNumber(raw.threshold, `${t}.threshold`),
    };
  }
  const periods = isObject(raw.failingPeriods) ? raw.failingPeriods : {};
  const numberOfEvaluationPeriods = integerIn(
    periods.numberOfEvaluationPeriods ?? 4,
    1,
    6,
    `${t}.failingPeriods.numberOfEvaluationPeriods`,
  );
  const minFailingPeriodsToAlert = integerIn(
    periods.minFailingPeriodsToAlert ?? numberOfEvaluationPeriods,
    1,
    numberOfEvaluationPeriods,
    `${t}.failingPeriods.minFailingPeriodsToAlert`,
  );
  const ignoreText = optionalString(raw.ignoreDataBefore, `${t}.ignoreDataBefore`, 64);
  const ignore = ignoreText === undefined ? null : parseInstant(ignoreText);
  if (ignoreText !== undefined && ignore === null) {
    fail(
      `${t}.ignoreDataBefore`,
      `ignoreDataBefore '${ignoreText}' is not a UTC date-time such as 2026-11-01T00:00:00Z.`,
    );
  }
  return {
    ...base,
    criterionType,
    operator: oneOf(raw.operator, DYNAMIC_OPERATORS, `${t}.operator`, 'Dynamic threshold operator'),
    alertSensitivity: oneOf(raw.alertSensitivity ?? 'Medium', SENSITIVITIES, `${t}.alertSensitivity`, 'Sensitivity'),
    failingPeriods: { numberOfEvaluationPeriods, minFailingPeriodsToAlert },
    ignoreDataBefore: ignore === null ? null : new Date(ignore).toISOString(),
  };
}

function parseActions(raw: unknown): RuleAction[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) fail('properties.actions', 'properties.actions must be an array of { actionGroupId }.');
  if (raw.length > MAX_ACTIONS) fail('properties.actions', `A rule has at most ${MAX_ACTIONS} actions.`);
  return raw.map((a, i) => {
    const t = `properties.actions[${i}]`;
    if (!isObject(a) || typeof a.actionGroupId !== 'string' || !/^\/subscriptions\//i.test(a.actionGroupId)) {
      fail(`${t}.actionGroupId`, `${t}.actionGroupId must be an action group's resource id.`);
    }
    // ARM spells it webHookProperties; some templates write webhookProperties.
    const props = a.webHookProperties ?? a.webhookProperties ?? {};
    if (!isObject(props) || Object.values(props).some((v) => typeof v !== 'string')) {
      fail(`${t}.webHookProperties`, `${t}.webHookProperties must be an object of string values.`);
    }
    if (Object.keys(props).length > 20) fail(`${t}.webHookProperties`, 'At most 20 webHookProperties.');
    return { actionGroupId: a.actionGroupId, webHookProperties: props as Record<string, string> };
  });
}

/** Validates and normalises a rule's `properties`; `scopes` are checked for shape here and resolved elsewhere. */
export function parseRuleProperties(body: unknown): RuleProperties & { windowMs: number; frequencyMs: number } {
  const p = isObject(body) ? body.properties : undefined;
  if (!isObject(p)) {
    fail('properties', 'The body must be a JSON object with a "properties" object holding the metric alert rule.');
  }
  const frequency = duration(p.evaluationFrequency, FREQUENCIES, 'properties.evaluationFrequency');
  const window = duration(p.windowSize, WINDOW_SIZES, 'properties.windowSize');
  if (window.ms < frequency.ms) {
    fail(
      'properties.windowSize',
      `windowSize ${window.text} is shorter than evaluationFrequency ${frequency.text}: the window must be at least as long as the frequency.`,
    );
  }
  if (!Array.isArray(p.scopes) || p.scopes.length === 0 || p.scopes.some((s) => typeof s !== 'string')) {
    fail(
      'properties.scopes',
      'properties.scopes must be a non-empty array of resource ids (VMs, resource groups or a subscription).',
    );
  }
  if (p.scopes.length > MAX_SCOPES) fail('properties.scopes', `A rule has at most ${MAX_SCOPES} scopes.`);
  const criteria = isObject(p.criteria) ? p.criteria : undefined;
  if (!criteria) fail('properties.criteria', 'properties.criteria is required: { "odata.type", "allOf": [ … ] }.');
  const odataType = oneOf(
    criteria['odata.type'] ?? MULTIPLE_RESOURCE,
    [SINGLE_RESOURCE, MULTIPLE_RESOURCE] as const,
    'properties.criteria.odata.type',
    'Criteria type',
  );
  if (!Array.isArray(criteria.allOf) || criteria.allOf.length === 0) {
    fail('properties.criteria.allOf', 'properties.criteria.allOf must hold at least one criterion.');
  }
  if (criteria.allOf.length > MAX_CRITERIA) {
    fail('properties.criteria.allOf', `A rule has at most ${MAX_CRITERIA} criteria.`);
  }
  const allOf = criteria.allOf.map((c, i) => parseCriterion(c, i, odataType));
  const names = new Set<string>();
  allOf.forEach((c, i) => {
    if (names.has(c.name.toLowerCase())) {
      fail(`properties.criteria.allOf[${i}].name`, `Criterion name '${c.name}' is used twice in this rule.`);
    }
    names.add(c.name.toLowerCase());
  });
  const targetType = optionalString(p.targetResourceType, 'properties.targetResourceType', 256) ?? VM_NAMESPACE;
  if (targetType.toLowerCase() !== VM_NAMESPACE.toLowerCase()) {
    fail(
      'properties.targetResourceType',
      `targetResourceType '${targetType}' is not supported: tripcap alerts on '${VM_NAMESPACE}'.`,
    );
  }
  const severity = p.severity === undefined ? 3 : integerIn(p.severity, 0, 4, 'properties.severity');
  return {
    description: optionalString(p.description, 'properties.description') ?? '',
    severity,
    enabled: optionalBoolean(p.enabled, 'properties.enabled') ?? true,
    scopes: p.scopes as string[],
    evaluationFrequency: frequency.text,
    windowSize: window.text,
    targetResourceType: VM_NAMESPACE,
    targetResourceRegion:
      optionalString(p.targetResourceRegion, 'properties.targetResourceRegion', 64)?.toLowerCase() ?? null,
    criteria: { 'odata.type': odataType, allOf },
    autoMitigate: optionalBoolean(p.autoMitigate, 'properties.autoMitigate') ?? true,
    actions: parseActions(p.actions),
    windowMs: window.ms,
    frequencyMs: frequency.ms,
  };
}

/** The condition type Azure writes into alert payloads for a rule. */
export function conditionTypeOf(properties: RuleProperties): string {
  if (properties.criteria.allOf.some((c) => c.criterionType === 'DynamicThresholdCriterion')) {
    return 'DynamicThresholdCriteria';
  }
  return properties.criteria['odata.type'] === SINGLE_RESOURCE
    ? 'SingleResourceMultipleMetricCriteria'
    : 'MultipleResourceMultipleMetricCriteria';
}
