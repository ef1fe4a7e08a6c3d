// The jobs console: an admin signs in, watches the queue and decides about dead jobs.
// Everything goes through the public API with the admin's own token. Data is only ever put in
// the page as text (textContent), never as markup. The token lives in sessionStorage: it dies
// with the tab and is never shared with other tabs or kept on disk.

const SESSION_KEY = "impextech.console.session";
const REFRESH_MS = 5000;
const PAGE_SIZE = 25;
const STATES = ["queued", "running", "failed", "dead", "succeeded", "discarded"];
const ERROR_PREVIEW = 160;
const openErrors = new Set();

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.title || `HTTP ${status}`);
    this.status = status;
    this.title = problem.title || `The server answered ${status}`;
    this.detail = problem.detail && problem.detail !== problem.title ? problem.detail : "";
  }
}

// --- session ---------------------------------------------------------------------------------

let session = loadSession();

function loadSession() {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    const value = raw ? JSON.parse(raw) : null;
    if (value && typeof value.token === "string" && typeof value.tenant === "string") {
      return value;
    }
  } catch {
    // A malformed entry is treated as no session.
  }
  return null;
}

function saveSession(value) {
  session = value;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
}

function clearSession() {
  session = null;
  sessionStorage.removeItem(SESSION_KEY);
}

// --- API -------------------------------------------------------------------------------------

async function api(path, { method = "GET", body, tenant, token } = {}) {
  const headers = { Accept: "application/json" };
  const bearer = token || (session && session.token);
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (tenant) headers["X-Tenant"] = tenant;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, {
      title: "The server did not answer",
      detail: "Check the connection and try again.",
    });
  }
  let document_ = null;
  if (response.status !== 204 && (response.headers.get("content-type") || "").includes("json")) {
    try {
      document_ = await response.json();
    } catch {
      document_ = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, document_ || {});
  return document_;
}

// --- feedback --------------------------------------------------------------------------------

function show(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

function problemText(error) {
  if (!(error instanceof ApiError)) return String(error);
  return error.detail ? `${error.title}: ${error.detail}` : error.title;
}

function actionOk(text) {
  show($("action-error"), "");
  show($("action-ok"), text);
}

function actionError(prefix, error) {
  show($("action-ok"), "");
  show($("action-error"), `${prefix} ${problemText(error)}`);
}

// --- formatting ------------------------------------------------------------------------------

function shortId(id) {
  return id.slice(0, 8);
}

function utc(iso) {
  if (!iso) return "–";
  return new Date(iso).toISOString().replace("T", " ").slice(0, 19);
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (seconds < 10) return `${Math.max(0, seconds).toFixed(1)} s`;
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function ago(iso) {
  if (!iso) return "";
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  return seconds < 5 ? "just now" : `${duration(seconds).split(" ").slice(0, 2).join(" ")} ago`;
}

// --- views -----------------------------------------------------------------------------------

function showSignIn(notice = "") {
  stopTimer();
  $("dashboard").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  show($("signin-notice"), notice);
  $("password").value = "";
  const first = $("tenant").value ? ($("email").value ? $("password") : $("email")) : $("tenant");
  first.focus();
}

function showDashboard() {
  $("signin").hidden = true;
  show($("signin-error"), "");
  show($("signin-notice"), "");
  $("who-email").textContent = session.email;
  $("who-tenant").textContent = session.tenant;
  $("who").hidden = false;
  $("dashboard").hidden = false;
}

// The session ended under us (expired, signed out elsewhere, account changed): back to the form.
function sessionEnded(notice = "Your session has ended. Sign in again to continue.") {
  const previous = session;
  clearSession();
  if (previous) {
    $("tenant").value = previous.tenant;
    $("email").value = previous.email;
  }
  show($("action-ok"), "");
  show($("action-error"), "");
  showSignIn(notice);
}

// 401: the token is no longer good; 403: the account is no longer an admin here.
function endedBy(error) {
  if (!(error instanceof ApiError)) return false;
  if (error.status === 401) {
    sessionEnded();
    return true;
  }
  if (error.status === 403 && session) {
    const { email, tenant } = session;
    sessionEnded(`${email} is no longer an admin of “${tenant}”. Sign in with an admin account.`);
    return true;
  }
  return false;
}

function renderSummary(summary) {
  const counts = summary.by_state || {};
  for (const state of STATES) {
    const cell = document.querySelector(`.stat[data-state="${state}"]`);
    const value = Number(counts[state] || 0);
    cell.querySelector("[data-count]").textContent = value.toLocaleString("en");
    cell.classList.toggle("is-alert", state === "dead" && value > 0);
  }
  const oldest = $("oldest");
  const waiting = summary.oldest_waiting_seconds;
  oldest.querySelector("[data-count]").textContent =
    waiting === null || waiting === undefined ? "None waiting" : duration(waiting);
  oldest.classList.toggle("is-warn", waiting !== null && waiting >= 60 && waiting < 600);
  oldest.classList.toggle("is-alert", waiting !== null && waiting >= 600);
}

function cell(row, className, ...children) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.append(...children);
  row.append(td);
  return td;
}

function element(tag, className, text, title) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (title) node.title = title;
  return node;
}

function jobRow(job) {
  const row = document.createElement("tr");
  row.dataset.jobId = job.id;
  const id = element("code", "job-id", shortId(job.id), job.id);
  cell(row, "", id);
  cell(row, "", element("span", "kind", job.kind));
  cell(row, "num", `${job.attempts} / ${job.max_attempts}`);
  const when = cell(row, "when", element("span", "mono", utc(job.finished_at)));
  when.append(element("span", "muted small", ago(job.finished_at)));
  const error = job.last_error || "(no error recorded)";
  if (error.length <= ERROR_PREVIEW) {
    cell(row, "error", element("span", "error-text", error));
  } else {
    // A long error (a traceback) opens in place; it stays open across refreshes.
    const details = element("details", "error-more");
    const summary = element("summary");
    summary.append(
      element("span", "error-text error-preview", `${error.slice(0, ERROR_PREVIEW)}…`),
      element("span", "more more-show", "Show the whole error"),
      element("span", "more more-hide", "Hide"),
    );
    details.append(summary, element("pre", "error-full", error));
    details.open = openErrors.has(job.id);
    details.addEventListener("toggle", () => {
      if (details.open) openErrors.add(job.id);
      else openErrors.delete(job.id);
    });
    cell(row, "error", details);
  }
  const actions = cell(row, "actions");
  const retry = element("button", "btn btn-small", "Retry");
  retry.type = "button";
  retry.dataset.action = "retry";
  retry.setAttribute("aria-label", `Retry job ${shortId(job.id)}`);
  const discard = element("button", "btn btn-small btn-danger-outline", "Discard");
  discard.type = "button";
  discard.dataset.action = "discard";
  discard.setAttribute("aria-label", `Discard job ${shortId(job.id)}`);
  actions.append(retry, discard);
  retry.addEventListener("click", () => retryJob(job, row));
  discard.addEventListener("click", () => confirmDiscard(job, row));
  return row;
}

let deadItems = [];
let deadCursor = null;

function renderDead() {
  const body = $("dead-rows");
  // Keep a keyboard user's place when the table is redrawn by the auto-refresh.
  const focused = document.activeElement;
  const focusedRow = focused && focused.closest ? focused.closest("tr[data-job-id]") : null;
  const focusKey = focusedRow ? [focusedRow.dataset.jobId, focused.dataset.action] : null;
  body.replaceChildren(...deadItems.map(jobRow));
  $("dead-table").hidden = deadItems.length === 0;
  $("dead-empty").hidden = deadItems.length > 0;
  $("dead-more-wrap").hidden = deadCursor === null;
  if (focusKey) {
    const again = body.querySelector(
      `tr[data-job-id="${CSS.escape(focusKey[0])}"] [data-action="${focusKey[1]}"]`,
    );
    if (again) again.focus();
  }
}

// --- loading ---------------------------------------------------------------------------------

let pagesShown = 1;
let lastDeadSignature = "";

// Bumped by every retry or discard: a list fetched before one is stale and is not drawn.
let listGeneration = 0;

async function loadDeadFirstPage() {
  const generation = listGeneration;
  const page = await api(`/api/v1/jobs?state=dead&limit=${PAGE_SIZE}`);
  if (generation !== listGeneration) return;
  const signature = JSON.stringify(page);
  if (signature === lastDeadSignature) return;
  lastDeadSignature = signature;
  deadItems = page.items;
  deadCursor = page.next_cursor;
  pagesShown = 1;
  renderDead();
}

async function loadMoreDead() {
  if (!deadCursor) return;
  const button = $("dead-more");
  button.disabled = true;
  try {
    const page = await api(
      `/api/v1/jobs?state=dead&limit=${PAGE_SIZE}&cursor=${encodeURIComponent(deadCursor)}`,
    );
    const known = new Set(deadItems.map((job) => job.id));
    deadItems = deadItems.concat(page.items.filter((job) => !known.has(job.id)));
    deadCursor = page.next_cursor;
    pagesShown += 1;
    renderDead();
  } catch (error) {
    if (endedBy(error)) return;
    actionError("Could not load more dead jobs.", error);
  } finally {
    button.disabled = false;
  }
}

let refreshing = false;

async function refresh({ everything = false } = {}) {
  if (!session || refreshing) return;
  if (session.expiresAt && Date.now() >= session.expiresAt) return sessionEnded();
  refreshing = true;
  const updated = $("updated");
  const generation = listGeneration;
  try {
    const summary = await api("/api/v1/jobs/summary");
    if (generation !== listGeneration) return; // an action since: a newer refresh follows
    renderSummary(summary);
    // With more than one page on screen, the list waits for "Refresh now" instead of jumping.
    if (everything || pagesShown === 1) {
      if (everything) lastDeadSignature = "";
      await loadDeadFirstPage();
    }
    updated.classList.remove("is-warn");
    updated.textContent = `Updated ${utc(new Date().toISOString()).slice(11)} UTC`;
  } catch (error) {
    if (endedBy(error)) return;
    updated.classList.add("is-warn");
    updated.textContent = `Refresh failed at ${utc(new Date().toISOString()).slice(11)} UTC: ${problemText(error)}`;
  } finally {
    refreshing = false;
  }
}

let timer = null;

function startTimer() {
  stopTimer();
  timer = setInterval(() => {
    if (!$("auto-refresh").checked || document.hidden || $("confirm-discard").open) return;
    if (actionsInFlight > 0) return;
    refresh();
  }, REFRESH_MS);
}

function stopTimer() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}

// --- actions ---------------------------------------------------------------------------------

let actionsInFlight = 0;

function setRowBusy(row, busy, label) {
  for (const button of row.querySelectorAll("button")) button.disabled = busy;
  row.classList.toggle("is-busy", busy);
  if (label) row.querySelector(`[data-action="${label[0]}"]`).textContent = label[1];
}

function focusAfterRemoval(row) {
  const next = row.nextElementSibling || row.previousElementSibling;
  const target = next ? next.querySelector("button") : null;
  (target || $("dead-title")).focus();
}

async function act(job, row, verb, doneText) {
  actionsInFlight += 1;
  const original = verb === "retry" ? "Retry" : "Discard";
  setRowBusy(row, true, [verb, verb === "retry" ? "Retrying…" : "Discarding…"]);
  try {
    await api(`/api/v1/jobs/${encodeURIComponent(job.id)}/${verb}`, { method: "POST" });
    listGeneration += 1;
    actionOk(doneText);
    focusAfterRemoval(row);
    deadItems = deadItems.filter((item) => item.id !== job.id);
    lastDeadSignature = "";
    renderDead();
    refreshing = false; // a refresh started before the action may not overwrite its result
    await refresh({ everything: pagesShown === 1 });
  } catch (error) {
    if (endedBy(error)) return;
    setRowBusy(row, false, [verb, original]);
    actionError(`Could not ${verb} job ${shortId(job.id)}.`, error);
    if (error instanceof ApiError && (error.status === 409 || error.status === 404)) {
      await refresh({ everything: true });
    }
  } finally {
    actionsInFlight -= 1;
  }
}

function retryJob(job, row) {
  return act(
    job,
    row,
    "retry",
    `Job ${shortId(job.id)} (${job.kind}) is queued again with a fresh set of attempts.`,
  );
}

let pendingDiscard = null;

function confirmDiscard(job, row) {
  pendingDiscard = { job, row };
  $("confirm-id").textContent = job.id;
  $("confirm-kind").textContent = job.kind;
  const dialog = $("confirm-discard");
  dialog.returnValue = "";
  dialog.showModal();
}

function onDialogClose() {
  const dialog = $("confirm-discard");
  const pending = pendingDiscard;
  pendingDiscard = null;
  if (!pending) return;
  if (dialog.returnValue !== "discard") {
    pending.row.querySelector('[data-action="discard"]').focus();
    return;
  }
  act(pending.job, pending.row, "discard", `Job ${shortId(pending.job.id)} (${pending.job.kind}) was discarded.`);
}

// --- sign in and out -------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const errorBox = $("signin-error");
  show(errorBox, "");
  show($("signin-notice"), "");
  const tenant = $("tenant").value.trim().toLowerCase();
  const email = $("email").value.trim();
  const password = $("password").value;
  const missing = [
    [tenant, "tenant", "the marketplace"],
    [email, "email", "your email"],
    [password, "password", "your password"],
  ].filter(([value]) => !value);
  for (const input of ["tenant", "email", "password"]) $(input).removeAttribute("aria-invalid");
  if (missing.length) {
    for (const [, id] of missing) $(id).setAttribute("aria-invalid", "true");
    show(errorBox, `Enter ${missing.map(([, , what]) => what).join(", ")}.`);
    $(missing[0][1]).focus();
    return;
  }
  const submit = $("signin-submit");
  submit.disabled = true;
  submit.textContent = "Signing in…";
  try {
    const tokens = await api("/api/v1/auth/login", {
      method: "POST",
      tenant,
      body: { email, password },
    });
    try {
      await api("/api/v1/jobs/summary", { token: tokens.access_token });
    } catch (error) {
      if (error instanceof ApiError && error.status === 403) {
        // Not an admin: end the session we just opened and stay on the form.
        await api("/api/v1/auth/logout", { method: "POST", token: tokens.access_token }).catch(
          () => {},
        );
        $("password").value = "";
        show(
          errorBox,
          `${email} is not an admin of “${tenant}”. The jobs console is for marketplace admins only.`,
        );
        $("email").focus();
        return;
      }
      throw error;
    }
    saveSession({
      token: tokens.access_token,
      expiresAt: Date.now() + Number(tokens.expires_in || 0) * 1000,
      tenant,
      email,
    });
    $("password").value = "";
    enterDashboard();
  } catch (error) {
    $("password").value = "";
    show(errorBox, problemText(error));
    $("password").focus();
  } finally {
    submit.disabled = false;
    submit.textContent = "Sign in";
  }
}

async function signOut() {
  const token = session && session.token;
  clearSession();
  if (token) {
    await api("/api/v1/auth/logout", { method: "POST", token }).catch(() => {});
  }
  show($("action-ok"), "");
  show($("action-error"), "");
  deadItems = [];
  lastDeadSignature = "";
  renderDead();
  showSignIn("You are signed out.");
}

function enterDashboard() {
  showDashboard();
  lastDeadSignature = "";
  refresh({ everything: true });
  startTimer();
  $("dashboard-title").focus();
}

// --- start -----------------------------------------------------------------------------------

function start() {
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("refresh").addEventListener("click", () => refresh({ everything: true }));
  $("dead-more").addEventListener("click", loadMoreDead);
  $("confirm-discard").addEventListener("close", onDialogClose);
  $("auto-refresh").addEventListener("change", () => {
    if ($("auto-refresh").checked) refresh();
  });
  if (session) {
    enterDashboard();
  } else {
    showSignIn();
  }
}

start();
