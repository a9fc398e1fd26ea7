// DOM building without HTML parsing: every string becomes a text node, so no server data can
// become markup. Used by every view.

/**
 * Create an element. `attrs` keys: `class`, `text`, `on<Event>` (listener), `dataset`, anything
 * else becomes an attribute (never `innerHTML`). Children may be nodes, strings or null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2).toLowerCase(), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** The first 8 characters of a UUID, as Nomad's UI and CLI show them. */
export function shortId(id) {
  return String(id).slice(0, 8);
}

/** A Go nanosecond timestamp as local date-time text. */
export function formatNanos(nanos) {
  if (!nanos) return "";
  return new Date(Number(BigInt(nanos) / 1000000n)).toLocaleString();
}

/** An RFC 3339 time (or null) as local date-time text. */
export function formatTime(text) {
  if (!text) return "";
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? String(text) : date.toLocaleString();
}

/** How long ago a Go nanosecond timestamp was: 12s, 5m, 3h, 2d. */
export function age(nanos, nowMs = Date.now()) {
  if (!nanos) return "";
  const seconds = Math.max(0, Math.floor((nowMs - Number(BigInt(nanos) / 1000000n)) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** A status badge whose class is chosen from a fixed list (server text never becomes a class). */
export function badge(status) {
  const known = ["pending", "running", "complete", "failed", "lost", "unknown", "run", "stop", "evict", "dead"];
  const kind = known.includes(status) ? status : "other";
  return h("span", { class: `badge badge-${kind}`, text: status });
}
