// The REST API and the NDJSON event stream, with the tab's token as a Bearer header.
// The token lives in sessionStorage: this tab only, gone when it closes; never a cookie, never a URL.

const KEY = "kgen.token";

export function getToken() { return sessionStorage.getItem(KEY); }
export function setToken(token) { sessionStorage.setItem(KEY, token); }
export function clearToken() { sessionStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra = {}) {
  const token = getToken();
  return { Accept: "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra };
}

async function failure(resp) {
  let code = "http_error";
  let message = `${resp.status} ${resp.statusText}`;
  try {
    const body = await resp.json();
    if (body && body.error) { code = body.error.code; message = body.error.message; }
  } catch (_) { /* not JSON */ }
  return new ApiError(resp.status, code, message);
}

let onAuthError = () => {};
export function setAuthErrorHandler(fn) { onAuthError = fn; }

export async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}),
                 cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" };
  if (body) init.body = JSON.stringify({ api_version: "v1", ...body });
  const resp = await fetch(`/api/v1${path}`, init);
  if (!resp.ok) {
    const err = await failure(resp);
    if (resp.status === 401 || resp.status === 403) onAuthError(err);
    throw err;
  }
  return resp.json();
}

// Follow a job's events; resumes with ?after=<last seq> whenever the connection drops before the
// stream's `end` line. Calls onEvent(event) for each stored event (in seq order, never twice),
// onState(state, detail) with "live" | "reconnecting" | "ended" | "error". Returns a stop function.
export function followEvents(jobId, { after = 0, onEvent, onState }) {
  let last = after;
  let stopped = false;
  let controller = null;
  let delay = 500;

  async function once() {
    controller = new AbortController();
    const resp = await fetch(`/api/v1/jobs/${encodeURIComponent(jobId)}/events?after=${last}&follow=1`,
      { headers: headers({ Accept: "application/x-ndjson" }), signal: controller.signal, cache: "no-store",
        credentials: "omit", referrerPolicy: "no-referrer" });
    if (!resp.ok) {
      const err = await failure(resp);
      if (resp.status === 401 || resp.status === 403) onAuthError(err);
      throw err;
    }
    onState("live", last);
    delay = 500;
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let event;
        try { event = JSON.parse(line); } catch (_) { continue; }
        if (event.type === "end") { onState("ended", event.status); return true; }
        if (event.type === "heartbeat") continue;
        if (typeof event.seq === "number") {
          if (event.seq <= last) continue;
          last = event.seq;
        }
        onEvent(event);
      }
    }
    return false;   // closed without `end`: the gateway restarted or the network dropped
  }

  (async () => {
    while (!stopped) {
      try {
        if (await once()) return;
        if (stopped) return;
        onState("reconnecting", last);
      } catch (err) {
        if (stopped) return;
        if (err instanceof ApiError && err.status < 500 && err.status !== 429) { onState("error", err.message); return; }
        onState("reconnecting", last);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 8000);
    }
  })();

  return () => { stopped = true; if (controller) controller.abort(); };
}
