// The ACL token: kept in sessionStorage only (gone when the tab closes), never put in a URL.
// Read by api.js for every request and by terminal.js for the exec handshake.

const KEY = "allocsvc.token";
const listeners = new Set();

/** The current secret, or "". */
export function getToken() {
  return sessionStorage.getItem(KEY) || "";
}

/** Store (or clear, with "") the secret and tell every listener. */
export function setToken(secret) {
  const value = secret.trim();
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
  for (const fn of listeners) fn(value);
}

/** Call `fn(secret)` whenever the token changes; returns an unsubscribe function. */
export function onTokenChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
