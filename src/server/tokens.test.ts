import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../db/index.js';
import { createToken, revokeToken, roleCan, verifyToken } from './tokens.js';

describe('tokens', () => {
  let db: Database;
  beforeEach(async () => {
    db = await createDatabase({ file: ':memory:' });
  });
  afterEach(async () => {
    await db.destroy();
  });

  it('verifies a token it created, and stores only a hash of the secret', async () => {
    const { id, token } = await createToken(db, { name: 'ops', role: 'operator' });
    expect(token).toMatch(/^tct_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(await verifyToken(db, token)).toEqual({ tokenId: id, name: 'ops', role: 'operator' });
    const row = await db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(token.slice(`tct_${id}_`.length));
  });

  it('refuses a wrong secret, a malformed token and a revoked one', async () => {
    const { id, token } = await createToken(db, { name: 'ops', role: 'reader' });
    const wrong = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    expect(await verifyToken(db, wrong)).toBeNull();
    expect(await verifyToken(db, 'Bearer nonsense')).toBeNull();
    expect(await verifyToken(db, `tct_${'0'.repeat(16)}_${'a'.repeat(43)}`)).toBeNull();
    expect(await revokeToken(db, id)).toBe(true);
    expect(await verifyToken(db, token)).toBeNull();
    expect(await revokeToken(db, id)).toBe(false);
  });

  it('grants each role only its permissions', () => {
    expect(roleCan('reader', 'read')).toBe(true);
    expect(roleCan('reader', 'capture:write')).toBe(false);
    expect(roleCan('operator', 'capture:write')).toBe(true);
    expect(roleCan('operator', 'pcap:download')).toBe(false);
    expect(roleCan('contributor', 'pcap:download')).toBe(true);
    expect(roleCan('contributor', 'token:admin')).toBe(false);
    expect(roleCan('admin', 'agent:enroll')).toBe(true);
    expect(roleCan('admin', 'agent')).toBe(false);
    expect(roleCan('agent', 'read')).toBe(false);
  });
});
