/**
 * Duotoken browser client: `fetch` for single-page apps on cookie-based sessions.
 *
 * - Sends the cookies, and `X-CSRFToken` on unsafe methods (fetching /api/auth/csrf/
 *   first when there is no CSRF cookie yet). The cookie is read before every unsafe
 *   request, because login rotates the CSRF token.
 * - On `access_token_expired`, refreshes once however many requests failed at the
 *   same moment (single flight), then retries each of them once. On
 *   `access_token_stale` (the session was refreshed after the request left) it just
 *   retries.
 * - When there is no session (`not_authenticated`, `access_token_invalid`,
 *   `refresh_token_*`, `session_*`), rejects with SessionEndedError and calls
 *   `onLogout` so the app shows its login screen; no refresh is tried.
 * - Tabs of one origin coordinate with the Web Locks API (BroadcastChannel where
 *   locks are missing), so two tabs do not refresh at the same instant; the server
 *   stays correct if they do anyway (grace window).
 * - A session bound to the device (DBSC) is renewed by the browser itself; if a call
 *   still meets an expiry, refresh/ answers `binding_proof_required` and the call is
 *   simply retried.
 * - Never refreshes on its own: not at page load, not on a timer; only when the
 *   server says the access token is gone.
 *
 * - `sessions()` follows the list's `Link: <...>; rel="next"` pages (RFC 8288) and
 *   returns every session, on the API's origin only.
 *
 * No dependencies, no build step. This file is the npm package `@duotoken/client`
 * (types in client.d.ts beside it), and Django serves the very same file as
 * `/static/duotoken/client.js`: `import { createClient } from "/static/duotoken/client.js"`.
 */

const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

// The one 401 a refresh cures. The access cookie lives as long as the session, so an
// expired token is still sent and the server says so.
const EXPIRED = "access_token_expired";
// The token expired, but the session has been refreshed since it was sent (by this
// tab or another): the cookie jar holds, or is about to hold, a newer one. Retry.
const STALE = "access_token_stale";
// refresh/ for a session bound to this device (DBSC): the browser itself renews the
// access cookie with a proof of its key, before a request leaves. Nothing ended.
const BOUND = "binding_proof_required";

// 401 codes after which only a new login helps. `not_authenticated` means no access
// cookie at all: no session in this browser, so nothing to refresh.
const SESSION_ENDED = new Set([
  "not_authenticated",
  "access_token_invalid",
  "session_revoked",
  "session_expired",
  "refresh_token_missing",
  "refresh_token_invalid",
  "refresh_token_expired",
  "refresh_token_reused",
]);

const CONTENDED = Symbol("contended");
// How long a tab without Web Locks waits for another tab's announced refresh.
const REMOTE_REFRESH_TIMEOUT_MS = 10000;

/** An error answer of the API: `status`, and `code`, `detail`, `fields` from its body. */
export class ApiError extends Error {
  constructor(status, body = {}) {
    super(body.detail || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = body.code || `http_${status}`;
    this.detail = body.detail || "";
    this.fields = body.fields;
  }
}

/** The session is gone (logged out elsewhere, revoked, expired, reused): log in again. */
export class SessionEndedError extends ApiError {
  constructor(status, body = {}) {
    super(status, body);
    this.name = "SessionEndedError";
  }
}

function readCookie(name) {
  for (const part of document.cookie.split(";")) {
    const index = part.indexOf("=");
    if (index > 0 && part.slice(0, index).trim() === name) {
      return decodeURIComponent(part.slice(index + 1).trim());
    }
  }
  return null;
}

/** The target of the first `rel="next"` link of a Link header (RFC 8288), or null. */
function nextLink(header) {
  for (const [, target, params] of (header || "").matchAll(/<([^>]*)>((?:\s*;\s*[\w*-]+\s*(?:=\s*(?:"[^"]*"|[^;,]*))?)*)/g)) {
    for (const [, name, quoted, bare] of params.matchAll(/;\s*([\w*-]+)\s*(?:=\s*(?:"([^"]*)"|([^;,]*)))?/g)) {
      const rels = (quoted ?? bare ?? "").trim().toLowerCase().split(/\s+/);
      if (name.toLowerCase() === "rel" && rels.includes("next")) return target;
    }
  }
  return null;
}

/** The body of an error answer, from a clone so the caller can still read it. */
async function errorBody(response) {
  if (response.ok || !(response.headers.get("Content-Type") || "").includes("json")) return {};
  try {
    const body = await response.clone().json();
    return body && typeof body === "object" ? body : {};
  } catch {
    return {};
  }
}

/**
 * @param {object} [options]
 * @param {string} [options.baseUrl] prefix for relative URLs ("" = this origin)
 * @param {string} [options.authPath] where the auth API lives
 * @param {string} [options.csrfCookieName] Django's CSRF_COOKIE_NAME
 * @param {string} [options.csrfHeaderName] the header Django reads (CSRF_HEADER_NAME)
 * @param {RequestCredentials} [options.credentials] "same-origin", or "include" for another origin
 * @param {string} [options.lockName] Web Lock / BroadcastChannel name shared by the tabs
 * @param {(error: SessionEndedError) => void} [options.onLogout] the session is gone: show the login screen
 * @param {(info: {replayed: boolean}) => void} [options.onRefresh] this tab renewed the session;
 *   `replayed` when the server handed back the successor another refresh had just made (grace window)
 * @param {typeof fetch} [options.fetch] the fetch to send with (default: the global one)
 */
export function createClient({
  baseUrl = "",
  authPath = "/api/auth/",
  csrfCookieName = "csrftoken",
  csrfHeaderName = "X-CSRFToken",
  credentials = baseUrl ? "include" : "same-origin",
  lockName = "duotoken-refresh",
  onLogout = () => {},
  onRefresh = () => {},
  fetch = (...args) => globalThis.fetch(...args),
} = {}) {
  const endpoint = (name) => `${baseUrl}${authPath}${name}`;
  const resolve = (input) => (typeof input === "string" && input.startsWith("/") ? baseUrl + input : input);
  // The CSRF token and the refresh logic are for the API's origin only: a request
  // elsewhere is passed through untouched, so the token never leaks to third parties.
  const apiOrigin = new URL(baseUrl || "/", globalThis.location?.href).origin;
  const isApi = (request) => new URL(request.url).origin === apiOrigin;

  // Bumped whenever this tab learns that the auth cookies were renewed (by its own
  // refresh or login, or another tab's): a 401 to a request sent before the bump
  // is stale, and the request is simply retried.
  let epoch = 0;
  let inflight = null; // this tab's one refresh in progress
  let failure = null; // {epoch, error} of the last refresh that ended the session
  let ended = false; // onLogout already called for the current loss of the session
  let csrfPending = null;
  let remote = null; // without Web Locks: another tab announced a refresh {promise, settle}

  const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(lockName) : null;
  channel?.addEventListener("message", ({ data }) => {
    if (data?.type === "renewed") {
      renewed({ broadcast: false });
      settleRemote(true);
    } else if (data?.type === "refreshing") {
      announceRemote();
    } else if (data?.type === "refresh_failed") {
      settleRemote(false);
    }
  });

  function renewed({ broadcast }) {
    epoch += 1;
    failure = null;
    ended = false;
    if (broadcast) channel?.postMessage({ type: "renewed" });
  }

  function announceRemote() {
    if (remote) return;
    let settle;
    const promise = new Promise((resolvePromise) => {
      settle = resolvePromise;
    });
    const timer = setTimeout(() => settleRemote(false), REMOTE_REFRESH_TIMEOUT_MS);
    remote = { promise, settle: (ok) => (clearTimeout(timer), settle(ok)) };
  }

  function settleRemote(ok) {
    remote?.settle(ok);
    remote = null;
  }

  function sessionEnded(status, body) {
    const error = new SessionEndedError(status, body);
    if (!ended) {
      ended = true;
      try {
        onLogout(error);
      } catch (hookError) {
        console.error("duotoken: onLogout failed", hookError);
      }
    }
    return error;
  }

  async function csrfToken() {
    const token = readCookie(csrfCookieName);
    if (token) return token;
    csrfPending ??= fetch(endpoint("csrf/"), { credentials }).finally(() => {
      csrfPending = null;
    });
    await csrfPending;
    const fresh = readCookie(csrfCookieName);
    if (!fresh) throw new ApiError(0, { code: "csrf_cookie_missing", detail: "No readable CSRF cookie." });
    return fresh;
  }

  /** One network round trip, CSRF header included; retried once if the CSRF token rotated meanwhile. */
  async function send(input, init) {
    for (let attempt = 0; ; attempt++) {
      const request = new Request(input instanceof Request ? input.clone() : resolve(input), { credentials, ...init });
      if (!isApi(request)) return { response: await fetch(request), sentEpoch: epoch, foreign: true };
      let token = null;
      if (UNSAFE_METHODS.has(request.method)) {
        token = await csrfToken();
        request.headers.set(csrfHeaderName, token);
      }
      const sentEpoch = epoch;
      const response = await fetch(request);
      if (attempt === 0 && token !== null && response.status === 403) {
        // A login in another tab rotates the CSRF cookie after we read it.
        const body = await errorBody(response);
        if (body.code === "csrf_failed" && readCookie(csrfCookieName) !== token) continue;
      }
      return { response, sentEpoch };
    }
  }

  async function refreshNow() {
    let response;
    try {
      ({ response } = await send(endpoint("refresh/"), { method: "POST" }));
    } catch (error) {
      channel?.postMessage({ type: "refresh_failed" });
      throw error;
    }
    if (response.ok) {
      renewed({ broadcast: true });
      try {
        onRefresh({ replayed: response.headers.get("Duotoken-Refresh") === "replayed" });
      } catch (hookError) {
        console.error("duotoken: onRefresh failed", hookError);
      }
      return;
    }
    channel?.postMessage({ type: "refresh_failed" });
    const body = await errorBody(response);
    if (response.status === 401 && body.code === BOUND) {
      // The retry goes out with whatever the browser has renewed by then (the server
      // kept the cookies): not a logout.
      renewed({ broadcast: false });
      return;
    }
    if (response.status === 401) {
      // Every other 401 from refresh ends the session (the server clears the cookies too).
      const error = sessionEnded(401, body);
      failure = { epoch, error };
      throw error;
    }
    throw new ApiError(response.status, body);
  }

  /** After waiting for another tab's refresh: do its new cookies already serve us? */
  async function renewedElsewhere() {
    const response = await fetch(endpoint("me/"), { credentials });
    if (response.ok) {
      renewed({ broadcast: false });
      return true;
    }
    const body = await errorBody(response);
    if (response.status === 401 && SESSION_ENDED.has(body.code)) throw sessionEnded(401, body);
    return false;
  }

  async function coordinatedRefresh() {
    const locks = globalThis.navigator?.locks;
    if (locks) {
      const start = epoch;
      const result = await locks.request(lockName, { ifAvailable: true }, (lock) =>
        lock ? refreshNow() : CONTENDED,
      );
      if (result !== CONTENDED) return;
      // Another tab holds the lock, so it is refreshing: wait for it, then refresh
      // only if its new cookies do not serve us (or it failed).
      await locks.request(lockName, async () => {
        if (epoch !== start || (await renewedElsewhere())) return;
        await refreshNow();
      });
      return;
    }
    if (remote && (await remote.promise)) return;
    channel?.postMessage({ type: "refreshing" });
    await refreshNow();
  }

  /** Make sure the cookies are newer than those a request was sent with. */
  function refreshAfter(sentEpoch) {
    if (sentEpoch !== epoch) return Promise.resolve();
    if (failure && failure.epoch === sentEpoch) return Promise.reject(failure.error);
    inflight ??= coordinatedRefresh().finally(() => {
      inflight = null;
    });
    return inflight;
  }

  async function settle(response) {
    if (response.ok) {
      ended = false;
    } else if (response.status === 401) {
      const body = await errorBody(response);
      if (SESSION_ENDED.has(body.code)) throw sessionEnded(401, body);
    }
    return response;
  }

  /**
   * Like window.fetch, for the API: resolves with the Response (errors included) and
   * rejects with SessionEndedError when the session is gone. A body must be
   * re-sendable (string, FormData, Blob, URLSearchParams; not a stream), since a
   * request that met an expired token is sent again.
   */
  async function authFetch(input, init = {}) {
    let { response, sentEpoch, foreign } = await send(input, init);
    if (foreign) return response;
    // At most one plain retry (stale) and one refresh, so at most three sends.
    let retried = false;
    let refreshed = false;
    while (response.status === 401) {
      const { code } = await errorBody(response);
      if (code === STALE && !retried) {
        retried = true;
        // Our own refresh may have committed with its answer still on the way.
        await inflight?.catch(() => {});
      } else if ((code === EXPIRED || code === STALE) && !refreshed) {
        // A second `stale` means the newer cookies never arrived here: refresh.
        refreshed = true;
        await refreshAfter(sentEpoch);
      } else {
        break;
      }
      ({ response, sentEpoch } = await send(input, init));
    }
    return settle(response);
  }

  /** authFetch for JSON APIs: the parsed body (null for 204), or throws ApiError. */
  async function json(input, { body, headers, ...init } = {}) {
    const options = { ...init, headers: { Accept: "application/json", ...headers } };
    if (body !== undefined) {
      options.body = JSON.stringify(body);
      options.headers["Content-Type"] = "application/json";
    }
    const response = await authFetch(input, options);
    if (!response.ok) throw new ApiError(response.status, await errorBody(response));
    return response.status === 204 ? null : response.json();
  }

  /** Every live session of the user (the current one first), however many pages the list has. */
  async function sessions() {
    const listed = new Map();
    const seen = new Set();
    let url = new URL(endpoint("sessions/"), globalThis.location?.href).href;
    for (;;) {
      seen.add(url);
      const response = await authFetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new ApiError(response.status, await errorBody(response));
      // A session used between two page loads moves up the list: keep its first sighting.
      for (const session of await response.json()) if (!listed.has(session.id)) listed.set(session.id, session);
      const next = nextLink(response.headers.get("Link"));
      if (next === null) return [...listed.values()];
      url = new URL(next, response.url || url).href;
      // Cookies and the CSRF token go to the API's origin only; a page that links back is a loop.
      if (new URL(url).origin !== apiOrigin || seen.has(url)) {
        throw new ApiError(0, { code: "pagination_link_invalid", detail: `Not following the sessions list to ${url}.` });
      }
    }
  }

  async function login(username, password) {
    const { response } = await send(endpoint("login/"), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username, password }),
    });
    if (!response.ok) throw new ApiError(response.status, await errorBody(response));
    renewed({ broadcast: true });
    return response.json();
  }

  async function logout() {
    // Works with an expired access token and without cookies: no refresh first.
    const { response } = await send(endpoint("logout/"), { method: "POST" });
    if (!response.ok) throw new ApiError(response.status, await errorBody(response));
    ended = true; // the app asked for it: no onLogout
  }

  async function logoutAll() {
    await json(endpoint("logout-all/"), { method: "POST" });
    ended = true;
  }

  return {
    fetch: authFetch,
    json,
    login,
    logout,
    logoutAll,
    me: () => json(endpoint("me/")),
    sessions,
    revokeSession: (id) => json(endpoint(`sessions/${encodeURIComponent(id)}/`), { method: "DELETE" }),
    /** Renew the session now (single flight, coordinated across tabs). */
    refresh: () => {
      failure = null; // asked for explicitly: try even if the last refresh failed
      return refreshAfter(epoch);
    },
    /** Stop listening to the other tabs. */
    close: () => channel?.close(),
  };
}
