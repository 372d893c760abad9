import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Me, Permission } from './api.js';

/** Who is signed in: the page offers only what the token's role may do (the server refuses the rest anyway). */
export interface Session {
  me: Me;
  can: (permission: Permission) => boolean;
  sub: string;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in page');
  return session;
}
