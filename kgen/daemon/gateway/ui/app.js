// Entry point: login, hash routing (#/jobs, #/job/<id>, #/workers, #/bench), page lifecycle.
import { api, ApiError, clearToken, getToken, setAuthErrorHandler, setToken } from "./api.js";
import { h, clear, announce } from "./dom.js";
import { jobsPage } from "./jobs.js";
import { jobPage } from "./job.js";
import { workersPage } from "./workers.js";
import { benchPage } from "./bench.js";

const main = document.getElementById("main");
let stopPage = null;   // the current page's cleanup (timers, open streams)
let role = null;

function explain(err) {
  if (err instanceof ApiError && err.status === 403) {
    return `This token may not use the dashboard (the API answered 403: ${err.message}). ` +
      "Sign in with a client or admin token; node tokens are for nodes only.";
  }
  if (err instanceof ApiError && err.status === 401) return `The gateway refused this token (401: ${err.message}).`;
  return `The gateway could not be reached: ${err.message}`;
}

function loginPage(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", required: true,
                             spellcheck: "false", "aria-describedby": "token-help" });
  const error = h("p", { id: "login-error", class: "notice error", role: "alert", hidden: !message }, message || "");
  const form = h("form", { class: "login", id: "login" },
    h("label", { for: "token" }, "Token"), input,
    h("p", { id: "token-help" }, "Paste a client or admin token (`kgen token create --role client`). ",
      "It is kept in this tab only (sessionStorage) and sent as an Authorization header; never in a cookie or URL."),
    h("p", {}, h("button", { type: "submit" }, "Sign in")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    setToken(input.value.trim());
    input.value = "";
    try {
      await api("/jobs?limit=1");   // a node token gets 403 here
      role = null;
      if (!location.hash || location.hash === "#/login") location.hash = "#/jobs";
      route();
    } catch (err) {
      clearToken();
      // 401/403: the auth handler has already redrawn this form with the explanation.
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return;
      error.textContent = explain(err);
      error.hidden = false;
      input.focus();
    }
  });
  clear(main).append(h("h1", {}, "Sign in"), error, form);
  input.focus();
}

setAuthErrorHandler((err) => {
  // A token revoked (401) or of the wrong role (403) mid-session: back to the login form.
  clearToken();
  if (stopPage) { stopPage(); stopPage = null; }
  loginPage(explain(err));
});

const PAGES = [
  [/^#\/jobs$/, () => jobsPage(main)],
  [/^#\/job\/([0-9a-f]{1,64})$/, (m) => jobPage(main, m[1])],
  [/^#\/workers$/, () => workersPage(main)],
  [/^#\/bench$/, () => benchPage(main)],
];

function route() {
  if (stopPage) { stopPage(); stopPage = null; }
  if (!getToken()) { loginPage(); return; }
  document.getElementById("nav").hidden = false;
  document.getElementById("who").hidden = false;
  const roleEl = document.getElementById("role");
  roleEl.textContent = role || "signed in";
  if (!role) {
    api("/whoami").then((me) => { role = `${me.name} (${me.role})`; roleEl.textContent = `signed in as ${role}`; })
      .catch(() => {});
  } else {
    roleEl.textContent = `signed in as ${role}`;
  }
  const hash = location.hash || "#/jobs";
  for (const [re, page] of PAGES) {
    const m = hash.match(re);
    if (m) {
      for (const a of document.querySelectorAll("nav a")) {
        if (hash.startsWith(`#/${a.dataset.page}`) || (a.dataset.page === "jobs" && hash.startsWith("#/job/"))) a.setAttribute("aria-current", "page");
        else a.removeAttribute("aria-current");
      }
      clear(main);
      stopPage = page(m) || null;
      const title = main.querySelector("h1");
      document.title = `${title ? title.textContent : "kgen"} · kgen dashboard`;
      announce(document.title);
      return;
    }
  }
  clear(main).append(h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/jobs" }, "Go to jobs")));
}

document.getElementById("logout").addEventListener("click", () => {
  clearToken();
  role = null;
  location.hash = "#/login";
  route();
});
window.addEventListener("hashchange", route);
route();
