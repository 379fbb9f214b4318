// Jobs: filter by status (server side), op, type and id prefix (in the page); refreshed every 2 s.
import { api } from "./api.js";
import { h, clear, statusWord, timeEl, ago } from "./dom.js";

const STATUSES = ["", "queued", "running", "succeeded", "failed", "cancelled"];
const TYPES = ["", "single", "repair", "evolve"];
const REFRESH_MS = 2000;

export function jobsPage(main) {
  const params = new URLSearchParams(sessionStorage.getItem("kgen.jobs.filters") || "");
  const status = h("select", { id: "f-status", name: "status" }, STATUSES.map((v) => h("option", { value: v }, v || "any")));
  const type = h("select", { id: "f-type", name: "type" }, TYPES.map((v) => h("option", { value: v }, v || "any")));
  const op = h("input", { id: "f-op", name: "op", type: "search", placeholder: "e.g. relu", autocomplete: "off" });
  const prefix = h("input", { id: "f-id", name: "id", type: "search", placeholder: "id prefix", autocomplete: "off",
                              spellcheck: "false", pattern: "[0-9a-fA-F]*" });
  status.value = params.get("status") || "";
  type.value = params.get("type") || "";
  op.value = params.get("op") || "";
  prefix.value = params.get("id") || "";

  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter jobs" },
    h("label", { for: "f-status" }, "Status", status),
    h("label", { for: "f-type" }, "Type", type),
    h("label", { for: "f-op" }, "Op", op),
    h("label", { for: "f-id" }, "Job id", prefix));
  const count = h("p", { id: "jobs-count", role: "status" }, "Loading…");
  const tbody = h("tbody", { id: "jobs-body" });
  const table = h("div", { class: "table-wrap" }, h("table", { id: "jobs" },
    h("caption", { class: "visually-hidden" }, "Jobs, newest first"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Job"), h("th", { scope: "col" }, "Op"), h("th", { scope: "col" }, "Type"),
      h("th", { scope: "col" }, "Status"), h("th", { scope: "col", class: "hide-narrow" }, "Created"),
      h("th", { scope: "col", class: "hide-narrow" }, "Updated"), h("th", { scope: "col" }, "Error"))),
    tbody));
  const error = h("p", { class: "notice error", role: "alert", hidden: true });
  main.append(h("h1", {}, "Jobs"), form, error, count, table);

  let jobs = [];
  let timer = null;
  let stopped = false;

  function render() {
    const opText = op.value.trim().toLowerCase();
    const idText = prefix.value.trim().toLowerCase();
    const shown = jobs.filter((j) => (!type.value || j.job_type === type.value)
      && (!opText || (j.op_name || "").toLowerCase().includes(opText))
      && (!idText || j.job_id.startsWith(idText)));
    // Redrawn every refresh (times move on); keyboard focus stays on the link it was on.
    count.textContent = shown.length === jobs.length ? `${jobs.length} job(s)` : `${shown.length} of ${jobs.length} job(s) match`;
    const focused = tbody.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
    clear(tbody);
    for (const j of shown) {
      tbody.append(h("tr", { "data-job": j.job_id },
        h("td", {}, h("a", { href: `#/job/${j.job_id}`, class: "mono" }, j.job_id.slice(0, 12))),
        h("td", {}, j.op_name || "—"),
        h("td", {}, j.job_type),
        h("td", {}, statusWord(j.status)),
        h("td", { class: "hide-narrow" }, timeEl(j.created_at)),
        h("td", { class: "hide-narrow" }, timeEl(j.updated_at, ago(j.updated_at))),
        h("td", {}, j.error ? String(j.error).slice(0, 160) : "")));
    }
    if (focused) {
      const again = [...tbody.querySelectorAll("a")].find((a) => a.getAttribute("href") === focused);
      if (again) again.focus();
    }
  }

  async function load() {
    try {
      const q = new URLSearchParams({ limit: "500" });
      if (status.value) q.set("status", status.value);
      jobs = (await api(`/jobs?${q}`)).jobs;
      error.hidden = true;
      render();
    } catch (err) {
      if (err.status === 401 || err.status === 403) return;
      error.textContent = `Could not load jobs: ${err.message}`;
      error.hidden = false;
    }
    if (!stopped) timer = setTimeout(load, REFRESH_MS);
  }

  function saveFilters() {
    const q = new URLSearchParams();
    for (const [k, el] of [["status", status], ["type", type], ["op", op], ["id", prefix]]) if (el.value) q.set(k, el.value);
    sessionStorage.setItem("kgen.jobs.filters", q.toString());
  }
  form.addEventListener("submit", (ev) => ev.preventDefault());
  status.addEventListener("change", () => { saveFilters(); clearTimeout(timer); load(); });
  for (const el of [type, op, prefix]) el.addEventListener("input", () => { saveFilters(); render(); });
  load();
  return () => { stopped = true; clearTimeout(timer); };
}
