// The timeline: one lane per tab, drawn in SVG. It shows about three access-token
// lifetimes back (10 to 50 seconds) and a fifth of that ahead, so that the token's
// expiry is always in sight.
//
// Events are plain objects: {t, kind: "call", status, code, retry}, {t, kind:
// "refresh", outcome: "rotated" | "replayed", generation}, {t, kind: "thief"},
// {t, kind: "ended", code} or {t, kind: "login"}. Each lane also keeps running
// counts (as data-* attributes on its <g>), which outlive the visible window.

const SVG = "http://www.w3.org/2000/svg";
const LEFT = 92; // room for the lane labels
const RIGHT = 862;
const AXIS = 18;
const LANE = 74;
const KEEP_MS = 60000;

const SHORT_CODES = {
  access_token_expired: "expired",
  access_token_stale: "stale",
  not_authenticated: "no session",
  session_revoked: "revoked",
  refresh_token_reused: "reused",
};

function el(name, attrs = {}, text = "") {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text) node.textContent = text;
  return node;
}

export class Timeline {
  constructor(svg, selfTab) {
    this.svg = svg;
    this.selfTab = selfTab;
    this.lanes = new Map();
    this.token = null;
    this.pastMs = 25000;
    this.lane(selfTab);
  }

  lane(tab) {
    if (!this.lanes.has(tab)) {
      this.lanes.set(tab, {
        events: [],
        counts: { calls: 0, ok: 0, unauthorized: 0, retries: 0, rotated: 0, replayed: 0, thief: 0, ended: 0 },
      });
    }
    return this.lanes.get(tab);
  }

  add(tab, event) {
    const lane = this.lane(tab);
    lane.events.push(event);
    const counts = lane.counts;
    if (event.kind === "call") {
      counts.calls += 1;
      if (event.status === 200) counts.ok += 1;
      if (event.status === 401) counts.unauthorized += 1;
      if (event.retry) counts.retries += 1;
    } else if (event.kind === "refresh") {
      counts[event.outcome] += 1;
    } else if (event.kind in counts) {
      counts[event.kind] += 1;
    }
  }

  setToken(token) {
    this.token = token;
    const lifetime = token.expiresAt - token.issuedAt;
    this.pastMs = Math.min(50000, Math.max(10000, Math.round((3 * lifetime) / 5000) * 5000));
  }

  draw(now = Date.now()) {
    const past = this.pastMs;
    const future = past / 5;
    const start = now - past;
    const x = (t) => LEFT + ((t - start) / (past + future)) * (RIGHT - LEFT);
    const step = past <= 10000 ? 2 : 5; // seconds between axis marks
    const height = AXIS + this.lanes.size * LANE;
    this.svg.setAttribute("viewBox", `0 0 880 ${height}`);
    this.svg.setAttribute("height", String(height));
    const nodes = [];

    // Time axis: a mark every five seconds, "now" as a line through every lane.
    for (let s = -past / 1000 + step; s <= future / 1000; s += step) {
      const at = x(now + s * 1000);
      nodes.push(el("line", { class: "grid", x1: at, x2: at, y1: AXIS - 4, y2: height }));
      nodes.push(el("text", { class: "axis", x: at, y: AXIS - 6 }, s === 0 ? "now" : `${s > 0 ? "+" : ""}${s} s`));
    }

    let index = 0;
    for (const [tab, lane] of this.lanes) {
      lane.events = lane.events.filter((event) => event.t > now - KEEP_MS);
      const top = AXIS + index * LANE;
      const own = tab === this.selfTab;
      const group = el("g", { class: `lane ${own ? "own" : "other"}`, "data-tab": own ? "self" : "other" });
      group.setAttribute("data-id", tab);
      for (const [name, value] of Object.entries(lane.counts)) group.setAttribute(`data-${name}`, String(value));
      group.append(el("rect", { class: "lane-bg", x: 0, y: top + 2, width: 880, height: LANE - 4, rx: 4 }));
      group.append(el("text", { class: "lane-label", x: 8, y: top + 22 }, own ? "This tab" : "Other tab"));
      group.append(el("text", { class: "lane-sub", x: 8, y: top + 38 }, `#${tab}`));

      // The access token's life: from issue to expiry (the cookie jar is shared, so
      // it is drawn once, in this tab's lane).
      if (own && this.token) {
        const from = Math.max(LEFT, x(this.token.issuedAt));
        const to = Math.min(RIGHT, x(this.token.expiresAt));
        if (to > from) {
          const life = el("rect", { class: "life", x: from, y: top + LANE - 12, width: to - from, height: 6, rx: 3 });
          life.append(el("title", {}, "access token's life"));
          group.append(life);
          const left = this.token.expiresAt - now;
          if (left > 0) {
            const since = Math.max(from, x(now));
            group.append(el("rect", { class: "life-left", x: since, y: top + LANE - 12, width: to - since, height: 6, rx: 3 }));
          }
          group.append(el("line", { class: "expiry", x1: to, x2: to, y1: top + 6, y2: top + LANE - 8 }));
        }
      }

      let lastLabel = -Infinity;
      let lastRefreshLabel = -Infinity;
      for (const event of lane.events) {
        const at = x(event.t);
        if (at < LEFT || at > RIGHT) continue;
        if (event.kind === "call") {
          const kind = event.status === 200 ? (event.retry ? "retry" : "ok") : event.status === 401 ? "err" : "other";
          const long = kind === "err";
          const tick = el("line", { class: `tick ${kind}`, x1: at, x2: at, y1: top + (long ? 24 : 28), y2: top + (long ? 48 : 44) });
          tick.setAttribute("data-kind", "call");
          tick.setAttribute("data-status", String(event.status));
          if (event.code) tick.setAttribute("data-code", event.code);
          if (event.retry) tick.setAttribute("data-retry", "");
          tick.append(el("title", {}, `${event.path}: ${event.status}${event.code ? ` ${event.code}` : ""}${event.retry ? " (retry)" : ""}`));
          group.append(tick);
          if (event.code && at - lastLabel > 70) {
            group.append(el("text", { class: "code", x: at, y: top + 59 }, SHORT_CODES[event.code] || event.code));
            lastLabel = at;
          }
        } else if (event.kind === "refresh") {
          const cy = top + 13;
          const mark = el("path", {
            class: `refresh ${event.outcome}`,
            d: `M${at} ${cy - 7} L${at + 7} ${cy} L${at} ${cy + 7} L${at - 7} ${cy} Z`,
          });
          mark.setAttribute("data-kind", "refresh");
          mark.setAttribute("data-outcome", event.outcome);
          if (event.generation) mark.setAttribute("data-generation", String(event.generation));
          const words =
            event.outcome === "rotated"
              ? `rotated${event.generation ? ` → gen ${event.generation}` : ""}`
              : "grace replay (same successor)";
          mark.append(el("title", {}, words));
          group.append(mark);
          if (at - lastRefreshLabel > 60) {
            // Near the right edge the label goes to the left of its mark.
            const flip = at > RIGHT - 190;
            const label = el("text", { class: `refresh-label ${event.outcome}${flip ? " flip" : ""}`, x: flip ? at - 10 : at + 10, y: cy + 4 }, words);
            group.append(label);
            lastRefreshLabel = at;
          }
        } else if (event.kind === "thief") {
          const cy = top + 36;
          const mark = el("path", { class: "thief", d: `M${at} ${cy - 9} L${at + 8} ${cy + 6} L${at - 8} ${cy + 6} Z` });
          mark.setAttribute("data-kind", "thief");
          group.append(mark);
          group.append(el("text", { class: "thief-label", x: at + 10, y: cy + 4 }, `thief replays gen ${event.generation}`));
        } else if (event.kind === "ended") {
          const mark = el("line", { class: "ended", x1: at, x2: at, y1: top + 4, y2: top + LANE - 4 });
          mark.setAttribute("data-kind", "ended");
          mark.setAttribute("data-code", event.code || "");
          group.append(mark);
          group.append(el("text", { class: "ended-label", x: at - 4, y: top + 17 }, "session ended"));
        } else if (event.kind === "login") {
          group.append(el("circle", { class: "login", cx: at, cy: top + 36, r: 5 }));
          if (at - lastLabel > 70) {
            group.append(el("text", { class: "login-label", x: at, y: top + 59 }, "login"));
            lastLabel = at;
          }
        }
      }
      nodes.push(group);
      index += 1;
    }
    const nowAt = x(now);
    nodes.push(el("line", { class: "now", x1: nowAt, x2: nowAt, y1: AXIS - 2, y2: height }));
    this.svg.replaceChildren(...nodes);
  }
}
