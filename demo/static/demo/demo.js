// The demo page: plain DOM code on top of the Duotoken client, no build step.
import { ApiError, SessionEndedError, createClient } from "../duotoken/client.js";

const $ = (id) => document.getElementById(id);
const BURST_SIZE = 20;
let refreshes = 0;

const client = createClient({
  // Called once when the session is gone for good (revoked, logged out elsewhere,
  // expired): back to the login form.
  onLogout: () => {
    const wasIn = document.body.dataset.view === "app";
    showLogin(wasIn ? "Your session has ended. Please log in again." : "");
  },
  onRefresh: () => {
    refreshes += 1;
    $("refresh-count").textContent = String(refreshes);
  },
});

function show(view) {
  document.body.dataset.view = view;
  $("login-view").hidden = view !== "login";
  $("app-view").hidden = view !== "app";
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

function renderSession(session) {
  const item = document.createElement("li");
  item.dataset.sessionId = session.id;
  item.classList.toggle("current", Boolean(session.current));
  const since = new Date(session.created_at).toLocaleString();
  const where = session.ip ? ` from ${session.ip}` : "";
  item.append(`${session.device}${where}, since ${since}${session.current ? " (this browser)" : ""} `);
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
}

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

// No refresh at load: the access cookie we have is used as is, and a refresh
// happens only if the server says it is gone.
action(async () => {
  try {
    await showApp(await client.me());
  } catch (error) {
    if (error instanceof ApiError && !(error instanceof SessionEndedError)) showLogin();
    else throw error;
  }
})();
