// One job: status and actions, the evolve progress chart, candidates with verdicts, the best kernel
// beside its reference, and the live event log (resumes after a dropped connection via ?after=seq).
import { api, followEvents } from "./api.js";
import { h, clear, statusWord, timeEl, fmtMs, announce, download } from "./dom.js";
import { highlight } from "./highlight.js";
import { progressChart } from "./chart.js";

const JOB_STATUSES = new Set(["queued", "running", "succeeded", "failed", "cancelled"]);
const REFRESHING = new Set([...JOB_STATUSES, "best_updated", "candidate_generated", "candidate_verified",
                            "candidate_dispatched", "resumed"]);
const MAX_LOG = 2000;

function eventText(e) {
  const skip = new Set(["seq", "type", "ts"]);
  const parts = [];
  for (const [k, v] of Object.entries(e)) {
    if (skip.has(k) || v === null || v === undefined || v === "") continue;
    let text = typeof v === "object" ? JSON.stringify(v) : String(v);
    if (/_id$/.test(k) && typeof v === "string" && v.length > 12) text = v.slice(0, 12);
    if (text.length > 300) text = `${text.slice(0, 300)}…`;
    parts.push(`${k}=${text}`);
  }
  return parts.join(" ");
}

function codeBlock(id, source, label) {
  const code = h("code", { class: "language-python" });
  code.append(highlight(source));
  return h("figure", { id },
    h("figcaption", {}, label),
    h("pre", { class: "code", tabindex: "0", "aria-label": label }, code));
}

export function jobPage(main, idParam) {
  const title = h("h1", {}, `Job ${idParam.slice(0, 12)}`);
  const error = h("p", { class: "notice error", role: "alert", hidden: true });
  const meta = h("dl", { class: "meta", id: "job-meta" });
  const cancelBtn = h("button", { type: "button", class: "danger", id: "cancel", disabled: true }, "Cancel job");
  const bestBtn = h("button", { type: "button", id: "dl-kernel", disabled: true }, "Download best kernel");
  const refBtn = h("button", { type: "button", id: "dl-reference", disabled: true }, "Download reference");
  const eventsBtn = h("button", { type: "button", id: "dl-events" }, "Download events (JSONL)");
  const actionMsg = h("p", { id: "action-msg", role: "status" });
  const chartBox = h("div", { id: "chart" });
  const candBody = h("tbody", { id: "candidates-body" });
  const sources = h("div", { class: "sources", id: "sources" });
  const streamState = h("p", { class: "stream-state", id: "stream-state", role: "status" }, "Connecting…");
  const log = h("ol", { class: "log", id: "events", "aria-label": "Event log" });

  main.append(title, error, meta,
    h("div", { class: "actions" }, cancelBtn, bestBtn, refBtn, eventsBtn), actionMsg,
    h("section", { "aria-labelledby": "h-progress" }, h("h2", { id: "h-progress" }, "Progress"), chartBox),
    h("section", { "aria-labelledby": "h-cands" }, h("h2", { id: "h-cands" }, "Candidates"),
      h("div", { class: "table-wrap" }, h("table", { id: "candidates" },
        h("thead", {}, h("tr", {},
          h("th", { scope: "col", class: "num" }, "Round"), h("th", { scope: "col", class: "num" }, "#"),
          h("th", { scope: "col" }, "Verdict"), h("th", { scope: "col", class: "num" }, "Kernel time"),
          h("th", { scope: "col", class: "num hide-narrow" }, "Verify wall"),
          h("th", { scope: "col", class: "num hide-narrow" }, "Max abs err"), h("th", { scope: "col", class: "hide-narrow" }, "Origin"),
          h("th", { scope: "col", class: "hide-narrow" }, "Worker"), h("th", { scope: "col" }, "Message"))),
        candBody))),
    h("section", { "aria-labelledby": "h-src" }, h("h2", { id: "h-src" }, "Best kernel and reference"), sources),
    h("section", { "aria-labelledby": "h-events" }, h("h2", { id: "h-events" }, "Events"), streamState, log));

  let job = null;
  let reference = null;
  let best = null;          // {candidate_id, source, verdict}
  const verified = new Map(); // candidate_id -> summary from candidate_verified events
  const bestUpdates = [];      // best_updated events, in order
  const events = [];
  let stopStream = null;
  let refreshTimer = null;
  let stopped = false;

  function renderMeta() {
    clear(meta);
    const rows = [
      ["Job id", h("code", {}, job.job_id)], ["Op", job.op_name], ["Type", job.job_type],
      ["Status", h("span", { id: "job-status" }, statusWord(job.status))],
      ["Created", timeEl(job.created_at)], ["Started", timeEl(job.started_at)], ["Finished", timeEl(job.finished_at)],
      ["Best candidate", job.best_candidate_id ? h("code", {}, job.best_candidate_id.slice(0, 12)) : "—"],
    ];
    if (job.error) rows.push(["Error", job.error]);
    for (const [k, v] of rows) meta.append(h("dt", {}, k), h("dd", {}, v ?? "—"));
    const open = job.status === "queued" || job.status === "running";
    cancelBtn.disabled = !open;
    title.textContent = `Job ${job.job_id.slice(0, 12)} · ${job.status}`;
  }

  function renderCandidates() {
    clear(candBody);
    for (const c of job.candidates || []) {
      const v = verified.get(c.candidate_id) || {};
      const status = v.status || c.status || "pending";
      const isBest = c.candidate_id === job.best_candidate_id;
      candBody.append(h("tr", { "data-candidate": c.candidate_id },
        h("td", { class: "num" }, c.round), h("td", { class: "num" }, c.index),
        h("td", {}, statusWord(status), isBest ? " (best)" : ""),
        h("td", { class: "num" }, fmtMs(v.candidate_ms)),
        h("td", { class: "num hide-narrow" }, typeof v.wall_s === "number" ? `${v.wall_s.toFixed(2)} s` : "—"),
        h("td", { class: "num hide-narrow" }, v.max_abs_err === null || v.max_abs_err === undefined ? "—" : Number(v.max_abs_err).toExponential(2)),
        h("td", { class: "hide-narrow" }, c.origin || "—"),
        h("td", { class: "hide-narrow mono" }, c.worker_id ? c.worker_id.slice(0, 12) : "—"),
        h("td", {}, v.message ? String(v.message).slice(0, 200) : "")));
    }
  }

  function renderChart() {
    // The metric: the kernel's time per call where the verifier measured one (GPU, or the CPU
    // interpreter); where none was measured, the verification's wall time, labelled as such.
    const all = [...verified.values()];
    const kernelTime = all.some((v) => v.candidate_ms !== null && v.candidate_ms !== undefined);
    const gpu = all.some((v) => v.timing_kind === "gpu");
    const points = all.map((v) => ({ candidate_id: v.candidate_id, round: v.round, index: v.index, status: v.status,
      ms: kernelTime ? v.candidate_ms : (typeof v.wall_s === "number" ? v.wall_s * 1000 : null) }));
    const unit = kernelTime ? (gpu ? "kernel time per call (GPU)" : "kernel time per call (CPU interpreter)")
      : "verification wall time (no kernel timing on this device)";
    clear(chartBox).append(progressChart(points, { unit, bestUpdates }),
      h("p", { id: "chart-summary" }, `${points.length} verified candidate(s), plotted by ${unit}; `,
        "the line is the job's best after each round."));
  }

  function renderSources() {
    clear(sources);
    if (best) sources.append(codeBlock("best-source", best.source, `Best kernel (candidate ${best.candidate_id.slice(0, 12)})`));
    else sources.append(h("p", { id: "no-best" }, job && ["failed", "cancelled"].includes(job.status)
      ? "This job has no verified kernel." : "No verified kernel yet."));
    if (reference !== null) sources.append(codeBlock("reference-source", reference, "Reference (task)"));
    bestBtn.disabled = !best;
    refBtn.disabled = reference === null;
  }

  async function loadJob() {
    try {
      job = (await api(`/jobs/${encodeURIComponent(job ? job.job_id : idParam)}`)).job;
      error.hidden = true;
      renderMeta();
      renderCandidates();
      if (job.best_candidate_id && (!best || best.candidate_id !== job.best_candidate_id)) {
        try { best = (await api(`/jobs/${job.job_id}/result`)).best; } catch (_) { best = null; }
        renderSources();
      }
    } catch (err) {
      if (err.status === 401 || err.status === 403) return;
      error.textContent = `Could not load job: ${err.message}`;
      error.hidden = false;
    }
  }

  function scheduleRefresh() {
    if (refreshTimer || stopped) return;
    refreshTimer = setTimeout(async () => { refreshTimer = null; await loadJob(); }, 250);
  }

  function onEvent(e) {
    events.push(e);
    log.append(h("li", { "data-seq": e.seq, "data-type": e.type },
      h("span", { class: "seq" }, `#${e.seq} `), timeEl(e.ts, new Date(e.ts * 1000).toLocaleTimeString()), " ",
      h("span", { class: "etype" }, e.type), " ", eventText(e)));
    while (log.childElementCount > MAX_LOG) log.firstElementChild.remove();
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    if (nearBottom) log.scrollTop = log.scrollHeight;
    if (e.type === "best_updated") { bestUpdates.push(e); renderChart(); }
    if (e.type === "candidate_verified") { verified.set(e.candidate_id, e); renderChart(); renderCandidates(); }
    if (JOB_STATUSES.has(e.type)) announce(`Job ${e.type}`);
    if (REFRESHING.has(e.type)) scheduleRefresh();
  }

  function onState(state, detail) {
    streamState.dataset.state = state;
    streamState.textContent = {
      live: `Live: following events after #${detail}.`,
      reconnecting: `Connection dropped; reconnecting to resume after event #${detail}…`,
      ended: `Stream ended: job ${detail}.`,
      error: `Event stream refused: ${detail}`,
    }[state];
    if (state === "ended") scheduleRefresh();
  }

  cancelBtn.addEventListener("click", async () => {
    cancelBtn.disabled = true;
    actionMsg.textContent = "Cancelling…";
    try {
      const r = await api(`/jobs/${job.job_id}/cancel`, { method: "POST", body: {} });
      actionMsg.textContent = `Job is ${r.status}.`;
      await loadJob();
    } catch (err) {
      actionMsg.textContent = `Cancel failed: ${err.message}`;
      cancelBtn.disabled = false;
    }
  });
  bestBtn.addEventListener("click", () => best && download(`${job.op_name || "kernel"}_${best.candidate_id.slice(0, 8)}.py`, best.source));
  refBtn.addEventListener("click", () => reference !== null && download(`${job.op_name || "task"}_reference.py`, reference));
  eventsBtn.addEventListener("click", () => download(`job_${job ? job.job_id.slice(0, 12) : idParam}_events.jsonl`,
    events.map((e) => JSON.stringify(e)).join("\n") + "\n", "application/x-ndjson"));

  (async () => {
    await loadJob();
    if (!job || stopped) return;
    renderChart();
    try { reference = (await api(`/jobs/${job.job_id}/task`)).source; } catch (_) { reference = null; }
    renderSources();
    stopStream = followEvents(job.job_id, { after: 0, onEvent, onState });
  })();

  return () => { stopped = true; clearTimeout(refreshTimer); if (stopStream) stopStream(); };
}
