// A small app on @duotoken/client, as a TypeScript user writes it. The browser test
// type-checks it in strict mode (and a copy with one misspelt code, which must not
// compile), then runs it against a real server.
import { ApiError, createClient } from "@duotoken/client";
import type { DuotokenErrorCode, Session, User } from "@duotoken/client";

const events: string[] = [];

const api = createClient({
  onLogout: (error) => events.push(`logout:${error.code}`),
  onRefresh: ({ replayed }) => events.push(replayed ? "refresh:replayed" : "refresh:rotated"),
});

/** What the app tells its user, by code: the compiler checks every case label. */
export function explain(code: DuotokenErrorCode): string {
  switch (code) {
    case "invalid_credentials":
      return "Wrong username or password.";
    case "throttled":
      return "Too many attempts; wait a moment.";
    case "session_revoked":
    case "session_expired":
    case "refresh_token_reused":
      return "Your session has ended; please log in again.";
    case "service_unavailable":
    case "signing_key_unavailable":
      return "The service is busy; try again shortly.";
    default:
      return `Something went wrong (${code}).`;
  }
}

async function login(username: string, password: string): Promise<string> {
  try {
    const { user } = await api.login(username, password);
    return `welcome ${user.username}`;
  } catch (error) {
    if (error instanceof ApiError) return explain(error.code);
    throw error;
  }
}

async function me(): Promise<User> {
  return api.me();
}

async function sessions(): Promise<string[]> {
  const listed: Session[] = await api.sessions();
  return listed.map((session) => session.id);
}

declare global {
  interface Window {
    example: {
      login: typeof login;
      me: typeof me;
      sessions: typeof sessions;
      events: string[];
    };
  }
}

window.example = { login, me, sessions, events };
document.body.dataset.ready = "yes";
