import { badRequest } from '../lib/errors.js';
import { isObject } from '../lib/json.js';
import type { FlightRecorderReport, FlightRecorderSettings } from './agent-protocol.js';
import { MAX_SNAPLEN } from './parameters.js';

/** Defaults and ranges of a VM's flight recorder (tripcap's extension; Azure has no such thing). */
export const FLIGHT_RECORDER_LIMITS = Object.freeze({
  snaplen: { min: 64, max: MAX_SNAPLEN, default: 128 },
  maxBytes: { min: 4_000_000, max: 1_000_000_000_000, default: 256_000_000 },
  maxAgeSeconds: { min: 10, max: 86_400, default: 900 },
  minFreeBytes: { min: 0, max: 1_000_000_000_000, default: 1_000_000_000 },
});

/** Validates `{ properties: { enabled, snaplen?, maxBytes?, maxAgeSeconds?, minFreeBytes? } }`; defaults filled in. */
export function parseFlightRecorderBody(body: unknown): FlightRecorderSettings {
  const p = isObject(body) ? body.properties : undefined;
  if (!isObject(p)) {
    throw badRequest(
      'InvalidRequestFormat',
      'The body must be { "properties": { "enabled": true, … } }.',
      'properties',
    );
  }
  if (typeof p.enabled !== 'boolean') {
    throw badRequest('InvalidFlightRecorder', 'properties.enabled must be true or false.', 'properties.enabled');
  }
  const settings: FlightRecorderSettings = {
    enabled: p.enabled,
    snaplen: 0,
    maxBytes: 0,
    maxAgeSeconds: 0,
    minFreeBytes: 0,
  };
  for (const [key, { min, max, default: fallback }] of Object.entries(FLIGHT_RECORDER_LIMITS)) {
    const value = p[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw badRequest(
        'InvalidFlightRecorder',
        `properties.${key} must be a whole number from ${min} to ${max}, not ${JSON.stringify(p[key])?.slice(0, 50)}.`,
        `properties.${key}`,
      );
    }
    settings[key as keyof typeof FLIGHT_RECORDER_LIMITS] = value;
  }
  return settings;
}

/** The flight recorder child resource of a VM, as the API shows it. */
export function flightRecorderView(
  vmId: string,
  settings: FlightRecorderSettings | null,
  status: FlightRecorderReport | null,
) {
  return {
    id: `${vmId}/flightRecorder/default`,
    name: 'default',
    type: 'Tripcap/flightRecorder',
    properties: {
      ...(settings ?? { enabled: false }),
      // What the agent last reported; null until it has.
      status,
    },
  };
}
