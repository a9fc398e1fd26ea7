// The allocation page: summary, task states with restarts and their (ten newest) Nomad events,
// the full-history timeline from /v1/allocation/:id/events, and stop / restart / signal buttons
// behind a confirmation. One blocking query on the allocation drives everything: when it changes,
// the history is fetched from the last seen index on. Mounted by app.js for #/allocation/<id>.

import { ApiError, request, watch } from "./api.js";
import { badge, formatNanos, formatTime, h, replace, shortId } from "./dom.js";

const SIGNALS = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGKILL"];
const RESTART_TYPES = new Set(["Restart Signaled", "Restarting", "Terminated", "Killing", "Killed", "Signaling", "Not Restarting"]);

/** A confirmation in the page's <dialog>; resolves true when the user confirms. */
export function confirmAction(message) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-message").textContent = message;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

/** Render the page for one allocation ID into `root`; stops when `signal` aborts. */
export function allocationPage(root, allocId, signal) {
  const title = h("h1", {}, "Allocation ", h("span", { class: "mono", text: shortId(allocId) }));
  const error = h("div", { id: "alloc-error", class: "error", role: "alert", hidden: true });
  const notice = h("div", { id: "action-result", class: "notice", role: "status", hidden: true });
  const summary = h("dl", { class: "summary", id: "alloc-summary" });
  const actions = h("div", { class: "actions", id: "alloc-actions" });
  const tasks = h("div", { id: "tasks" });
  const timeline = h("ol", { class: "timeline", id: "timeline" });
  replace(root, h("p", {}, h("a", { href: "#/allocations", text: "← Allocations" })), title, error, notice, summary,
    actions, h("h2", { text: "Tasks" }), tasks,
    h("h2", { text: "Full history" }),
    h("p", { class: "muted", text: "Every logged event of this allocation, oldest first (Nomad keeps only the ten newest per task)." }),
    timeline);

  let historyIndex = 0;
  let fetching = Promise.resolve();

  function showError(text) {
    error.hidden = false;
    error.textContent = text;
  }

  async function act(message, method, path, body, done) {
    if (!(await confirmAction(message))) return;
    notice.hidden = true;
    try {
      await request(method, path, { body });
      notice.hidden = false;
      notice.textContent = done;
      error.hidden = true;
    } catch (err) {
      showError(`${done.replace(/\.$/, "")} failed (${err instanceof ApiError ? err.describe() : err})`);
    }
  }

  const id = encodeURIComponent(allocId);
  const stop = () => act(`Stop allocation ${shortId(allocId)}?`, "POST", `/v1/allocation/${id}/stop`, undefined, "Stop requested.");
  const restartAll = () => act(`Restart all tasks of ${shortId(allocId)}?`, "POST", `/v1/client/allocation/${id}/restart`, { AllTasks: true }, "Restart requested.");
  const restartTask = (task) => act(`Restart task ${task}?`, "POST", `/v1/client/allocation/${id}/restart`, { TaskName: task }, "Restart requested.");
  const signalTask = (task, sig) => act(`Send ${sig} to task ${task}?`, "POST", `/v1/client/allocation/${id}/signal`, { Task: task, Signal: sig }, "Signal sent.");

  function renderAlloc(alloc) {
    title.lastChild.textContent = alloc.ID;
    const fields = [
      ["Name", alloc.Name], ["Job", alloc.JobID], ["Group", alloc.TaskGroup], ["Namespace", alloc.Namespace],
      ["Node", alloc.NodeName], ["Client status", badge(alloc.ClientStatus)], ["Desired status", badge(alloc.DesiredStatus)],
      ["Description", alloc.ClientDescription], ["Created", formatNanos(alloc.CreateTime)], ["Modify index", alloc.ModifyIndex],
    ];
    replace(summary, fields.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]));
    const terminal = ["complete", "failed", "lost"].includes(alloc.ClientStatus);
    replace(actions,
      h("button", { id: "stop-alloc", class: "danger", type: "button", text: "Stop allocation", disabled: alloc.DesiredStatus !== "run", onclick: stop }),
      h("button", { id: "restart-all", type: "button", text: "Restart all tasks", disabled: terminal, onclick: restartAll }));
    const names = Object.keys(alloc.TaskStates || {}).sort();
    replace(tasks, names.length ? names.map((name) => taskCard(alloc, name, alloc.TaskStates[name], terminal)) : h("p", { class: "muted", text: "No task states yet." }));
  }

  function taskCard(alloc, name, ts, terminal) {
    const signalSelect = h("select", { "aria-label": `Signal for ${name}`, class: "signal-select" }, SIGNALS.map((s) => h("option", { value: s, text: s })));
    const running = ts.State === "running";
    const events = (ts.Events || []).map((e) => h("tr", { class: RESTART_TYPES.has(e.Type) ? "restartish" : "" },
      h("td", { class: "nowrap", text: formatNanos(e.Time) }), h("td", { class: "nowrap", text: e.Type }), h("td", { text: e.DisplayMessage })));
    return h("section", { class: "task", dataset: { task: name } },
      h("h3", {}, name, " ", badge(ts.State), ts.Failed ? h("span", { class: "badge badge-failed", text: "failed" }) : null),
      h("dl", { class: "summary" },
        h("dt", { text: "Restarts" }), h("dd", { class: "restarts", text: ts.Restarts }),
        h("dt", { text: "Last restart" }), h("dd", { text: formatTime(ts.LastRestart) || "never" }),
        h("dt", { text: "Started" }), h("dd", { text: formatTime(ts.StartedAt) }),
        h("dt", { text: "Finished" }), h("dd", { text: formatTime(ts.FinishedAt) })),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "restart-task", text: "Restart task", disabled: terminal, onclick: () => restartTask(name) }),
        signalSelect,
        h("button", { type: "button", class: "signal-task", text: "Send signal", disabled: !running, onclick: () => signalTask(name, signalSelect.value) }),
        h("a", { class: `button exec-link${running ? "" : " disabled"}`, href: `#/allocation/${encodeURIComponent(alloc.ID)}/exec/${encodeURIComponent(name)}`, text: "Exec terminal" })),
      h("table", { class: "events" },
        h("thead", {}, h("tr", {}, h("th", { text: "Time" }), h("th", { text: "Type" }), h("th", { text: "Description" }))),
        h("tbody", {}, events)));
  }

  function historyEntry(item) {
    const event = item.Event;
    const type = event ? event.Type : item.Type;
    const message = event ? event.DisplayMessage : describe(item);
    return h("li", { class: RESTART_TYPES.has(type) ? "restartish" : "", dataset: { index: item.Index, type } },
      h("span", { class: "mono idx", text: `#${item.Index}` }),
      h("span", { class: "nowrap when", text: formatNanos(item.Time) }),
      h("span", { class: "task-name", text: item.Task || "allocation" }),
      h("strong", { class: "kind", text: type }),
      h("span", { class: "message", text: message }));
  }

  async function fetchHistory() {
    for (;;) {
      const result = await request("GET", `/v1/allocation/${id}/events`, { params: { since_index: historyIndex, per_page: 500 }, signal });
      for (const item of result.body || []) {
        timeline.append(historyEntry(item));
        historyIndex = Math.max(historyIndex, item.Index);
      }
      if (!result.nextToken) return;
    }
  }

  watch(`/v1/allocation/${id}`, {}, signal, (result, err) => {
    if (err) {
      showError(err.status === 404
        ? `Allocation ${allocId} not found (or your token may not read its namespace).`
        : `Could not read the allocation (${err instanceof ApiError ? err.describe() : err})`);
      return;
    }
    error.hidden = true;
    renderAlloc(result.body);
    fetching = fetching.then(fetchHistory).catch((e) => {
      if (e.name !== "AbortError") showError(`Could not read the history (${e instanceof ApiError ? e.describe() : e})`);
    });
  });
}

function describe(item) {
  const d = item.Details || {};
  switch (item.Type) {
    case "AllocPlaced": return `Placed on ${d.node_name || "node"} (job ${d.job_id} v${d.job_version})`;
    default: {
      const parts = Object.entries(d)
        .filter(([k, v]) => k !== "alloc_id" && (typeof v === "string" || typeof v === "number" || typeof v === "boolean") && v !== "")
        .map(([k, v]) => `${k}=${v}`);
      return parts.join(" ");
    }
  }
}
