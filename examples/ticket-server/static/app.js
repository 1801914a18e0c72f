// The ticketrush demo page: sign up or log in, join a session's queue and watch it live,
// pick units or seats, hold, pay on the payment provider's hosted page (or from the
// wallet), see the ticket codes; admins see a session's live figures. Plain JavaScript over
// the server's JSON API on this origin. The page never asks for a card number to pay for
// tickets: the buyer is sent to the provider's page and comes back here
// (`/?checkout=<hold id>&session_id=…`), where the result is followed live.
//
// The access token stays in memory and never goes into a URL; the refresh token is an
// HttpOnly cookie set by the login and refresh routes (no script can read it), so a reload
// keeps the login: the page trades the cookie for a fresh access token when it loads.
// The Server-Sent Events
// (the queue's, and my own changes from GET /api/me/events) are read with fetch() so that
// they can carry the Authorization header, which EventSource cannot send. Nothing polls:
// my reservations, tickets and payment results follow my event stream.
"use strict";

const $ = (id) => document.getElementById(id);

/** Everything the page knows. */
const state = {
  access: null, // access token (JWT)
  loggedIn: false, // a login happened (the refresh token is in the HttpOnly cookie)
  me: null, // {id, email, role}
  sessions: new Map(), // session id -> {event, session} from GET /api/events
  current: null, // the session being bought: {event, session}
  queueWatch: null, // AbortController of the open queue stream
  admitted: false, // an active admission on the current session
  seats: new Set(), // seat ids picked on the seat map
  hold: null, // the live hold (HoldAnswer)
  statsTimer: null, // admin stats interval
  mineWatch: null, // AbortController of the open GET /api/me/events stream
  mineReload: null, // pending reload of my lists (debounced)
  holdWaiters: new Map(), // hold id -> callbacks waiting for a change of that hold
  returned: null, // {hold, canceled}: back from the payment page, shown once logged in
};

// ---------------------------------------------------------------------------------------
// Small helpers

/** An error answer of the API: `{"error": {"code", "message"}}`. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A random UUID for Idempotency-Key (randomUUID needs a secure context; 127.0.0.1 is one). */
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** `minor` units of `currency`, formatted ("₩50,000"). */
function money(minor, currency) {
  try {
    const f = new Intl.NumberFormat("en", { style: "currency", currency });
    return f.format(minor / 10 ** f.resolvedOptions().maximumFractionDigits);
  } catch {
    return `${minor} ${currency}`;
  }
}

const time = (ms) => new Date(ms).toLocaleTimeString();
const date = (ms) => new Date(ms).toLocaleString();

/** A new element with attributes (`text` sets textContent) and children. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "className") node.className = v;
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function showError(e) {
  const box = $("error");
  box.textContent = e instanceof ApiError ? `${e.code}: ${e.message}` : `Error: ${e.message || e}`;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

/**
 * Runs `fn` when `button` is clicked: errors go to the error banner, and clicks while it runs
 * are ignored (the button is marked busy; whether it is enabled afterwards is up to `fn`).
 */
function action(button, fn) {
  button.addEventListener("click", async (ev) => {
    ev.preventDefault();
    if (button.classList.contains("busy")) return;
    button.classList.add("busy");
    clearError();
    try {
      await fn();
    } catch (e) {
      showError(e);
    } finally {
      button.classList.remove("busy");
    }
  });
}

// ---------------------------------------------------------------------------------------
// The API

/** The JSON body of `resp`, or throws its ApiError. */
async function parse(resp) {
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const err = data && data.error;
    throw new ApiError(
      resp.status,
      (err && err.code) || `HTTP_${resp.status}`,
      (err && err.message) || text || resp.statusText,
    );
  }
  return data;
}

/**
 * Calls the API. `key` is sent as Idempotency-Key (the same on the one retry after a token
 * refresh, so nothing runs twice).
 */
async function api(method, path, { body, key } = {}) {
  const send = () => {
    const headers = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (key) headers["idempotency-key"] = key;
    if (state.access) headers.authorization = `Bearer ${state.access}`;
    return fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  };
  let resp = await send();
  if (resp.status === 401 && state.loggedIn && (await refreshTokens())) {
    resp = await send();
  }
  return parse(resp);
}

/**
 * Trades the refresh cookie for new tokens (the server rotates the cookie); false (and
 * logged out) when that fails. Concurrent callers share one refresh (the token is single
 * use).
 */
let refreshing = null;
async function refreshTokens({ quiet = false } = {}) {
  if (!refreshing) {
    refreshing = (async () => {
      const resp = await fetch("/api/auth/refresh", {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
      });
      if (!resp.ok) return false;
      const tokens = await resp.json();
      state.access = tokens.access_token;
      return true;
    })().finally(() => {
      refreshing = null;
    });
  }
  const ok = await refreshing;
  if (!ok && state.loggedIn && !quiet) loggedOut("Your session ended: log in again.");
  return ok;
}

// ---------------------------------------------------------------------------------------
// Accounts

function credentials() {
  return { email: $("email").value.trim(), password: $("password").value };
}

async function signup() {
  const created = await api("POST", "/api/auth/signup", { body: credentials() });
  $("auth-status").textContent = `Account created for ${created.email}.`;
  await login();
}

async function login() {
  await loggedInWith(await api("POST", "/api/auth/login", { body: credentials() }));
}

/**
 * Shows the account of a login's `tokens` (a password or a social login). (Named apart
 * from `loggedIn`: a second declaration of one name replaces the first in JavaScript.)
 */
async function loggedInWith(tokens) {
  state.access = tokens.access_token;
  await loggedIn();
}

/** After a reload: the refresh cookie, if any, logs back in without a password. */
async function resumeLogin() {
  if (!(await refreshTokens({ quiet: true }))) return;
  await loggedIn();
}

/** Shows the logged-in page for the account of `state.access`. */
async function loggedIn() {
  state.loggedIn = true;
  state.me = await api("GET", "/api/me");
  $("password").value = "";
  $("auth-status").textContent = `Logged in as ${state.me.email}.`;
  $("whoami").textContent = `${state.me.email} (${state.me.role.toLowerCase()})`;
  $("logout").hidden = false;
  $("auth-form").hidden = true;
  $("mine-section").hidden = false;
  await loadMine();
  watchMine();
  if (state.me.role === "ADMIN") startAdmin();
  checkoutReturned().catch(showError);
}

async function logout() {
  try {
    await api("POST", "/api/auth/logout");
  } finally {
    loggedOut("Logged out.");
  }
}

/** Forgets the tokens and everything of the user. */
function loggedOut(message) {
  stopQueueWatch();
  stopMineWatch();
  stopAdmin();
  Object.assign(state, { access: null, loggedIn: false, me: null, hold: null, admitted: false });
  state.seats.clear();
  $("whoami").textContent = "Not logged in";
  $("logout").hidden = true;
  $("auth-form").hidden = false;
  $("auth-status").textContent = message;
  for (const id of ["rush-section", "mine-section", "admin-section", "admin-controls"]) {
    $(id).hidden = true;
  }
  hideCancelDialog();
  $("tickets").replaceChildren();
  $("reservations").replaceChildren();
}

// ---------------------------------------------------------------------------------------
// The catalogue

function describeSession(session) {
  const grades = session.grades
    .map((g) => `${g.grade} ${money(g.price_minor, g.currency)}`)
    .join(", ");
  const kind = session.kind === "seated" ? "Seated" : "General admission";
  return `${kind} · ${date(session.starts_at)} · ${grades} · ${session.status.replace("_", " ")}`;
}

async function loadEvents() {
  const page = await api("GET", "/api/events?per_page=50");
  const list = $("events");
  list.replaceChildren();
  state.sessions.clear();
  if (page.items.length === 0) list.textContent = "No events.";
  for (const event of page.items) {
    const sessions = el("ul", { className: "sessions" });
    for (const session of event.sessions) {
      state.sessions.set(session.id, { event, session });
      const choose = el("button", {
        type: "button",
        text: "Choose",
        "data-testid": `session-${session.id}`,
        "data-kind": session.kind,
      });
      choose.addEventListener("click", () => chooseSession(session.id).catch(showError));
      sessions.append(el("li", {}, el("span", { text: describeSession(session) }), " ", choose));
    }
    list.append(el("article", { className: "event" }, el("h3", { text: event.name }), sessions));
  }
  fillAdminSessions();
}

/** Shows the stock left of the current session. */
async function loadStock() {
  const { session } = state.current;
  const stock = await api("GET", `/api/sessions/${session.id}`);
  $("session-stock").textContent = stock.grades
    .map((g) => `${g.grade}: ${g.available} of ${g.capacity} left (${g.sold} sold)`)
    .join(" · ");
}

async function chooseSession(id) {
  clearError();
  stopQueueWatch();
  state.current = state.sessions.get(id);
  state.hold = null;
  state.admitted = false;
  state.seats.clear();
  const { event, session } = state.current;
  $("rush-section").hidden = false;
  $("rush-section").dataset.sessionId = id;
  $("session-title").textContent = `${event.name}: ${describeSession(session)}`;
  $("join").textContent = "Join the queue";
  $("queue-status").textContent = "Not in the queue.";
  $("pick-step").hidden = true;
  $("pay-step").hidden = true;
  $("hold-status").textContent = "";
  payStatus("");
  await loadStock();
  if (!state.access) {
    $("queue-status").textContent = "Log in to join the queue.";
    return;
  }
  // Already in this queue (e.g. after choosing another session): pick up where it stands.
  try {
    const view = await api("GET", `/api/sessions/${id}/queue`);
    if (showQueue(view) === "waiting") watchQueue(id);
  } catch (e) {
    if (!(e instanceof ApiError && [403, 404].includes(e.status))) throw e;
  }
}

// ---------------------------------------------------------------------------------------
// The queue, live

async function join() {
  if (!state.access) throw new ApiError(401, "UNAUTHORIZED", "log in first");
  const id = state.current.session.id;
  const view = await api("POST", `/api/sessions/${id}/queue`);
  if (showQueue(view) === "waiting") watchQueue(id);
}

/**
 * Shows a queue answer (`GET /api/sessions/{id}/queue` or an event of its stream) and returns
 * the ticket's status.
 */
function showQueue(view, event) {
  const status = $("queue-status");
  status.dataset.status = view.status;
  status.dataset.sale = view.sale || "open";
  showSale(view.sale);
  if (view.sale === "cancelled" || event === "cancelled") {
    status.textContent = "The show was cancelled: confirmed reservations are refunded in full.";
  } else if (view.sale === "closed" || event === "closed") {
    status.textContent = "Sales are closed.";
  } else if (view.sale === "paused" && view.status === "waiting") {
    const position = view.position == null ? "" : ` (position ${view.position})`;
    status.textContent = `Sales are paused: you keep your place${position}.`;
  } else if (view.status === "waiting" && event !== "sold_out") {
    const position = view.position == null ? "not drawn yet" : `position ${view.position}`;
    const eta = view.eta_seconds == null ? "ETA unknown" : `about ${view.eta_seconds} s`;
    status.textContent = `Waiting: ${position} of ${view.waiting} · ${eta} · outlook ${view.outlook}`;
  } else if (view.status === "active") {
    const until = view.admission_expires_at ? ` before ${time(view.admission_expires_at)}` : "";
    status.textContent = `Admitted: pick and hold your tickets${until}.`;
    admitted();
  } else if (event === "sold_out" || view.outlook === "sold_out") {
    status.textContent = "Sold out: nothing left to wait for.";
  } else if (view.status === "used") {
    status.textContent = "Your admission was used by a hold. Join again to buy more.";
  } else if (view.status === "left") {
    status.textContent = "You left the queue.";
  } else {
    status.textContent = "Your admission expired: join the queue again.";
  }
  if (view.status !== "active") {
    state.admitted = false;
    $("join").textContent = view.status === "waiting" ? "Join the queue" : "Join the queue again";
  }
  return view.status;
}

function stopQueueWatch() {
  if (state.queueWatch) state.queueWatch.abort();
  state.queueWatch = null;
}

/**
 * Follows `GET /api/sessions/{id}/queue/events` until a final event (admitted, expired,
 * sold_out), reconnecting with Last-Event-ID after a dropped connection.
 */
async function watchQueue(sessionId) {
  stopQueueWatch();
  const watch = new AbortController();
  state.queueWatch = watch;
  let lastId = null;
  while (!watch.signal.aborted) {
    try {
      const headers = { accept: "text/event-stream", authorization: `Bearer ${state.access}` };
      if (lastId) headers["last-event-id"] = lastId;
      const resp = await fetch(`/api/sessions/${sessionId}/queue/events`, {
        headers,
        signal: watch.signal,
        cache: "no-store",
      });
      if (resp.status === 401 && (await refreshTokens())) continue;
      if (!resp.ok) await parse(resp); // throws the API's error
      const finished = await readEvents(resp.body, (ev) => {
        if (ev.id) lastId = ev.id;
        return onQueueEvent(ev);
      });
      if (finished) break;
    } catch (e) {
      if (watch.signal.aborted) return;
      if (e instanceof ApiError) {
        showError(e);
        break;
      }
      // A dropped connection: try again shortly.
    }
    await sleep(1000);
  }
  if (state.queueWatch === watch) state.queueWatch = null;
}

/** Handles one queue event; true when it ends the stream. */
function onQueueEvent(ev) {
  if (ev.type === "error") {
    showError(new Error(ev.data));
    return true;
  }
  const view = JSON.parse(ev.data);
  showQueue(view, ev.type);
  return ev.type !== "position" && ev.type !== "paused";
}

/**
 * Reads Server-Sent Events from a response body and calls `onEvent({type, data, id})` for
 * each; stops and returns true when `onEvent` returns true, false when the stream ends.
 * Lines end with LF or CRLF (the server sends LF); comments (keep-alives) are skipped.
 */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let ev = { type: "message", data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return false;
    buffer += value;
    const lines = buffer.split("\n");
    buffer = lines.pop();
    for (const raw of lines) {
      const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      if (line === "") {
        if (ev.data.length > 0) {
          const stop = onEvent({ type: ev.type, data: ev.data.join("\n"), id: ev.id });
          if (stop) {
            await reader.cancel();
            return true;
          }
        }
        ev = { type: "message", data: [], id: null };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") ev.type = value;
      else if (field === "data") ev.data.push(value);
      else if (field === "id") ev.id = value;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Picking and holding

/** The admission is active: show the picker of the session's kind. */
function admitted() {
  if (state.admitted) return;
  state.admitted = true;
  state.seats.clear();
  const { session } = state.current;
  $("pick-step").hidden = false;
  $("hold").disabled = false;
  $("hold-status").textContent = "";
  const seated = session.kind === "seated";
  $("ga-picker").hidden = seated;
  $("seat-picker").hidden = !seated;
  if (seated) {
    loadSeatMap().catch(showError);
  } else {
    $("grade").replaceChildren(
      ...session.grades.map((g) =>
        el("option", { value: g.grade, text: `${g.grade}: ${money(g.price_minor, g.currency)}` }),
      ),
    );
    showSelection();
  }
}

async function loadSeatMap() {
  const seats = await api("GET", `/api/sessions/${state.current.session.id}/seats`);
  const rows = new Map();
  for (const seat of seats) {
    const row = (seat.id.match(/^[A-Za-z]+/) || [seat.section])[0];
    if (!rows.has(row)) rows.set(row, []);
    rows.get(row).push(seat);
  }
  const map = $("seat-map");
  map.replaceChildren();
  for (const [row, list] of rows) {
    const line = el("div", { className: "seat-row" }, el("span", { className: "row-label", text: row }));
    for (const seat of list) {
      const button = el("button", {
        type: "button",
        className: `seat ${seat.status}`,
        text: seat.id,
        title: `${seat.id} · ${seat.grade} · ${money(seat.price_minor, seat.currency)} · ${seat.status}`,
        "data-seat": seat.id,
        "data-testid": `seat-${seat.id}`,
        "data-price": seat.price_minor,
        "data-currency": seat.currency,
      });
      button.disabled = seat.status !== "available";
      button.addEventListener("click", () => toggleSeat(button));
      line.append(button);
    }
    map.append(line);
  }
  showSelection();
}

function toggleSeat(button) {
  const id = button.dataset.seat;
  if (state.seats.has(id)) state.seats.delete(id);
  else state.seats.add(id);
  button.classList.toggle("selected", state.seats.has(id));
  showSelection();
}

/** The hold request for what is picked, and its price. */
function selection() {
  const { session } = state.current;
  if (session.kind === "seated") {
    const buttons = [...state.seats].map((id) => $("seat-map").querySelector(`[data-seat="${id}"]`));
    const total = buttons.reduce((sum, b) => sum + Number(b.dataset.price), 0);
    const currency = buttons.length ? buttons[0].dataset.currency : "";
    return {
      body: { session_id: session.id, seat_ids: [...state.seats] },
      text: buttons.length ? `Seats ${[...state.seats].join(", ")}: ${money(total, currency)}` : "No seat picked.",
    };
  }
  const grade = session.grades.find((g) => g.grade === $("grade").value) || session.grades[0];
  const quantity = Number.parseInt($("quantity").value, 10) || 0;
  return {
    body: { session_id: session.id, grade: grade.grade, quantity },
    text: `${quantity} × ${grade.grade}: ${money(quantity * grade.price_minor, grade.currency)}`,
  };
}

function showSelection() {
  $("selection").textContent = selection().text;
}

async function hold() {
  const { body } = selection();
  if (body.seat_ids && body.seat_ids.length === 0) {
    throw new ApiError(400, "VALIDATION", "pick at least one seat");
  }
  const held = await api("POST", "/api/holds", { body, key: newKey() });
  state.hold = held;
  // The hold used the admission.
  state.admitted = false;
  $("queue-status").dataset.status = "used";
  $("queue-status").textContent = "Admission used by your hold.";
  $("join").textContent = "Join the queue again";
  $("hold").disabled = true;
  showHold(held);
  $("pay-step").hidden = false;
  $("pay").disabled = false;
  payStatus("");
  await loadStock();
}

function showHold(h) {
  const status = $("hold-status");
  status.dataset.status = h.status;
  // Only a live hold has an end; a confirmed one is kept.
  const until = ["held", "paying"].includes(h.status) ? `, until ${time(h.expires_at)}` : "";
  status.textContent = `Hold ${h.status.replace("_", " ")}: ${h.units} ticket(s), ${money(h.amount, h.currency)}${until}.`;
}

// ---------------------------------------------------------------------------------------
// Paying

const FINAL = ["confirmed", "payment_failed", "expired", "released", "cancelled", "refunded"];

/** Writes the payment's status line; `status` (the hold's) goes to its data attribute. */
function payStatus(text, status) {
  const line = $("pay-status");
  if (status) line.dataset.status = status;
  else delete line.dataset.status;
  line.textContent = text;
}

async function pay() {
  if (!state.hold) throw new ApiError(409, "NO_HOLD", "hold tickets first");
  const method = $("method").value;
  const holdId = state.hold.id;
  payStatus(method === "wallet" ? "Paying…" : "Opening the payment page…");
  const body = method === "wallet" ? { method: "wallet" } : { method: "hosted" };
  const answer = await api("POST", `/api/holds/${holdId}/checkout`, { body, key: newKey() });
  // A hold paying on the provider's page (whatever was asked): go there. The provider
  // sends the buyer back to this page, which follows the result (see `checkoutReturned`).
  if (answer.payment_url && !FINAL.includes(answer.hold.status)) {
    const url = new URL(answer.payment_url, window.location.href);
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new ApiError(502, "BAD_PAYMENT_URL", "the payment page's address is not a web page");
    }
    payStatus("Taking you to the payment page…", answer.hold.status);
    window.location.assign(url.href);
    return;
  }
  await followPayment(holdId, answer.hold, answer.status);
}

/**
 * Shows hold `holdId`'s payment until it is final: a slow payment leaves the hold PAYING,
 * the provider's webhook settles it, and my event stream says when; the hold is read again
 * then (or after 10 s without news).
 */
async function followPayment(holdId, first, paymentStatus) {
  let h = first;
  for (let i = 0; !FINAL.includes(h.status) && i < 12; i++) {
    showHold(h);
    payStatus(
      paymentStatus ? `Payment ${paymentStatus}: waiting for the result…` : "Payment processing…",
      h.status,
    );
    await holdChanged(holdId, 10000);
    h = await api("GET", `/api/holds/${holdId}`);
  }
  showPayResult(h);
  await loadStock();
  await loadMine(h.status === "confirmed" ? holdId : undefined);
}

/** Shows where hold `h` ended up after a payment. */
function showPayResult(h) {
  showHold(h);
  if (h.status === "confirmed") {
    payStatus("Payment succeeded: reservation confirmed.", h.status);
    state.hold = null;
    $("pay").disabled = true;
  } else if (h.status === "payment_failed") {
    payStatus(
      "Payment failed: your hold was released. Join the queue again to try another card.",
      h.status,
    );
    state.hold = null;
    $("pay").disabled = true;
  } else if (FINAL.includes(h.status)) {
    payStatus(`The hold ended (${h.status.replace("_", " ")}): join the queue again.`, h.status);
    state.hold = null;
    $("pay").disabled = true;
  } else {
    payStatus("No result yet: see My reservations later.", h.status);
  }
}

/**
 * The address the payment page sent the buyer back to: `?checkout=<hold id>&session_id=…`
 * (`&canceled=1` when they gave up). Read once, then taken out of the address bar. Nothing
 * in it is trusted: the hold is read from the API (mine only), its status is the truth.
 */
function takeCheckoutReturn() {
  const params = new URLSearchParams(window.location.search);
  const hold = params.get("checkout");
  if (hold === null) return;
  history.replaceState(null, "", window.location.pathname + window.location.hash);
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(hold)) return;
  state.returned = { hold, canceled: params.get("canceled") === "1" };
}

/** Back from the payment page, logged in: shows the hold and follows its result live. */
async function checkoutReturned() {
  const back = state.returned;
  if (!back) return;
  state.returned = null;
  let h;
  try {
    h = await api("GET", `/api/holds/${back.hold}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return; // not mine (or gone): nothing to show
    throw e;
  }
  if (state.sessions.has(h.session_id)) await chooseSession(h.session_id);
  $("rush-section").hidden = false;
  // The hold (not a new pick: its admission was used) and its payment.
  $("pick-step").hidden = false;
  $("ga-picker").hidden = true;
  $("seat-picker").hidden = true;
  $("selection").textContent = "";
  $("hold").disabled = true;
  $("pay-step").hidden = false;
  state.hold = FINAL.includes(h.status) ? null : h;
  $("pay").disabled = FINAL.includes(h.status);
  showHold(h);
  $("pay-step").scrollIntoView({ block: "center" });
  if (back.canceled && !FINAL.includes(h.status)) {
    // The page is still open for this hold until it expires: paying again goes back to it.
    payStatus("Payment not completed: try again before your hold expires.", h.status);
    return;
  }
  await followPayment(back.hold, h, null);
}

// ---------------------------------------------------------------------------------------
// My wallet: top-ups are card payments; the balance grows only once one succeeded

async function loadWallet() {
  const w = await api("GET", "/api/me/wallet?limit=10");
  $("wallet-balance").textContent = money(w.balance, w.currency);
}

async function topUp() {
  const amount = Number($("topup-amount").value);
  const card = $("topup-card").value.replace(/[\s-]+/g, "");
  const status = $("topup-status");
  delete status.dataset.status;
  status.textContent = "Paying…";
  let t = await api("POST", "/api/me/wallet/topups", {
    body: { amount, card_number: card },
    key: newKey(),
  });
  // Pending until the payment settles (confirmation, webhook or reconciler): poll it.
  for (let i = 0; t.status === "pending" && i < 120; i++) {
    status.textContent = `Top-up pending: waiting for the card payment${t.payment_id ? ` ${t.payment_id}` : ""}…`;
    await sleep(1000);
    t = await api("GET", `/api/me/wallet/topups/${t.id}`);
  }
  status.dataset.status = t.status;
  if (t.status === "succeeded") {
    status.textContent = `Top-up succeeded: ${money(t.amount, t.currency)} added.`;
  } else if (t.status === "failed") {
    status.textContent = `Top-up failed (${t.failure}): nothing was added.`;
  } else {
    status.textContent = "No result yet: check your balance later.";
  }
  await loadWallet();
}

// ---------------------------------------------------------------------------------------
// My tickets and reservations

/**
 * Shows my tickets and reservations; with `confirmedHold`, retries a few times until that
 * reservation's tickets are listed (they are issued when it is confirmed).
 */
async function loadMine(confirmedHold) {
  const list = $("tickets");
  for (let attempt = 0; ; attempt++) {
    let tickets = null;
    try {
      tickets = (await api("GET", "/api/me/tickets?limit=50")).tickets;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
    if (tickets === null) {
      list.replaceChildren(el("li", { text: "This server issues no ticket codes." }));
      break;
    }
    list.replaceChildren(
      ...tickets.map((t) =>
        el(
          "li",
          { "data-testid": "ticket", "data-reservation": t.reservation_id, "data-status": t.status },
          el("code", { className: "ticket-code", "data-testid": "ticket-code", text: t.code }),
          ` ${t.status} · reservation ${t.reservation_id}`,
          t.status === "valid" ? ticketQr(t.ticket_id) : "",
        ),
      ),
    );
    if (tickets.length === 0) list.replaceChildren(el("li", { text: "No tickets yet." }));
    const found = !confirmedHold || tickets.some((t) => t.reservation_id === confirmedHold);
    if (found || attempt >= 3) break;
    await holdChanged(confirmedHold, 2000);
  }
  // The first page (the newest 50); the page says when there are more.
  const page = await api("GET", "/api/me/reservations?limit=50");
  const reservations = page.reservations;
  $("reservations").replaceChildren(...reservations.map(reservationItem));
  if (reservations.length === 0) $("reservations").replaceChildren(el("li", { text: "None yet." }));
  if (page.next_cursor) $("reservations").append(el("li", { text: "… and older ones." }));
  await loadWallet();
}

/**
 * A box that shows ticket `id`'s QR code once fetched (GET /api/me/tickets/{id}/qr.svg, with
 * the token: an <img src> could not send it), put in as inline SVG when it is only the
 * shapes the server draws. Empty when it cannot be had.
 */
function ticketQr(id) {
  const box = el("div", { className: "ticket-qr", "data-testid": "ticket-qr" });
  const path = `/api/me/tickets/${encodeURIComponent(id)}/qr.svg`;
  const get = () =>
    fetch(path, { headers: { authorization: `Bearer ${state.access}` }, cache: "no-store" });
  (async () => {
    let resp = await get();
    if (resp.status === 401 && state.refresh && (await refreshTokens())) resp = await get();
    if (!resp.ok) return;
    const doc = new DOMParser().parseFromString(await resp.text(), "image/svg+xml");
    const svg = doc.documentElement;
    if (svg.localName !== "svg" || svg.querySelector(":not(rect):not(path)")) return;
    svg.setAttribute("width", "160");
    svg.setAttribute("height", "160");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `QR code of ticket ${id}`);
    box.replaceChildren(document.importNode(svg, true));
  })().catch(() => {});
  return box;
}

/** Resolves at the next change of hold `id` from my event stream, or after `ms`. */
function holdChanged(id, ms) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      const waiting = state.holdWaiters.get(id) || [];
      state.holdWaiters.set(
        id,
        waiting.filter((f) => f !== done),
      );
      resolve();
    };
    const timer = setTimeout(done, ms);
    state.holdWaiters.set(id, [...(state.holdWaiters.get(id) || []), done]);
  });
}

/** Reloads my lists soon (several events in a row reload once). */
function reloadMineSoon() {
  if (state.mineReload) return;
  state.mineReload = setTimeout(() => {
    state.mineReload = null;
    if (state.access) loadMine().catch(showError);
  }, 200);
}

function stopMineWatch() {
  if (state.mineWatch) state.mineWatch.abort();
  state.mineWatch = null;
}

/**
 * Follows `GET /api/me/events` while logged in: each change of my reservations or admissions
 * reloads my lists and wakes whoever waits for that hold; `resync` reloads them too. A
 * dropped connection resumes with Last-Event-ID, so no change is missed.
 */
async function watchMine() {
  stopMineWatch();
  const watch = new AbortController();
  state.mineWatch = watch;
  let lastId = null;
  while (!watch.signal.aborted) {
    try {
      const headers = { accept: "text/event-stream", authorization: `Bearer ${state.access}` };
      if (lastId) headers["last-event-id"] = lastId;
      const resp = await fetch("/api/me/events", { headers, signal: watch.signal, cache: "no-store" });
      if (resp.status === 401 && (await refreshTokens())) continue;
      if (!resp.ok) await parse(resp); // throws the API's error
      await readEvents(resp.body, (ev) => {
        if (ev.id) lastId = ev.id;
        onMyEvent(ev);
        return false;
      });
    } catch (e) {
      if (watch.signal.aborted) return;
      if (e instanceof ApiError && e.status !== 503) break;
      // A dropped connection: resume shortly.
    }
    await sleep(1000);
  }
}

/** Handles one event of my stream. */
function onMyEvent(ev) {
  if (ev.type === "ready" || ev.type === "error") return;
  if (ev.type === "resync") {
    reloadMineSoon();
    return;
  }
  const change = JSON.parse(ev.data);
  if (change.kind && change.kind.startsWith("sale_")) {
    onSaleChange(change);
    return;
  }
  if (change.hold_id) {
    for (const wake of state.holdWaiters.get(change.hold_id) || []) wake();
    reloadMineSoon();
  }
}

// ---------------------------------------------------------------------------------------
// Admin: live stats

function fillAdminSessions() {
  const select = $("admin-session");
  const chosen = select.value;
  select.replaceChildren(
    ...[...state.sessions.values()].map(({ event, session }) =>
      el("option", {
        value: session.id,
        text: `${event.name}: ${session.kind === "seated" ? "seated" : "general admission"}`,
      }),
    ),
  );
  if (chosen && state.sessions.has(chosen)) select.value = chosen;
}

function startAdmin() {
  $("admin-section").hidden = false;
  $("admin-controls").hidden = false;
  fillAdminSessions();
  stopAdmin();
  refreshStats();
  refreshSale().catch(showError);
  state.statsTimer = setInterval(() => {
    refreshStats();
    refreshSale().catch(() => {});
  }, 1000);
}

function stopAdmin() {
  if (state.statsTimer) clearInterval(state.statsTimer);
  state.statsTimer = null;
}

async function refreshStats() {
  const id = $("admin-session").value;
  if (!id || !state.access) return;
  try {
    const s = await api("GET", `/api/admin/sessions/${id}/stats`);
    if ($("admin-session").value !== id) return; // changed meanwhile
    $("stat-capacity").textContent = s.capacity;
    $("stat-available").textContent = s.available;
    $("stat-held").textContent = s.held;
    $("stat-sold").textContent = s.sold;
    $("stat-queue").textContent = s.queue_length;
    $("stat-active").textContent = s.active;
    const by = Object.entries(s.reservations_by_status);
    $("stat-reservations").textContent = by.length
      ? by.map(([k, v]) => `${k.replace("_", " ")}: ${v}`).join(", ")
      : "none";
    $("stats-updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
    pushStats(id, s);
  } catch (e) {
    $("stats-updated").textContent =
      e instanceof ApiError ? `${e.code}: ${e.message}` : `Error: ${e.message}`;
  }
}

// ---------------------------------------------------------------------------------------
// Social login: a button per configured provider (GET /api/auth/providers); the server sends
// the browser back to `/#oauth_login=<one-time code>`, traded here for the tokens.

async function setupSocialLogin() {
  const match = /^#oauth_login=([A-Za-z0-9_-]{1,128})$/.exec(window.location.hash);
  if (match) {
    // Drop the code from the address bar and history first: it works once anyway.
    history.replaceState(null, "", window.location.pathname + window.location.search);
    await loggedInWith(await api("POST", "/api/auth/oauth/exchange", { body: { code: match[1] } }));
  }
  const { providers } = await api("GET", "/api/auth/providers");
  if (!providers.length) return;
  const row = document.createElement("p");
  row.id = "social-login";
  row.dataset.testid = "social-login";
  for (const p of providers) {
    const link = document.createElement("a");
    link.href = p.start_url;
    link.className = "button";
    link.textContent = `Log in with ${p.name.charAt(0).toUpperCase()}${p.name.slice(1)}`;
    row.append(link, " ");
  }
  $("auth-form").append(row);
}

// ---------------------------------------------------------------------------------------
// Wiring

document.addEventListener("DOMContentLoaded", () => {
  takeCheckoutReturn();
  action($("signup"), signup);
  action($("login"), login);
  // Enter in the form clicks "Log in", whose handler runs the login; never submit the form.
  $("auth-form").addEventListener("submit", (ev) => ev.preventDefault());
  action($("logout"), logout);
  action($("join"), join);
  action($("hold"), hold);
  action($("pay"), pay);
  action($("refresh-mine"), () => loadMine());
  action($("topup"), topUp);
  $("grade").addEventListener("change", showSelection);
  $("quantity").addEventListener("input", showSelection);
  $("admin-session").addEventListener("change", refreshStats);
  wireSales();
  setupSocialLogin().catch(showError);
  loadEvents()
    .catch(showError)
    .then(() => resumeLogin())
    .catch(showError);
});

// =======================================================================================
// Sales controls and cancellations (organiser's controls, refund policy). Kept apart from
// the rest of the page: everything below is this feature's.

/** The sale state of the current session, shown as a banner ("paused", …). */
function showSale(sale) {
  const banner = $("sale-banner");
  if (!banner) return;
  const value = sale || "open";
  banner.dataset.sale = value;
  const text = {
    open: "",
    paused: "Sales are PAUSED: no new holds until they resume.",
    closed: "Sales are CLOSED.",
    cancelled: "This show was CANCELLED: confirmed reservations are refunded in full.",
  }[value];
  banner.textContent = text || "";
  banner.hidden = !text;
}

/** A sale switch change from my event stream: update the session shown and the list. */
function onSaleChange(change) {
  const sale = {
    sale_paused: "paused",
    sale_resumed: "open",
    sale_closed: "closed",
    sale_cancelled: "cancelled",
  }[change.kind];
  if (state.current && state.current.session.id === change.session_id) {
    showSale(sale);
    state.current.session.status = sale === "open" ? "on_sale" : sale;
    $("session-title").textContent = `${state.current.event.name}: ${describeSession(state.current.session)}`;
    // A resumed sale moves the queue again: pick the live place up.
    if (sale === "open" && state.access && !state.queueWatch && !state.admitted) {
      api("GET", `/api/sessions/${change.session_id}/queue`)
        .then((view) => {
          if (showQueue(view) === "waiting") watchQueue(change.session_id);
        })
        .catch(() => {});
    }
  }
  loadEvents().catch(showError);
  if (state.me && state.me.role === "ADMIN") refreshSale().catch(() => {});
  if (sale === "cancelled") reloadMineSoon();
}

// ---- My reservations: cancel by the refund policy, the fee shown first ----------------

/** One reservation of my list, with a Cancel button when it is confirmed. */
function reservationItem(r) {
  const item = el("li", {
    "data-testid": "reservation",
    "data-id": r.id,
    "data-status": r.status,
  });
  item.append(
    el("span", {
      text: `${r.status.replace("_", " ")} · ${r.units} ticket(s) · ${money(r.amount, r.currency)} · ${r.id}`,
    }),
  );
  if (r.status === "confirmed") {
    const cancel = el("button", {
      type: "button",
      className: "small",
      text: "Cancel…",
      "data-testid": "cancel-reservation",
    });
    action(cancel, () => askCancel(r));
    item.append(" ", cancel);
  }
  return item;
}

/** Shows the quote of cancelling `r` and asks to confirm. */
async function askCancel(r) {
  const q = await api("GET", `/api/reservations/${r.id}/cancellation-quote`);
  const dialog = $("cancel-dialog");
  dialog.dataset.id = r.id;
  $("cancel-quote").textContent =
    `Cancelling costs ${money(q.fee, q.currency)} (${q.rule}); ` +
    `${money(q.refund, q.currency)} of ${money(q.paid, q.currency)} comes back. ` +
    `This fee holds until ${date(q.valid_until)}.`;
  $("cancel-quote").dataset.fee = q.fee;
  $("cancel-quote").dataset.refund = q.refund;
  $("cancel-result").textContent = "";
  dialog.hidden = false;
  $("cancel-confirm").disabled = false;
  $("cancel-confirm").dataset.key = newKey();
}

function hideCancelDialog() {
  const dialog = $("cancel-dialog");
  if (dialog) dialog.hidden = true;
}

async function confirmCancel() {
  const id = $("cancel-dialog").dataset.id;
  const key = $("cancel-confirm").dataset.key || newKey();
  const done = await api("POST", `/api/reservations/${id}/cancel`, { key });
  $("cancel-confirm").disabled = true;
  const result = $("cancel-result");
  result.dataset.status = done.status;
  result.textContent = `Cancelled: ${money(done.refund, done.currency)} refunded, ${money(done.fee, done.currency)} fee kept (${done.rule}).`;
  await loadMine();
}

// ---- Admin: the sale switch, capacity, refunds on a buyer's behalf, a live chart ------

/** Reads the chosen session's switch and shows it. */
async function refreshSale() {
  const id = $("admin-session").value;
  if (!id || !state.access) return;
  const s = await api("GET", `/api/admin/sessions/${id}/sale`);
  if ($("admin-session").value !== id) return;
  const shown = $("admin-sale");
  shown.dataset.sale = s.switch.state;
  shown.textContent = `Sale: ${s.switch.state.toUpperCase()} · status ${s.status.replace("_", " ")}` +
    (s.switch.reason ? ` · ${s.switch.reason}` : "");
  if (s.switch.state === "cancelled") {
    const run = await api("GET", `/api/admin/sessions/${id}/refund-run`);
    const r = run.run;
    $("admin-refund-run").textContent = r
      ? `Refund run: ${r.complete ? "complete" : "in progress"} · ${r.refunded} refunded, ${r.already_refunded} already, ${r.released} released, ${r.pending} pending, ${r.failed} failed`
      : "Refund run: not running here.";
  } else {
    $("admin-refund-run").textContent = "";
  }
}

/** Moves the chosen session's switch. */
async function moveSale(verb) {
  const id = $("admin-session").value;
  if (!id) throw new ApiError(400, "VALIDATION", "choose a session");
  if (verb === "cancel" && !window.confirm("Cancel the show and refund every buyer in full?")) return;
  const reason = $("admin-reason").value.trim();
  const body = reason ? { reason } : {};
  const out = await api("POST", `/api/admin/sessions/${id}/${verb}`, { body, key: newKey() });
  $("admin-sale-status").textContent = out.changed
    ? `Sale ${out.switch.state}.`
    : `Already ${out.switch.state}.`;
  await refreshSale();
  await loadEvents();
}

async function addCapacity() {
  const id = $("admin-session").value;
  const grade = $("capacity-grade").value.trim();
  const units = Number.parseInt($("capacity-units").value, 10);
  const out = await api("POST", `/api/admin/sessions/${id}/capacity`, {
    body: { kind: "add_units", grade, units },
    key: newKey(),
  });
  const g = out.grades[0];
  $("capacity-status").textContent = g
    ? `Capacity now ${out.capacity}: ${g.grade} ${g.available} available, ${g.held} held, ${g.sold} sold.`
    : `Capacity now ${out.capacity}.`;
  await refreshStats();
}

async function refundOnBehalf() {
  const hold = $("behalf-hold").value.trim();
  const reason = $("behalf-reason").value.trim();
  const refund = $("behalf-refund").value;
  const out = await api("POST", `/api/admin/reservations/${hold}/cancel`, {
    body: { reason, refund },
    key: newKey(),
  });
  const status = $("behalf-status");
  status.dataset.status = out.status;
  status.textContent = `Cancelled ${out.id}: ${money(out.refund, out.currency)} refunded, fee ${money(out.fee, out.currency)} (${out.rule}).`;
  await refreshStats();
}

/** The chart's samples: per second, the session's sold / held / waiting counts. */
const chart = { session: null, points: [] };
const CHART_POINTS = 120;

function pushStats(id, s) {
  if (chart.session !== id) {
    chart.session = id;
    chart.points = [];
  }
  chart.points.push({ sold: s.sold, held: s.held, waiting: s.queue_length });
  if (chart.points.length > CHART_POINTS) chart.points.shift();
  drawChart();
}

/** Draws the samples as three lines on the canvas (no library; scales with the screen). */
function drawChart() {
  const canvas = $("stats-chart");
  if (!canvas || canvas.offsetParent === null) return;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const pts = chart.points;
  const max = Math.max(1, ...pts.flatMap((p) => [p.sold, p.held, p.waiting]));
  const pad = 24;
  ctx.strokeStyle = "#ccc";
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(pad, pad / 2);
  ctx.lineTo(pad, height - pad);
  ctx.lineTo(width - 4, height - pad);
  ctx.stroke();
  ctx.fillStyle = "#555";
  ctx.font = "11px sans-serif";
  ctx.fillText(String(max), 2, pad / 2 + 8);
  ctx.fillText("0", 2, height - pad);
  const series = [
    ["sold", "#2a7d2a"],
    ["held", "#c77700"],
    ["waiting", "#2255aa"],
  ];
  const x = (i) => pad + ((width - pad - 4) * i) / Math.max(1, CHART_POINTS - 1);
  const y = (v) => height - pad - ((height - pad * 1.5) * v) / max;
  series.forEach(([key, color], n) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    pts.forEach((p, i) => (i === 0 ? ctx.moveTo(x(i), y(p[key])) : ctx.lineTo(x(i), y(p[key]))));
    ctx.stroke();
    ctx.fillStyle = color;
    ctx.fillText(key, pad + 6 + n * 60, height - 6);
  });
  canvas.dataset.points = String(pts.length);
}

function wireSales() {
  for (const verb of ["pause", "resume", "close", "cancel"]) {
    action($(`admin-${verb}`), () => moveSale(verb));
  }
  action($("capacity-add"), addCapacity);
  action($("behalf-cancel"), refundOnBehalf);
  action($("cancel-confirm"), confirmCancel);
  $("cancel-keep").addEventListener("click", hideCancelDialog);
  $("admin-session").addEventListener("change", () => refreshSale().catch(showError));
  window.addEventListener("resize", drawChart);
}
