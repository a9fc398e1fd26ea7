// The exec terminal: xterm.js over /v1/client/allocation/:id/exec with ws_handshake=true. The
// token travels only in the first frame ({"version":1,"auth_token":...}), never in the URL.
// Keys go to stdin (Ctrl-C is the byte 0x03, which the task's terminal turns into SIGINT),
// the terminal's size follows the window (tty_size frames) and the exit code is shown.
// Mounted by app.js for #/allocation/<id>/exec/<task>.

import { h, replace, shortId } from "./dom.js";
import { getToken } from "./token.js";

const encoder = new TextEncoder();

function toBase64(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** The exec URL on this page's own origin (ws: or wss: to match http: or https:). */
export function execUrl(allocId, task, command, tty) {
  const url = new URL(`/v1/client/allocation/${encodeURIComponent(allocId)}/exec`, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("task", task);
  url.searchParams.set("command", JSON.stringify(command));
  url.searchParams.set("tty", String(tty));
  url.searchParams.set("ws_handshake", "true");
  return url;
}

/** Render the terminal page into `root`; closes the session when `signal` aborts. */
export async function terminalPage(root, allocId, task, signal) {
  const status = h("div", { id: "exec-status", class: "notice", role: "status", text: "Not connected." });
  const command = h("input", { id: "exec-command", value: "/bin/sh", spellcheck: "false", "aria-label": "Command" });
  const connect = h("button", { id: "exec-connect", type: "submit", text: "Connect" });
  const screen = h("div", { id: "terminal", class: "terminal" });
  replace(root,
    h("p", {}, h("a", { href: `#/allocation/${encodeURIComponent(allocId)}`, text: `← Allocation ${shortId(allocId)}` })),
    h("h1", {}, "Exec: ", h("span", { class: "mono", text: task })),
    h("form", { class: "controls", id: "exec-form" }, h("label", { text: "Command (JSON array or words) " }, command), connect),
    status, screen);

  let Terminal, FitAddon;
  try {
    ({ Terminal } = await import("/ui/vendor/xterm/lib/xterm.mjs"));
    ({ FitAddon } = await import("/ui/vendor/addon-fit/lib/addon-fit.mjs"));
  } catch (err) {
    status.className = "error";
    status.textContent = "xterm.js is not installed on this agent (run `npm install --prefix ui`).";
    return;
  }
  if (signal.aborted) return;
  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 2000 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(screen);
  fit.fit();
  const onWindowResize = () => fit.fit();
  window.addEventListener("resize", onWindowResize);

  let socket = null;
  const send = (frame) => { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame)); };
  term.onData((data) => send({ stdin: { data: toBase64(encoder.encode(data)) } }));
  term.onResize(({ rows, cols }) => send({ tty_size: { height: rows, width: cols } }));

  function parseCommand(text) {
    const trimmed = text.trim();
    if (trimmed.startsWith("[")) return JSON.parse(trimmed);
    return trimmed.split(/\s+/).filter(Boolean);
  }

  function open() {
    socket?.close();
    let argv;
    try {
      argv = parseCommand(command.value);
    } catch (err) {
      status.className = "error";
      status.textContent = `Bad command: ${err.message}`;
      return;
    }
    term.reset();
    let exited = false;
    const ws = new WebSocket(execUrl(allocId, task, argv, true));
    socket = ws;
    status.className = "notice";
    status.textContent = "Connecting…";
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify({ version: 1, auth_token: getToken() }));
      send({ tty_size: { height: term.rows, width: term.cols } });
      status.textContent = `Connected: ${argv.join(" ")}`;
      term.focus();
    });
    ws.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data);
      for (const name of ["stdout", "stderr"]) {
        if (frame[name]?.data) term.write(fromBase64(frame[name].data));
      }
      if (frame.exited) {
        exited = true;
        const code = frame.result?.exit_code ?? 0;
        status.className = code === 0 ? "notice" : "error";
        status.dataset.exitCode = String(code);
        status.textContent = `Process exited with code ${code}.`;
      }
    });
    ws.addEventListener("close", (event) => {
      if (socket === ws) socket = null;
      if (exited) return;
      status.className = "error";
      status.textContent = event.code === 1000
        ? "Session closed."
        : `Session closed (${event.code}${event.reason ? `: ${event.reason}` : ""}).`;
    });
  }

  document.getElementById("exec-form").addEventListener("submit", (e) => { e.preventDefault(); open(); });
  signal.addEventListener("abort", () => {
    socket?.close();
    window.removeEventListener("resize", onWindowResize);
    term.dispose();
  }, { once: true });
  open();
}
