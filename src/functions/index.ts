export { hostPart, MAX_ALERTS_PER_BODY, parseAlertPayload } from './alert-sources.js';
export { resolveTarget } from './resolve-target.js';
export * from './types.js';
