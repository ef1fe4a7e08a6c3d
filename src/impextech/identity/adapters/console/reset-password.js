// The page a password-reset e-mail links to: ask for a link, or set a new password with one.
// It holds no data of its own: it calls the public API, whose rules (password policy, single-use
// tokens, rate limits) are the only ones that count.

const $ = (id) => document.getElementById(id);

function show(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

async function post(path, body, headers = {}) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
    credentials: "omit",
  });
  if (response.ok) return null;
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    // not problem+json: fall back to the status line
  }
  return { status: response.status, problem };
}

function problemText(failure) {
  const { status, problem } = failure;
  if (status === 400 && problem.type && problem.type.endsWith("/invalid-reset-token")) {
    return "This link no longer works: it was used already or it expired. Ask for a new one below.";
  }
  if (status === 429) return problem.detail || "Too many attempts; try again later.";
  const fields = (problem.errors || []).map((e) => e.message).filter(Boolean);
  if (fields.length) return fields.join(" ");
  return problem.detail || problem.title || `The request failed (${status}).`;
}

function askForLink(notice = "") {
  $("ask").hidden = false;
  $("choose").hidden = true;
  show($("ask-error"), notice);
  $("tenant").focus();
}

async function onAsk(event) {
  event.preventDefault();
  show($("ask-error"), "");
  show($("ask-done"), "");
  const tenant = $("tenant").value.trim().toLowerCase();
  const email = $("email").value.trim();
  if (!tenant || !email) {
    show($("ask-error"), "Enter your marketplace and your e-mail address.");
    return;
  }
  $("ask-submit").disabled = true;
  try {
    const failure = await post("/api/v1/auth/password-reset", { email }, { "X-Tenant": tenant });
    if (failure) show($("ask-error"), problemText(failure));
    else show($("ask-done"), "If this address has an account there, a link is on its way.");
  } catch {
    show($("ask-error"), "The service could not be reached. Check your connection and retry.");
  } finally {
    $("ask-submit").disabled = false;
  }
}

async function onChoose(event, token) {
  event.preventDefault();
  const password = $("password").value;
  const again = $("again").value;
  $("again").removeAttribute("aria-invalid");
  if (password.length < 12) {
    show($("choose-error"), "Use at least 12 characters.");
    return;
  }
  if (password !== again) {
    $("again").setAttribute("aria-invalid", "true");
    show($("choose-error"), "The two passwords differ.");
    return;
  }
  show($("choose-error"), "");
  $("choose-submit").disabled = true;
  try {
    const failure = await post("/api/v1/auth/password-reset/confirm", {
      token,
      new_password: password,
    });
    if (!failure) {
      $("choose").hidden = true;
      $("done").hidden = false;
      $("done-title").focus();
    } else if (failure.status === 400 || failure.status === 401) {
      askForLink(problemText(failure));
    } else {
      show($("choose-error"), problemText(failure));
    }
  } catch {
    show($("choose-error"), "The service could not be reached. Check your connection and retry.");
  } finally {
    $("choose-submit").disabled = false;
  }
}

function start() {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token");
  $("ask-form").addEventListener("submit", onAsk);
  if (!token) {
    askForLink();
    return;
  }
  // Keep the token out of the address bar and the history once it is read.
  window.history.replaceState(null, "", window.location.pathname);
  $("choose").hidden = false;
  $("choose-form").addEventListener("submit", (event) => onChoose(event, token));
  $("password").focus();
}

start();
