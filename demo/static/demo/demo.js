// The demo page: plain DOM and SVG on top of the Duotoken client, no build step.
//
// Every call the client sends is drawn on a timeline, one lane per tab; tabs tell
// each other what they drew over a BroadcastChannel. The page never sees a token:
// the access token's expiry and the session generation come from a demo endpoint
// that reads them on the server.
import { ApiError, SessionEndedError, createClient } from "../duotoken/client.js";
import { Timeline } from "./timeline.js";

const $ = (id) => document.getElementById(id);
const BURST_SIZE = 20;
const TAB = Math.random().toString(36).slice(2, 6); // this tab's name on the timeline
const STATE_PATH = "/demo/api/state/";
const THIEF_PATH = "/demo/api/thief/";
// Codes after which the client sends the same request again.
const RETRIED = new Set(["access_token_expired", "access_token_stale"]);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const timeline = new Timeline($("timeline"), TAB);
const demoChannel = new BroadcastChannel("duotoken-demo");

let refreshes = 0;
let state = null; // the last answer of STATE_PATH, with `offset` (server clock - ours, ms)
// Race mode: this tab refreshes on its own instead of queueing behind the other
// tabs, so that two tabs meeting one expiry really do race (see "Two tabs").
let racing = location.hash === "#race";
let raceTimer = null;
// During a race: the tabs that have met the expiry and are about to refresh.
let raceRound = null; // {seen: Set of tab names, wake: function}
const RACE_WAIT_MS = 3000;

function record(event) {
  const stamped = { t: Date.now(), ...event };
  timeline.add(TAB, stamped);
  demoChannel.postMessage({ type: "event", tab: TAB, event: stamped });
}

// The client's fetch, watched: each API call becomes a tick on this tab's lane.
const awaitingRetry = new Map(); // path -> 401s whose request the client will send again
async function watchedFetch(input, init) {
  const url = new URL(input instanceof Request ? input.url : input, location.href);
  const path = url.pathname;
  const watched =
    url.origin === location.origin && !path.endsWith("/refresh/") && !path.endsWith("/csrf/") && path !== "/";
  let retry = false;
  if (watched && awaitingRetry.get(path) > 0) {
    awaitingRetry.set(path, awaitingRetry.get(path) - 1);
    retry = true;
  }
  if (raceRound && path.endsWith("/refresh/")) await waitForTheOtherTab();
  const response = await fetch(input, init);
  if (!watched) return response;
  let code = null;
  if (response.status === 401) {
    const body = await response
      .clone()
      .json()
      .catch(() => ({}));
    code = body.code || null;
    $("last-error").textContent = JSON.stringify(body);
    if (RETRIED.has(code)) awaitingRetry.set(path, (awaitingRetry.get(path) || 0) + 1);
  }
  record({ kind: "call", path, status: response.status, code, retry });
  return response;
}

function makeClient() {
  return createClient({
    fetch: watchedFetch,
    // In race mode each tab has a lock of its own, so no tab waits for another.
    lockName: racing ? `duotoken-race-${TAB}` : "duotoken-refresh",
    // Called once when the session is gone for good (revoked, logged out elsewhere,
    // expired, stolen): back to the login form.
    onLogout: (error) => {
      const wasIn = document.body.dataset.view === "app";
      if (wasIn) record({ kind: "ended", code: error.code });
      showLogin(wasIn ? "Your session has ended. Please log in again." : "");
    },
    onRefresh: ({ replayed }) => {
      refreshes += 1;
      $("refresh-count").textContent = String(refreshes);
      const t = Date.now();
      loadState()
        .catch(() => null)
        .then(() => record({ kind: "refresh", t, outcome: replayed ? "replayed" : "rotated", generation: state?.generation }));
    },
  });
}

let client = makeClient();

function setRacing(on) {
  if (racing === on) return;
  racing = on;
  client.close();
  client = makeClient();
  showMode();
}

function showMode() {
  $("mode").textContent = racing
    ? "Race mode: this tab refreshes on its own, the server's grace window settles ties."
    : "Tabs take turns to refresh (Web Locks).";
  $("race").hidden = !racing;
}

function show(view) {
  document.body.dataset.view = view;
  $("login-view").hidden = view !== "login";
  $("app-view").hidden = view !== "app";
  $("app-summary").hidden = view !== "app";
}

function showLogin(message = "") {
  show("login");
  $("login-message").textContent = message;
  $("password").value = "";
}

async function showApp(user) {
  $("signed-in-as").textContent = user.username;
  $("login-message").textContent = "";
  $("whoami-result").textContent = "";
  $("burst-result").textContent = "";
  show("app");
  showMode();
  await loadState();
  await loadSessions();
}

// Every button goes through here. A SessionEndedError needs no handling: the
// client already called onLogout, which put up the login form.
function action(run) {
  return async (event) => {
    event?.preventDefault();
    $("status").textContent = "";
    try {
      await run(event);
    } catch (error) {
      if (error instanceof SessionEndedError) return;
      $("status").textContent = error instanceof ApiError ? `${error.code}: ${error.detail}` : String(error);
    }
  };
}

async function loadState() {
  const sent = Date.now();
  const body = await client.json(STATE_PATH);
  const received = Date.now();
  state = { ...body, offset: body.server_time * 1000 - (sent + received) / 2 };
  $("generation").textContent = String(body.generation);
  $("bound").hidden = !body.bound_at;
  timeline.setToken({
    issuedAt: (body.access_expires_at - body.access_lifetime) * 1000 - state.offset,
    expiresAt: body.access_expires_at * 1000 - state.offset,
  });
  return state;
}

// The access token's remaining life, counted down locally between state loads.
function drawTokenLife() {
  if (document.body.dataset.view === "app" && state) {
    const left = Math.max(0, state.access_expires_at * 1000 - state.offset - Date.now());
    const share = Math.min(1, left / (state.access_lifetime * 1000));
    $("token-bar-fill").setAttribute("width", String(Math.round(200 * share)));
    $("token-bar-fill").classList.toggle("low", share < 0.25);
    const gone = state.bound_at ? "renewed by the browser, with the device key" : "expired: the next call refreshes";
    $("token-left").textContent = left > 0 ? `${(left / 1000).toFixed(1)} s left` : gone;
  }
  timeline.draw();
}
setInterval(drawTokenLife, 100);

function renderSession(session) {
  const item = document.createElement("li");
  item.dataset.sessionId = session.id;
  item.classList.toggle("current", Boolean(session.current));
  const device = document.createElement("strong");
  device.textContent = session.device;
  const details = [
    session.ip ? `from ${session.ip}` : "",
    `last used ${new Date(session.last_used_at).toLocaleTimeString()}`,
    `since ${new Date(session.created_at).toLocaleString()}`,
    session.current ? "(this browser)" : "",
    session.bound ? `bound to its device since ${new Date(session.bound_at).toLocaleTimeString()}` : "",
  ].filter(Boolean);
  item.append(device, ` ${details.join(", ")} `);
  const revoke = document.createElement("button");
  revoke.type = "button";
  revoke.textContent = "Revoke";
  revoke.dataset.revoke = session.id;
  item.append(revoke);
  return item;
}

async function loadSessions() {
  const sessions = await client.sessions();
  $("sessions").replaceChildren(...sessions.map(renderSession));
  // The browser registers the binding just after login, so it may show up here first.
  if (sessions.some((session) => session.current && session.bound)) $("bound").hidden = false;
}

// ---- Two tabs, one expiry -------------------------------------------------------

// Both tabs call at one instant just after the access token expires (their clocks
// are the same machine's), so both meet `access_token_expired` and both refresh
// with the same refresh token.
async function armRace() {
  setRacing(true);
  await loadState();
  const expiresAt = state.access_expires_at * 1000 - state.offset;
  // A second after the expiry: clock estimates from one round trip may be that far off.
  const at = Math.max(expiresAt + 1000, Date.now() + 600);
  demoChannel.postMessage({ type: "arm", tab: TAB, at });
  scheduleRace(at);
}

// Whichever tab's timer fires first says "go" and both call at once: a tab in the
// background may have its timers delayed by the browser, but not its messages.
function scheduleRace(at) {
  setRacing(true);
  clearTimeout(raceTimer);
  $("race-status").textContent = `Both tabs call in ${((at - Date.now()) / 1000).toFixed(1)} s, just after the expiry.`;
  raceTimer = setTimeout(() => {
    demoChannel.postMessage({ type: "go", tab: TAB });
    runRace();
  }, Math.max(0, at - Date.now()));
}

// The staging of the race: a tab that met the expiry holds its refresh until the
// other tab has met it too, so both present the same refresh token, however the
// machine schedules them. (Without this, a slow tab could find the new cookies
// already in place, and refresh from those or not at all.)
function waitForTheOtherTab() {
  const round = raceRound;
  demoChannel.postMessage({ type: "at-refresh", tab: TAB });
  if (round.seen.size > 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, RACE_WAIT_MS);
    round.wake = () => (clearTimeout(timer), resolve());
  });
}

function runRace() {
  if (raceTimer === null) return;
  clearTimeout(raceTimer);
  raceTimer = null;
  raceRound = { seen: new Set(), wake: () => {} };
  action(async () => {
    try {
      await client.me();
    } finally {
      raceRound = null;
    }
    $("race-status").textContent = "Done: both tabs are still logged in. The timeline shows what each refresh got.";
  })();
}

// ---- Play the thief ---------------------------------------------------------------

function logLine(event) {
  const data = event.data || {};
  if (event.kind === "binding_proof_missing") {
    return (
      `${new Date(event.created_at).toLocaleTimeString()} ${event.kind}: session ${event.session_id.slice(0, 8)}…, ` +
      `a copy of its cookies replayed from ${event.ip} (${event.user_agent}) without the device's key. ` +
      "Refused; the session goes on."
    );
  }
  const replay = data.replay || {};
  const first = data.first_rotation || {};
  const when = new Date(event.created_at).toLocaleTimeString();
  return (
    `${when} ${event.kind}: session ${event.session_id.slice(0, 8)}…, generation ${data.presented_generation} ` +
    `presented while generation ${data.current_generation} was current; replayed from ${replay.ip} ` +
    `(${replay.user_agent}), first rotated from ${first.ip}. The session was ended.`
  );
}

function showSecurityEvent(event) {
  const item = document.createElement("li");
  item.dataset.kind = event.kind;
  item.textContent = logLine(event);
  $("security-log").prepend(item);
  $("security-log-view").hidden = false;
}

async function playThief() {
  const say = (text) => {
    $("thief-status").textContent = text;
  };
  await loadState();
  if (state.bound_at) {
    // A bound session: the thief has a copy of every cookie, but not the device key.
    say("The thief replays a copy of this session's cookie jar from another client…");
    const body = await client.json(THIEF_PATH, { method: "POST" });
    record({ kind: "thief", generation: state.generation });
    say("Refused: the session is bound to this device, and the copy cannot refresh it. You stay logged in.");
    showSecurityEvent(body.event);
    demoChannel.postMessage({ type: "thief", tab: TAB, event: body.event, bound: true });
    return;
  }
  if (state.generation < 2) {
    say("The owner refreshes first, so that the thief's copy is a token that has been used.");
    await client.refresh();
    await loadState();
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const open = state.rotated_at * 1000 + state.grace_seconds * 1000 - (Date.now() + state.offset);
    if (open >= 0) {
      say(`Inside the grace window a replay counts as the owner's own retry: the thief waits ${(open / 1000 + 0.2).toFixed(1)} s.`);
      await sleep(open + 200);
    }
    say("The thief replays the previous refresh token…");
    try {
      const body = await client.json(THIEF_PATH, { method: "POST" });
      record({ kind: "thief", generation: body.event.data.presented_generation });
      say("Reuse detected: the server ended the session, in every tab.");
      showSecurityEvent(body.event);
      demoChannel.postMessage({ type: "thief", tab: TAB, event: body.event });
      await client.me(); // ends here with session_revoked, and onLogout
      return;
    } catch (error) {
      if (!(error instanceof ApiError) || error.code !== "grace_window_open") throw error;
      await loadState(); // the owner refreshed meanwhile: a new window opened
    }
  }
  throw new Error("the grace window never closed");
}

// ---- Other tabs ---------------------------------------------------------------------

demoChannel.addEventListener("message", ({ data }) => {
  if (!data || data.tab === TAB) return;
  if (data.type === "event") {
    timeline.add(data.tab, data.event);
    if (data.event.kind === "refresh" && document.body.dataset.view === "app") loadState().catch(() => null);
  } else if (data.type === "hello") {
    timeline.lane(data.tab);
    // Answer with our own lane, so that the new tab draws every lane from the start:
    // a lane added later makes the timeline taller and moves the buttons under it,
    // under the user's pointer (a click on a busy machine then lands elsewhere).
    demoChannel.postMessage({ type: "lane", tab: TAB });
    if (data.race && document.body.dataset.view === "app") action(armRace)();
  } else if (data.type === "lane") {
    timeline.lane(data.tab);
  } else if (data.type === "arm") {
    scheduleRace(data.at);
  } else if (data.type === "go") {
    runRace();
  } else if (data.type === "at-refresh" && raceRound) {
    raceRound.seen.add(data.tab);
    raceRound.wake();
  } else if (data.type === "thief") {
    showSecurityEvent(data.event);
    // The session is over (unless it is bound); this tab finds out on its next call, so make it now.
    if (document.body.dataset.view === "app" && !data.bound) action(() => client.me())();
  }
});

// ---- Buttons ------------------------------------------------------------------------

$("login-form").addEventListener(
  "submit",
  action(async () => {
    let body;
    try {
      body = await client.login($("username").value, $("password").value);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      $("login-message").textContent = error.detail;
      return;
    }
    record({ kind: "login" });
    await showApp(body.user);
  }),
);

$("whoami").addEventListener(
  "click",
  action(async () => {
    const user = await client.me();
    $("whoami-result").textContent = JSON.stringify(user, null, 2);
  }),
);

$("burst").addEventListener(
  "click",
  action(async () => {
    const output = $("burst-result");
    const before = refreshes;
    output.textContent = "running…";
    delete output.dataset.ok;
    const results = await Promise.allSettled(Array.from({ length: BURST_SIZE }, () => client.me()));
    const ok = results.filter((result) => result.status === "fulfilled").length;
    output.dataset.ok = String(ok);
    output.dataset.refreshes = String(refreshes - before);
    output.textContent = `${ok}/${BURST_SIZE} succeeded, ${refreshes - before} refresh(es)`;
    const failed = results.find((result) => result.status === "rejected");
    if (failed) throw failed.reason;
  }),
);

$("open-tab").addEventListener(
  "click",
  action(async () => {
    setRacing(true);
    $("race-status").textContent = "Waiting for the second tab…";
    window.open(`${location.pathname}#race`, "_blank");
  }),
);

$("race").addEventListener("click", action(armRace));
$("thief").addEventListener("click", action(playThief));
$("sessions-reload").addEventListener("click", action(loadSessions));

$("sessions").addEventListener(
  "click",
  action(async (event) => {
    const button = event.target.closest("button[data-revoke]");
    if (!button) return;
    const current = button.closest("li").classList.contains("current");
    await client.revokeSession(button.dataset.revoke);
    if (current) showLogin("This session was revoked.");
    else await loadSessions();
  }),
);

$("logout").addEventListener(
  "click",
  action(async () => {
    await client.logout();
    showLogin("Logged out.");
  }),
);

$("logout-all").addEventListener(
  "click",
  action(async () => {
    await client.logoutAll();
    showLogin("Logged out everywhere.");
  }),
);

// No refresh at load: the access cookie we have is used as is. Without one the
// server says `not_authenticated`, and the client goes straight to onLogout.
action(async () => {
  try {
    await showApp(await client.me());
    demoChannel.postMessage({ type: "hello", tab: TAB, race: racing });
  } catch (error) {
    if (error instanceof ApiError && !(error instanceof SessionEndedError)) showLogin();
    else throw error;
  }
})();
