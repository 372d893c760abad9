import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Database } from '../db/index.js';
import { isoNow } from '../lib/time.js';

export const ROLES = ['reader', 'operator', 'contributor', 'admin', 'agent', 'function'] as const;
export type Role = (typeof ROLES)[number];

export type Permission =
  | 'read' // GET on resources
  | 'capture:write' // create, stop and delete packet captures
  | 'resource:write' // watchers, VMs and other resources
  | 'pcap:download' // raw capture files: they hold payloads, so reading them is its own right
  | 'token:admin' // create and revoke tokens
  | 'agent:enroll' // register a new agent
  | 'agent' // the agent protocol, for one agent's own jobs
  | 'function:invoke'; // POST an alert to the capture function (function keys)

const GRANTS: Record<Role, Permission[]> = {
  reader: ['read'],
  operator: ['read', 'capture:write'],
  contributor: ['read', 'capture:write', 'resource:write', 'pcap:download'],
  admin: ['read', 'capture:write', 'resource:write', 'pcap:download', 'token:admin', 'agent:enroll'],
  agent: ['agent'],
  // A function key sits in action groups' URLs: it may post alerts and nothing else.
  function: ['function:invoke'],
};

export function roleCan(role: Role, permission: Permission): boolean {
  return GRANTS[role].includes(permission);
}

export interface Principal {
  tokenId: string;
  name: string;
  role: Role;
}

// Token format: tct_<id>_<secret>. The id finds the row; only a SHA-256 of the secret is stored.
const TOKEN = /^tct_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest();

export async function createToken(
  db: Database,
  options: { name: string; role: Role },
): Promise<{ id: string; token: string }> {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  await db
    .insertInto('tokens')
    .values({
      id,
      name: options.name,
      role: options.role,
      secret_hash: hashSecret(secret).toString('hex'),
      created_at: isoNow(),
      revoked_at: null,
    })
    .execute();
  return { id, token: `tct_${id}_${secret}` };
}

export async function verifyToken(db: Database, token: string): Promise<Principal | null> {
  const [, id, secret] = TOKEN.exec(token) ?? [];
  if (!id || !secret) return null;
  const row = await db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || row.revoked_at) return null;
  const expected = Buffer.from(row.secret_hash, 'hex');
  const actual = hashSecret(secret);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return null;
  return { tokenId: row.id, name: row.name, role: row.role as Role };
}

export async function revokeToken(db: Database, id: string): Promise<boolean> {
  const result = await db
    .updateTable('tokens')
    .set({ revoked_at: isoNow() })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
