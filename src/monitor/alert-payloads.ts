import { createHash } from 'node:crypto';
import { escapeHtml } from '../lib/html.js';
import type { EmailMessage } from '../notify/email.js';
import type { AlertEvent, CriterionOutcome } from './alert-event.js';

/**
 * The bodies Azure Monitor sends for a metric alert, written from an AlertEvent: the common alert schema and the
 * older `AzureMonitorMetricAlert` schema (same keys, types and order as Microsoft's published samples), and an
 * e-mail in the spirit of Azure's alert mails.
 */

const VM_RESOURCE_TYPE = 'Microsoft.Compute/virtualMachines';

/** Azure lists the criteria that were met when an alert fires, and all of them when it resolves. */
function listedCriteria(event: AlertEvent): CriterionOutcome[] {
  return event.monitorCondition === 'Fired' ? event.criteria.filter((c) => c.met) : event.criteria;
}

function criterionBody(event: AlertEvent, c: CriterionOutcome) {
  return {
    ...(c.dynamic
      ? {
          alertSensitivity: c.dynamic.alertSensitivity,
          failingPeriods: c.dynamic.failingPeriods,
          ignoreDataBefore: c.dynamic.ignoreDataBefore,
        }
      : {}),
    metricName: c.metricName,
    metricNamespace: c.metricNamespace,
    operator: c.operator,
    // Azure sends the threshold as a string and the value as a number.
    threshold: String(c.threshold),
    timeAggregation: c.timeAggregation,
    dimensions: [{ name: 'ResourceId', value: event.target.vmGuid }],
    metricValue: c.metricValue,
  };
}

/** Azure's `{subscription}_{resourceGroup}_microsoft.insights_metricAlerts_{rule}_{signed 32-bit hash}`. */
function originAlertId(event: AlertEvent): string {
  const hash = createHash('sha256').update(event.target.id.toLowerCase()).digest().readInt32BE(0);
  return `${event.rule.subscriptionId}_${event.rule.resourceGroup}_microsoft.insights_metricAlerts_${event.rule.name}_${hash}`;
}

function customProperties(event: AlertEvent): Record<string, string> | null {
  return Object.keys(event.rule.webHookProperties).length > 0 ? event.rule.webHookProperties : null;
}

export function commonAlertSchema(event: AlertEvent) {
  const custom = customProperties(event);
  return {
    schemaId: 'azureMonitorCommonAlertSchema',
    data: {
      essentials: {
        alertId: `/subscriptions/${event.rule.subscriptionId}/providers/Microsoft.AlertsManagement/alerts/${event.alertId}`,
        alertRule: event.rule.name,
        severity: `Sev${event.rule.severity}`,
        signalType: 'Metric',
        monitorCondition: event.monitorCondition,
        monitoringService: 'Platform',
        // Azure lower-cases the target id and names the configuration item after it.
        alertTargetIDs: [event.target.id.toLowerCase()],
        configurationItems: [event.target.name.toLowerCase()],
        originAlertId: originAlertId(event),
        firedDateTime: event.firedDateTime,
        ...(event.monitorCondition === 'Resolved' && event.resolvedDateTime
          ? { resolvedDateTime: event.resolvedDateTime }
          : {}),
        description: event.rule.description,
        essentialsVersion: '1.0',
        alertContextVersion: '1.0',
      },
      alertContext: {
        properties: custom,
        conditionType: event.rule.conditionType,
        condition: {
          windowSize: event.rule.windowSize,
          allOf: listedCriteria(event).map((c) => criterionBody(event, c)),
          windowStartTime: event.windowStartTime,
          windowEndTime: event.windowEndTime,
        },
      },
      ...(custom ? { customProperties: custom } : {}),
    },
  };
}

export function metricAlertSchema(event: AlertEvent) {
  const fired = event.monitorCondition === 'Fired';
  return {
    schemaId: 'AzureMonitorMetricAlert',
    data: {
      version: '2.0',
      properties: event.rule.webHookProperties,
      status: fired ? 'Activated' : 'Deactivated',
      context: {
        timestamp: fired ? event.firedDateTime : (event.resolvedDateTime ?? event.windowEndTime),
        id: event.rule.id,
        name: event.rule.name,
        description: event.rule.description,
        conditionType: event.rule.conditionType,
        severity: String(event.rule.severity),
        condition: {
          windowSize: event.rule.windowSize,
          allOf: listedCriteria(event).map((c) => ({ ...criterionBody(event, c), webTestName: null })),
        },
        subscriptionId: event.target.subscriptionId,
        resourceGroupName: event.target.resourceGroup,
        resourceName: event.target.name,
        resourceType: VM_RESOURCE_TYPE,
        resourceId: event.target.id,
        portalLink: `https://portal.azure.com/#resource${event.target.id}`,
      },
    },
  };
}

export function emailMessage(event: AlertEvent): EmailMessage {
  const subject = `${event.monitorCondition}: Sev${event.rule.severity} Azure Monitor Alert ${event.rule.name} on ${event.target.name}`;
  const facts: Array<[string, string]> = [
    ['Alert rule', event.rule.name],
    ['Severity', `Sev${event.rule.severity}`],
    ['Monitor condition', event.monitorCondition],
    ['Affected resource', event.target.id],
    ['Description', event.rule.description || '(none)'],
    ['Fired at (UTC)', event.firedDateTime],
    ...(event.resolvedDateTime ? [['Resolved at (UTC)', event.resolvedDateTime] as [string, string]] : []),
    ['Window (UTC)', `${event.windowStartTime} to ${event.windowEndTime} (${event.rule.windowSize})`],
    ['Alert id', event.alertId],
  ];
  const criteria = listedCriteria(event).map((c) => ({
    metric: `${c.timeAggregation} ${c.metricName}`,
    value: c.metricValue === null ? 'no data' : String(c.metricValue),
    condition: `${c.operator} ${c.threshold}${c.dynamic ? ` (dynamic, ${c.dynamic.alertSensitivity} sensitivity)` : ''}`,
    met: c.met ? 'yes' : 'no',
  }));
  const text = [
    subject,
    '',
    ...facts.map(([name, value]) => `${name}: ${value}`),
    '',
    'Criteria:',
    ...criteria.map(
      (c) => `- ${c.metric} over ${event.rule.windowSize}: value ${c.value}, condition ${c.condition}, met: ${c.met}`,
    ),
    '',
    'Sent by tripcap.',
  ].join('\n');
  const e = escapeHtml;
  const html = [
    '<!doctype html><html><body style="font-family:sans-serif">',
    `<h2>${e(subject)}</h2>`,
    '<table>',
    ...facts.map(([name, value]) => `<tr><th align="left">${e(name)}</th><td>${e(value)}</td></tr>`),
    '</table>',
    '<h3>Criteria</h3>',
    '<table border="1" cellpadding="4" style="border-collapse:collapse">',
    '<tr><th>Metric</th><th>Window</th><th>Value</th><th>Condition</th><th>Met</th></tr>',
    ...criteria.map(
      (c) =>
        `<tr><td>${e(c.metric)}</td><td>${e(event.rule.windowSize)}</td><td>${e(c.value)}</td><td>${e(c.condition)}</td><td>${e(c.met)}</td></tr>`,
    ),
    '</table>',
    '<p>Sent by tripcap.</p>',
    '</body></html>',
  ].join('\n');
  return { subject, text, html };
}
