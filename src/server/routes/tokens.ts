import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { badRequest } from '../../lib/errors.js';
import type { AppOptions } from '../app.js';
import { createToken, revokeToken } from '../tokens.js';

const TOKENS = '/tripcap/v1/tokens';

const createBody = z.object({
  name: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, "use 1-64 letters, digits, '_', '.', '@' or '-'"),
  // Agent credentials come only from registration; 'function' tokens are function keys (tripcap function key create).
  role: z.enum(['reader', 'operator', 'contributor', 'admin', 'function']),
});

/** API tokens for people and scripts; only admins manage them, and a secret is shown once, at creation. */
export function registerTokenRoutes(app: FastifyInstance, { db }: AppOptions) {
  const admin = { config: { permission: 'token:admin' as const } };

  app.get(TOKENS, admin, async () => {
    const rows = await db
      .selectFrom('tokens')
      .select(['id', 'name', 'role', 'created_at', 'revoked_at'])
      .orderBy('created_at')
      .execute();
    return {
      value: rows.map((r) => ({
        id: r.id,
        name: r.name,
        role: r.role,
        createdTime: r.created_at,
        revokedTime: r.revoked_at,
      })),
    };
  });

  app.post(TOKENS, admin, async (request, reply) => {
    const parsed = createBody.safeParse(request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw badRequest('InvalidRequestFormat', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
    }
    const { id, token } = await createToken(db, parsed.data);
    return reply.status(201).send({ id, ...parsed.data, token });
  });

  app.delete(`${TOKENS}/:tokenId`, admin, async (request, reply) => {
    const { tokenId } = request.params as { tokenId: string };
    if (!/^[0-9a-f]{16}$/.test(tokenId)) throw badRequest('InvalidTokenId', 'Token ids are 16 hex digits.');
    return reply.status((await revokeToken(db, tokenId)) ? 200 : 204).send();
  });
}
