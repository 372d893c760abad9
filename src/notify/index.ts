export * from './email.js';
export * from './webhook.js';
