import { badRequest } from './errors.js';

/** A JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** ARM `tags`: at most 50, names up to 512 characters, string values up to 256; missing means none. */
export function parseTags(value: unknown, target = 'tags'): Record<string, string> {
  if (value === undefined || value === null) return {};
  const refuse = (where: string, message: string) => badRequest('InvalidTags', message, where);
  if (!isObject(value)) throw refuse(target, `'${target}' must be an object of string values.`);
  const entries = Object.entries(value);
  if (entries.length > 50) throw refuse(target, `'${target}' has ${entries.length} tags: Azure allows at most 50.`);
  for (const [key, tag] of entries) {
    if (key.length > 512) throw refuse(`${target}.${key.slice(0, 40)}`, 'A tag name is longer than 512 characters.');
    if (typeof tag !== 'string' || tag.length > 256) {
      throw refuse(`${target}.${key}`, `Tag '${key}' must be a string of at most 256 characters.`);
    }
  }
  return value as Record<string, string>;
}
