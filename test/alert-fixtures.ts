/**
 * Every alert sample tripcap reads (test/fixtures), turned into a deliverable Fired body aimed at one VM, for tests
 * that drive capture-on-alert end to end. Each entry parses to exactly one Fired alert that resolves to that VM.
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import type { AlertSource } from '../src/functions/types.js';
import { parseVmId } from '../src/lib/arm-id.js';
import { dynamicFragment, fullCommon, nonCommon, staticFragment } from './alert-samples.js';

const ALERTS = new URL('./fixtures/alerts/', import.meta.url);
const sample = (name: string) => JSON.parse(readFileSync(new URL(name, ALERTS), 'utf8')) as Json;
export const classicSample = sample('azure-classic-metric-alert-webhook.json');
export const alertmanagerSample = sample('alertmanager-webhook-example.json');
export const grafanaSample = sample('grafana-webhook-example.json');

// biome-ignore lint/suspicious/noExplicitAny: samples are edited in place by path, their shape is the fixture's.
type Json = any;

export interface AlertSampleVm {
  id: string;
  name: string;
  address: string;
}

export function alertSamples(vm: AlertSampleVm): Array<{ name: string; source: AlertSource; body: unknown }> {
  const ref = parseVmId(vm.id);
  if (!ref) throw new Error(`alertSamples: '${vm.id}' is not a VM resource id`);
  // Azure delivers resource ids lower-cased.
  const targetId = vm.id.toLowerCase();
  const instance = `${isIPv6(vm.address) ? `[${vm.address}]` : vm.address}:9100`;

  // Each common-schema entry has its own alert id, so delivering them all starts one capture each.
  const common = (alertNumber: number, alertContext: unknown) => {
    const body = copy(fullCommon);
    const essentials = body.data.essentials;
    essentials.alertId = `/subscriptions/${ref.subscriptionId}/providers/Microsoft.AlertsManagement/alerts/00000000-0000-4000-8000-00000000000${alertNumber}`;
    essentials.monitorCondition = 'Fired';
    essentials.alertTargetIDs = [targetId];
    essentials.configurationItems = [vm.name.toLowerCase()];
    delete essentials.resolvedDateTime;
    body.data.alertContext = copy(alertContext);
    return body;
  };

  const metricAlert = copy(nonCommon);
  metricAlert.data.status = 'Activated';
  Object.assign(metricAlert.data.context, azureContext(vm, ref.subscriptionId, ref.resourceGroup));

  const classic = copy(classicSample);
  classic.status = 'Activated';
  Object.assign(classic.context, azureContext(vm, ref.subscriptionId, ref.resourceGroup));

  const labelled = (body: Json) => {
    const out = copy(body);
    out.status = 'firing';
    out.alerts = [{ ...out.alerts[0], status: 'firing', labels: { ...out.alerts[0].labels, instance } }];
    return out;
  };

  const contextOf = (fragment: Json) => fragment.alertContext;
  return [
    {
      name: 'azure common schema (full sample)',
      source: 'azure-common',
      body: common(1, contextOf(copy(fullCommon).data)),
    },
    {
      name: 'azure common schema (static threshold)',
      source: 'azure-common',
      body: common(2, contextOf(staticFragment)),
    },
    {
      name: 'azure common schema (dynamic threshold)',
      source: 'azure-common',
      body: common(3, contextOf(dynamicFragment)),
    },
    { name: 'AzureMonitorMetricAlert', source: 'azure-metric-alert', body: metricAlert },
    { name: 'classic metric alert webhook', source: 'azure-classic', body: classic },
    { name: 'Alertmanager webhook v4', source: 'alertmanager', body: labelled(alertmanagerSample) },
    { name: 'Grafana webhook', source: 'grafana', body: labelled(grafanaSample) },
  ];
}

function azureContext(vm: AlertSampleVm, subscriptionId: string, resourceGroup: string) {
  return {
    subscriptionId,
    resourceGroupName: resourceGroup,
    resourceName: vm.name,
    resourceType: 'Microsoft.Compute/virtualMachines',
    resourceId: vm.id.toLowerCase(),
    portalLink: `https://portal.azure.com/#resource${vm.id}`,
  };
}

function copy(value: unknown): Json {
  return structuredClone(value);
}
