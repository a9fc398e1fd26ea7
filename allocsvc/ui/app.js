// The UI's entry point: the token form, the error banner and the fragment router
// (#/allocations, #/allocation/<id>, #/allocation/<id>/exec/<task>). Each page gets an
// AbortSignal that ends its watches when the user navigates away or changes the token.

import { allocationsPage } from "./allocations.js";
import { allocationPage } from "./allocation.js";
import { request } from "./api.js";
import { terminalPage } from "./terminal.js";
import { getToken, onTokenChange, setToken } from "./token.js";

const view = document.getElementById("view");
const banner = document.getElementById("banner");
let current = null;

function navigate(page, params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) query.set(k, v);
  const hash = `#/${page}${query.toString() ? `?${query}` : ""}`;
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

function route() {
  current?.abort();
  current = new AbortController();
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?", 2);
  const parts = path.split("/").map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (parts[0] === "allocation" && parts[1] && parts[2] === "exec" && parts[3]) {
    terminalPage(view, parts[1], parts[3], current.signal);
  } else if (parts[0] === "allocation" && parts[1]) {
    allocationPage(view, parts[1], current.signal);
  } else {
    allocationsPage(view, params, current.signal, navigate);
  }
}

const tokenInput = document.getElementById("token-input");
const tokenStatus = document.getElementById("token-status");

async function describeToken() {
  if (!getToken()) {
    tokenStatus.textContent = "anonymous";
    return;
  }
  tokenStatus.textContent = "token set";
  try {
    const result = await request("GET", "/v1/acl/token/self");
    tokenStatus.textContent = `token: ${result.body?.Name || result.body?.AccessorID || "set"}`;
  } catch (err) {
    tokenStatus.textContent = `token set (${err.status ? err.message : "unverified"})`;
  }
}

document.getElementById("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  setToken(tokenInput.value);
  tokenInput.value = "";
});
document.getElementById("token-clear").addEventListener("click", () => setToken(""));
onTokenChange(() => { describeToken(); route(); });

document.addEventListener("securitypolicyviolation", (e) => {
  banner.hidden = false;
  banner.textContent = `Blocked by the Content-Security-Policy: ${e.violatedDirective} ${e.blockedURI}`;
});

window.addEventListener("hashchange", route);
describeToken();
route();
