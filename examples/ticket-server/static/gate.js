// The ticketrush gate page: gate staff (a GATE account) or an admin log in, pick the session
// being checked in, and paste, type or scan each ticket's code; the page shows the gate's
// answer (POST /api/tickets/verify) as a large ADMITTED or REFUSED with the reason.
//
// Plain JavaScript over the server's JSON API on this origin, separate from the demo page's
// script. Tokens stay in memory (a reload logs out) and never go into a URL. Camera scanning
// uses the browser's BarcodeDetector where it exists (feature-detected, never required).
"use strict";

const $ = (id) => document.getElementById(id);

/** Everything the page knows. */
const gate = {
  access: null, // access token (JWT)
  refresh: null, // refresh token, single use
  me: null, // {id, email, role}
  camera: null, // {stream, timer} while the camera scans
};

/** An error answer of the API: `{"error": {"code", "message"}}`. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A new element with attributes (`text` sets textContent). */
function el(tag, attrs = {}) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
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

/** Calls the API, once more after a token refresh when the access token expired. */
async function api(method, path, body) {
  const send = () => {
    const headers = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (gate.access) headers.authorization = `Bearer ${gate.access}`;
    return fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  };
  let resp = await send();
  if (resp.status === 401 && gate.refresh && (await refreshTokens())) resp = await send();
  return parse(resp);
}

/** Trades the refresh token for new tokens; false (and logged out) when that fails. */
async function refreshTokens() {
  const resp = await fetch("/api/auth/refresh", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ refresh_token: gate.refresh }),
  });
  if (!resp.ok) {
    loggedOut("Your session ended: log in again.");
    return false;
  }
  const tokens = await resp.json();
  gate.access = tokens.access_token;
  gate.refresh = tokens.refresh_token;
  return true;
}

// ---------------------------------------------------------------------------------------
// Logging in

async function login() {
  const body = { email: $("email").value.trim(), password: $("password").value };
  const tokens = await api("POST", "/api/auth/login", body);
  gate.access = tokens.access_token;
  gate.refresh = tokens.refresh_token;
  gate.me = await api("GET", "/api/me");
  $("password").value = "";
  $("whoami").textContent = `${gate.me.email} (${gate.me.role.toLowerCase()})`;
  $("logout").hidden = false;
  $("auth-section").hidden = true;
  $("check-section").hidden = false;
  // A buyer's account may try: the gate API refuses it (403), and the page says so.
  $("scan-status").textContent =
    gate.me.role === "GATE" || gate.me.role === "ADMIN"
      ? ""
      : "This account is not gate staff: the gate will refuse its check-ins.";
  await loadSessions();
  $("code").focus();
}

async function logout() {
  try {
    await api("POST", "/api/auth/logout");
  } finally {
    loggedOut("Logged out.");
  }
}

function loggedOut(message) {
  stopCamera();
  Object.assign(gate, { access: null, refresh: null, me: null });
  $("whoami").textContent = "Not logged in";
  $("logout").hidden = true;
  $("auth-section").hidden = false;
  $("check-section").hidden = true;
  $("result").hidden = true;
  $("code").value = "";
  $("auth-status").textContent = message;
}

// ---------------------------------------------------------------------------------------
// The session being checked in

async function loadSessions() {
  const page = await api("GET", "/api/events?per_page=50");
  const select = $("session");
  const chosen = select.value;
  select.replaceChildren();
  for (const event of page.items) {
    for (const session of event.sessions) {
      const kind = session.kind === "seated" ? "seated" : "general admission";
      const when = new Date(session.starts_at).toLocaleString();
      select.append(el("option", { value: session.id, text: `${event.name}: ${kind} · ${when}` }));
    }
  }
  if (chosen && [...select.options].some((o) => o.value === chosen)) select.value = chosen;
  $("check-in").disabled = select.options.length === 0;
  if (select.options.length === 0) $("scan-status").textContent = "No sessions to check in.";
}

// ---------------------------------------------------------------------------------------
// Checking a ticket in

/** What each refusal of the gate API means, in a few words. */
const REASONS = {
  TICKET_ALREADY_USED: "Already used",
  WRONG_SESSION: "Wrong session",
  TICKET_NOT_VALID: "Not valid",
  INVALID_TICKET: "Bad code",
};

/** Shows a verdict: `admitted` or `refused`, with the reason and details. */
function showVerdict(verdict, reason, detail) {
  const box = $("result");
  box.dataset.verdict = verdict;
  $("verdict").textContent = verdict === "admitted" ? "ADMITTED" : "REFUSED";
  $("reason").textContent = reason;
  $("detail").textContent = detail;
  box.hidden = false;
}

async function checkIn() {
  const code = $("code").value.trim();
  const session = $("session").value;
  if (!code) {
    $("code").focus();
    throw new Error("paste or scan a ticket code first");
  }
  $("result").hidden = true;
  try {
    const t = await api("POST", "/api/tickets/verify", { code, session_id: session });
    const seat = t.seat ? ` · seat ${t.seat}` : "";
    const at = new Date(t.used_at).toLocaleTimeString();
    showVerdict("admitted", `Ticket ${t.ticket_id}`, `${t.grade}${seat} · checked in at ${at}`);
  } catch (e) {
    // The gate's refusals of the ticket itself are verdicts; anything else (403 for an
    // account that is not gate staff, an expired login, the server) is a message.
    if (!(e instanceof ApiError && e.code in REASONS)) throw e;
    showVerdict("refused", REASONS[e.code], `${e.code}: ${e.message}`);
  } finally {
    $("code").value = "";
    $("code").focus();
  }
}

// ---------------------------------------------------------------------------------------
// The camera (where the browser can read QR codes)

async function cameraScans() {
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia) return false;
  try {
    return (await window.BarcodeDetector.getSupportedFormats()).includes("qr_code");
  } catch {
    return false;
  }
}

async function startCamera() {
  const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: "environment" },
    audio: false,
  });
  const video = $("camera");
  video.srcObject = stream;
  video.hidden = false;
  await video.play();
  $("scan").textContent = "Stop camera";
  $("scan-status").textContent = "Point the camera at the ticket's QR code.";
  const scanning = { stream, timer: null, busy: false };
  gate.camera = scanning;
  scanning.timer = setInterval(async () => {
    if (scanning.busy || gate.camera !== scanning) return;
    scanning.busy = true;
    try {
      const found = await detector.detect(video);
      const code = found.map((f) => f.rawValue).find((v) => v && v.startsWith("TR1."));
      if (code && gate.camera === scanning) {
        stopCamera();
        $("code").value = code;
        clearError();
        await checkIn();
      }
    } catch (e) {
      showError(e);
    } finally {
      scanning.busy = false;
    }
  }, 250);
}

function stopCamera() {
  const scanning = gate.camera;
  gate.camera = null;
  if (!scanning) return;
  clearInterval(scanning.timer);
  for (const track of scanning.stream.getTracks()) track.stop();
  const video = $("camera");
  video.srcObject = null;
  video.hidden = true;
  $("scan").textContent = "Scan with camera";
  $("scan-status").textContent = "";
}

// ---------------------------------------------------------------------------------------
// Wiring

/** Runs `fn` on `ev`; errors go to the banner, and events while it runs are ignored. */
function action(target, event, fn) {
  let busy = false;
  target.addEventListener(event, async (ev) => {
    ev.preventDefault();
    if (busy) return;
    busy = true;
    clearError();
    try {
      await fn();
    } catch (e) {
      showError(e);
    } finally {
      busy = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", async () => {
  action($("auth-form"), "submit", login);
  action($("logout"), "click", logout);
  action($("check-form"), "submit", checkIn);
  // Enter in the code field checks in (a scanner that types ends with Enter).
  $("code").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      $("check-form").requestSubmit();
    }
  });
  action($("scan"), "click", () => (gate.camera ? stopCamera() : startCamera()));
  $("scan").hidden = !(await cameraScans());
});
