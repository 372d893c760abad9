export * from './action-groups.js';
export * from './alert-payloads.js';
export * from './host-metrics.js';
export * from './metrics-query.js';
export * from './metrics-store.js';
