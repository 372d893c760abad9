export { createDatabase, type Database, type DatabaseOptions } from './database.js';
export type * from './schema.js';
