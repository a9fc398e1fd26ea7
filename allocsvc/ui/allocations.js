// The allocations page: a live list (blocking queries on /v1/allocations), namespace selector
// with "all", filter expression, ID prefix search and per_page/next_token pagination.
// Mounted by app.js for #/allocations; its state lives in the fragment's query string.

import { ApiError, request, watch } from "./api.js";
import { age, badge, h, replace, shortId } from "./dom.js";

const PAGE_SIZES = [10, 25, 50, 100];
const COLUMNS = ["ID", "Job", "Group", "Namespace", "Client status", "Desired status", "Age"];

/** Render the page into `root`; returns nothing; stops when `signal` aborts. */
export function allocationsPage(root, params, signal, navigate) {
  const state = {
    namespace: params.get("namespace") || "default",
    prefix: params.get("prefix") || "",
    filter: params.get("filter") || "",
    perPage: Number(params.get("per_page")) || 25,
  };
  const tokens = [""];
  let pageWatch = null;

  const namespace = h("select", { id: "namespace", "aria-label": "Namespace" },
    h("option", { value: "*", text: "all namespaces" }),
    h("option", { value: state.namespace, text: state.namespace === "*" ? "" : state.namespace }));
  namespace.value = state.namespace;
  const prefix = h("input", { id: "prefix", type: "search", placeholder: "ID prefix", value: state.prefix, spellcheck: "false" });
  const filter = h("input", { id: "filter", type: "search", placeholder: 'Filter, e.g. ClientStatus == "running"', value: state.filter, spellcheck: "false" });
  const perPage = h("select", { id: "per-page", "aria-label": "Per page" },
    [...new Set([...PAGE_SIZES, state.perPage])].sort((a, b) => a - b)
      .map((n) => h("option", { value: n, text: `${n} per page` })));
  perPage.value = String(state.perPage);
  const error = h("div", { id: "list-error", class: "error", role: "alert", hidden: true });
  const body = h("tbody", { id: "alloc-rows" });
  const status = h("span", { id: "list-status", class: "muted" });
  const prev = h("button", { id: "page-prev", type: "button", text: "Previous", disabled: true });
  const next = h("button", { id: "page-next", type: "button", text: "Next", disabled: true });

  const apply = () => navigate("allocations", {
    namespace: namespace.value, prefix: prefix.value.trim(), filter: filter.value.trim(), per_page: perPage.value,
  });
  namespace.addEventListener("change", apply);
  perPage.addEventListener("change", apply);
  const form = h("form", { class: "controls", id: "list-controls", onsubmit: (e) => { e.preventDefault(); apply(); } },
    h("label", { text: "Namespace " }, namespace), prefix, filter, perPage,
    h("button", { type: "submit", text: "Apply" }));

  replace(root,
    h("h1", { text: "Allocations" }), form, error,
    h("table", { class: "list", id: "alloc-table" },
      h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", { text: c })))), body),
    h("div", { class: "pager" }, prev, next, status));

  loadNamespaces(namespace, state.namespace, signal);

  const ages = [];
  const timer = setInterval(() => { for (const [cell, t] of ages) cell.textContent = age(t); }, 5000);
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });

  function render(allocs, nextToken) {
    ages.length = 0;
    const rows = allocs.map((a) => {
      const ageCell = h("td", { text: age(a.CreateTime) });
      ages.push([ageCell, a.CreateTime]);
      return h("tr", { dataset: { id: a.ID } },
        h("td", {}, h("a", { href: `#/allocation/${encodeURIComponent(a.ID)}`, class: "mono", text: shortId(a.ID), title: a.ID })),
        h("td", { text: a.JobID }), h("td", { text: a.TaskGroup }), h("td", { text: a.Namespace }),
        h("td", {}, badge(a.ClientStatus)), h("td", {}, badge(a.DesiredStatus)), ageCell);
    });
    if (rows.length === 0) rows.push(h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length, text: "No allocations" })));
    replace(body, rows);
    next.disabled = !nextToken;
    next.dataset.token = nextToken;
    prev.disabled = tokens.length <= 1;
    status.textContent = `page ${tokens.length} · ${allocs.length} shown`;
  }

  function showPage() {
    pageWatch?.abort();
    pageWatch = new AbortController();
    signal.addEventListener("abort", () => pageWatch.abort(), { once: true });
    const query = {
      namespace: state.namespace, prefix: state.prefix, filter: state.filter,
      per_page: state.perPage, next_token: tokens[tokens.length - 1],
    };
    watch("/v1/allocations", query, pageWatch.signal, (result, err) => {
      if (err) {
        error.hidden = false;
        error.textContent = `Could not list allocations (${err instanceof ApiError ? err.describe() : err})`;
        return;
      }
      error.hidden = true;
      render(result.body || [], result.nextToken);
    });
  }

  next.addEventListener("click", () => { tokens.push(next.dataset.token); showPage(); });
  prev.addEventListener("click", () => { tokens.pop(); showPage(); });
  showPage();
}

async function loadNamespaces(select, current, signal) {
  let names = [];
  try {
    const result = await request("GET", "/v1/namespaces", { signal });
    names = (result.body || []).map((ns) => ns.Name);
  } catch (err) {
    if (err.name === "AbortError") return;
  }
  if (current !== "*" && !names.includes(current)) names.push(current);
  if (!names.includes("default")) names.unshift("default");
  replace(select, h("option", { value: "*", text: "all namespaces" }), names.map((n) => h("option", { value: n, text: n })));
  select.value = current;
}
