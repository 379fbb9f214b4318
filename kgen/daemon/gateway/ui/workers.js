// Workers: health, load, backend/arch, last heartbeat, suspect flag; refreshed every 2 s.
import { api } from "./api.js";
import { h, clear, statusWord, timeEl, ago } from "./dom.js";

const REFRESH_MS = 2000;

export function workersPage(main) {
  const count = h("p", { id: "workers-count", role: "status" }, "Loading…");
  const error = h("p", { class: "notice error", role: "alert", hidden: true });
  const tbody = h("tbody", { id: "workers-body" });
  main.append(h("h1", {}, "Workers"), error, count,
    h("div", { class: "table-wrap" }, h("table", { id: "workers" },
      h("caption", { class: "visually-hidden" }, "Registered workers"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Worker"), h("th", { scope: "col" }, "Health"), h("th", { scope: "col" }, "State"),
        h("th", { scope: "col", class: "num" }, "Load"), h("th", { scope: "col", class: "num" }, "In flight"),
        h("th", { scope: "col" }, "Backend / arch"), h("th", { scope: "col" }, "Last heartbeat"),
        h("th", { scope: "col" }, "Suspect"), h("th", { scope: "col", class: "hide-narrow" }, "URL"))),
      tbody)));
  let timer = null;
  let stopped = false;

  async function load() {
    try {
      const workers = (await api("/workers")).workers;
      error.hidden = true;
      clear(tbody);
      for (const w of workers) {
        tbody.append(h("tr", { "data-worker": w.worker_id, "data-healthy": String(w.healthy) },
          h("td", { class: "mono" }, w.worker_id.slice(0, 12)),
          h("td", { class: "health" }, statusWord(w.healthy ? "healthy" : "unhealthy")),
          h("td", {}, w.state),
          h("td", { class: "num" }, `${w.load} / ${w.capacity}`),
          h("td", { class: "num" }, w.inflight ?? 0),
          h("td", {}, `${w.backend}${w.arch ? ` / ${w.arch}` : ""}`),
          h("td", {}, timeEl(w.last_heartbeat, ago(w.last_heartbeat))),
          h("td", { class: "suspect" }, w.suspect ? [statusWord("suspect"), " ", w.suspect] : "no"),
          h("td", { class: "hide-narrow mono" }, w.url)));
      }
      const healthy = workers.filter((w) => w.healthy).length;
      count.textContent = `${workers.length} worker(s), ${healthy} healthy`;
    } catch (err) {
      if (err.status === 401 || err.status === 403) return;
      error.textContent = `Could not load workers: ${err.message}`;
      error.hidden = false;
    }
    if (!stopped) timer = setTimeout(load, REFRESH_MS);
  }
  load();
  return () => { stopped = true; clearTimeout(timer); };
}
