// The HTTP API client: same-origin fetches with the ACL token header, Nomad's plain-text errors,
// and blocking-query watches (long polls with `index`: a request returns only when something
// changed or the wait ran out, so an idle page makes one request every WAIT).

import { getToken, onTokenChange } from "./token.js";

export const WAIT = "5m";

/** An API failure: the HTTP status (0: no answer) and the server's plain-text message. */
export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.status = status;
    this.path = path;
  }

  /** A one-line description for the error banner. */
  describe() {
    const what = this.status ? `${this.status}` : "no answer";
    return `${what}: ${this.message || "request failed"}`;
  }
}

function apiUrl(path, params) {
  if (!path.startsWith("/v1/")) throw new Error(`not an API path: ${path}`);
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, String(value));
  }
  return url;
}

/**
 * One API call. Only paths under /v1/ on this page's own origin are ever requested, with
 * `mode: "same-origin"`, so the token header cannot go anywhere else.
 * Returns `{ body, index, nextToken }`; throws ApiError.
 */
export async function request(method, path, { params, body, signal } = {}) {
  const headers = {};
  const token = getToken();
  if (token) headers["X-Nomad-Token"] = token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(apiUrl(path, params), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      mode: "same-origin",
      credentials: "omit",
      cache: "no-store",
      redirect: "error",
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, String(err.message || err), path);
  }
  const text = await response.text();
  if (!response.ok) throw new ApiError(response.status, text.trim() || response.statusText, path);
  return {
    body: text ? JSON.parse(text) : null,
    index: Number(response.headers.get("X-Nomad-Index") || 0),
    nextToken: response.headers.get("X-Nomad-NextToken") || "",
  };
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

function tokenChanged(signal) {
  return new Promise((resolve) => {
    const stop = onTokenChange(() => { stop(); resolve(); });
    signal.addEventListener("abort", () => { stop(); resolve(); }, { once: true });
  });
}

/**
 * Watch a GET endpoint with blocking queries until `signal` aborts. `onUpdate(result, error)` is
 * called when the answer changes (never for an unchanged answer) or on an error. A 4xx answer
 * (bad filter, unknown allocation, permission denied) waits for a new token instead of retrying;
 * a 5xx or lost connection retries with backoff. A new token restarts the watch at once.
 */
export async function watch(path, params, signal, onUpdate) {
  let index = 0;
  let last = null;
  let backoff = 1000;
  let restart = new AbortController();
  const stopTokenWatch = onTokenChange(() => { index = 0; last = null; restart.abort(); });
  signal.addEventListener("abort", () => restart.abort(), { once: true });
  try {
    while (!signal.aborted) {
      try {
        const query = { ...params, index: index || null, wait: index ? WAIT : null };
        const result = await request("GET", path, { params: query, signal: restart.signal });
        backoff = 1000;
        index = Math.max(result.index, 1);
        const key = JSON.stringify([result.body, result.nextToken]);
        if (key !== last) {
          last = key;
          onUpdate(result, null);
        }
      } catch (err) {
        if (signal.aborted) return;
        if (err.name === "AbortError") { restart = new AbortController(); continue; }
        last = null;
        index = 0;
        onUpdate(null, err);
        if (err.status >= 400 && err.status < 500) await tokenChanged(signal);
        else { await sleep(backoff, signal); backoff = Math.min(backoff * 2, 30000); }
        restart = new AbortController();
      }
    }
  } finally {
    stopTokenWatch();
  }
}
