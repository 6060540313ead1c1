// Types of the Duotoken browser client (client.js, beside this file).

/**
 * Every `code` the Duotoken API answers with, in its one error shape
 * `{"detail": "...", "code": "..."}`. The code is the contract; the detail is for humans.
 *
 * This is the one list: when the server gains a code (tokens/errors.py and the few
 * codes config/exceptions.py and the demo add), it is added here, and
 * tests/test_js_client.py fails until it is.
 */
export type DuotokenServerErrorCode =
  // 400: fix the input; `fields` says what is wrong.
  | "invalid"
  // 401: a refresh cures this one (the client does it for you) ...
  | "access_token_expired"
  // ... and this one just needs a retry (the session was refreshed since the request left).
  | "access_token_stale"
  // 401: no session any more; the client rejects with SessionEndedError and calls onLogout.
  | "not_authenticated"
  | "access_token_invalid"
  | "session_revoked"
  | "session_expired"
  | "refresh_token_missing"
  | "refresh_token_invalid"
  | "refresh_token_expired"
  | "refresh_token_reused"
  | "auth_cookie_conflict"
  // 401: a device-bound session's refresh token without a valid proof from its device
  // key (the browser's own DBSC refresh carries one; the client retries the call).
  | "binding_proof_required"
  | "binding_proof_invalid"
  | "binding_challenge_invalid"
  | "binding_challenge_expired"
  // 401: wrong username or password (login), or service client credentials (introspect).
  | "invalid_credentials"
  | "invalid_client"
  // 400, 403, 409: DBSC registration and refresh, answered to the browser, not to the page.
  | "binding_proof_malformed"
  | "binding_session_mismatch"
  | "binding_challenge"
  | "binding_already_registered"
  | "session_not_bound"
  // 403
  | "csrf_failed"
  | "permission_denied"
  // 404, 405, 406: a client bug.
  | "not_found"
  | "method_not_allowed"
  | "not_acceptable"
  // 409, from the demo page's thief.
  | "grace_window_open"
  | "nothing_to_steal"
  // 413, 415: a client bug.
  | "request_too_large"
  | "unsupported_media_type"
  // 429: wait Retry-After seconds.
  | "throttled"
  // 500
  | "server_error"
  // 503: retry shortly; not a reason to log the user out.
  | "service_unavailable"
  | "signing_key_unavailable";

/** Codes the client itself sets, with `status` 0: the request never got an API answer. */
export type DuotokenClientErrorCode =
  // No readable CSRF cookie after GET csrf/ (a cookie name mismatch, or cookies blocked).
  | "csrf_cookie_missing"
  // The sessions list linked to another origin, or back to a page already read.
  | "pagination_link_invalid";

/** An error answer without a code in its body (a proxy's page, say): `http_<status>`. */
export type HttpStatusErrorCode = `http_${number}`;

/** What `ApiError.code` can be: `switch (error.code)` is checked against this. */
export type DuotokenErrorCode = DuotokenServerErrorCode | DuotokenClientErrorCode | HttpStatusErrorCode;

/** Field name -> messages, on `invalid` (`non_field_errors` for the body as a whole). */
export type ErrorFields = Record<string, string[]>;

/** The body of an error answer, as the API sends it. */
export interface ErrorBody {
  detail?: string;
  code?: string;
  fields?: ErrorFields;
}

/** An error answer of the API: `status`, and `code`, `detail`, `fields` from its body. */
export class ApiError extends Error {
  constructor(status: number, body?: ErrorBody);
  /** The HTTP status; 0 for errors the client raises itself. */
  status: number;
  code: DuotokenErrorCode;
  /** For humans; "" when the answer had none. */
  detail: string;
  fields?: ErrorFields;
}

/** The session is gone (logged out elsewhere, revoked, expired, reused): log in again. */
export class SessionEndedError extends ApiError {}

/** `me()`, and `user` in the login answer. */
export interface User {
  id: number;
  username: string;
  email: string;
}

/** The session a login started (times are ISO 8601). */
export interface SessionInfo {
  id: string;
  /** When the session ends if it is not used (it moves with every refresh). */
  expiry: string;
  /** When it ends however much it is used. */
  absolute_expiry: string;
}

export interface LoginResponse {
  user: User;
  session: SessionInfo;
}

/** One live session of the user, as `sessions()` lists it. */
export interface Session {
  id: string;
  /** "Firefox on Linux", from the user agent. */
  device: string;
  ip: string | null;
  created_at: string;
  last_used_at: string;
  /** The session of this browser. */
  current: boolean;
}

/** Passed to `onRefresh`. */
export interface RefreshInfo {
  /** The server handed back the successor another refresh had just made (grace window). */
  replayed: boolean;
}

/** Called once when the session is gone: show the login screen. */
export type LogoutHandler = (error: SessionEndedError) => void;
/** Called when this tab renewed the session. */
export type RefreshHandler = (info: RefreshInfo) => void;

export interface ClientOptions {
  /** Prefix for relative URLs ("" = this origin). */
  baseUrl?: string;
  /** Where the auth API lives; default "/api/auth/". */
  authPath?: string;
  /** Django's CSRF_COOKIE_NAME; default "csrftoken". */
  csrfCookieName?: string;
  /** The header Django reads (CSRF_HEADER_NAME); default "X-CSRFToken". */
  csrfHeaderName?: string;
  /** "same-origin", or "include" (the default when `baseUrl` is set) for another origin of the site. */
  credentials?: RequestCredentials;
  /** Web Lock and BroadcastChannel name shared by the tabs; default "duotoken-refresh". */
  lockName?: string;
  onLogout?: LogoutHandler;
  onRefresh?: RefreshHandler;
  /** What requests are sent with; default the global fetch. */
  fetch?: typeof fetch;
}

/** `json()`'s options: those of fetch, with a body that is sent as JSON. */
export interface JsonRequestInit extends Omit<RequestInit, "body" | "headers"> {
  /** Serialised with JSON.stringify, with `Content-Type: application/json`. */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface DuotokenClient {
  /**
   * Like window.fetch, for the API: resolves with the Response (errors included) and
   * rejects with SessionEndedError when the session is gone. A body must be
   * re-sendable (string, FormData, Blob, URLSearchParams; not a stream).
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** fetch for JSON APIs: the parsed body (null for 204), or rejects with ApiError. */
  json<T = unknown>(input: RequestInfo | URL, init?: JsonRequestInit): Promise<T>;
  login(username: string, password: string): Promise<LoginResponse>;
  /** Ends this session; works with an expired access token. onLogout is not called. */
  logout(): Promise<void>;
  /** Ends every session of the user. */
  logoutAll(): Promise<void>;
  me(): Promise<User>;
  /** Every live session of the user, the current one first, following the list's Link pages. */
  sessions(): Promise<Session[]>;
  revokeSession(id: string): Promise<null>;
  /** Renew the session now (single flight, coordinated across tabs). */
  refresh(): Promise<void>;
  /** Stop listening to the other tabs. */
  close(): void;
}

export function createClient(options?: ClientOptions): DuotokenClient;
