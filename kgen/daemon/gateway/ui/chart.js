// The evolve progress chart, drawn as inline SVG: one marker per verified candidate at its round
// (a time, lower is better; candidates without one sit in a "no time" lane at the top), and the
// job's best after each round as a step line.
import { s, fmtMs } from "./dom.js";

const W = 720, H = 320, L = 64, R = 16, T = 54, B = 40, PAD = 24;

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// points: [{candidate_id, round, index, status, ms}], ms null when the verdict has no time
export function progressChart(points, { title = "Evolve progress", unit = "ms per call", bestUpdates = [] } = {}) {
  const rounds = Math.max(1, ...points.map((p) => p.round || 1));
  const timed = points.filter((p) => p.ms !== null && p.ms !== undefined && Number.isFinite(p.ms));
  const yMax = niceMax(Math.max(0, ...timed.map((p) => p.ms)) * 1.1);
  const laneY = T - 16;
  const x = (round) => L + PAD + (rounds === 1 ? (W - L - R - 2 * PAD) / 2 : ((round - 1) / (rounds - 1)) * (W - L - R - 2 * PAD));
  const y = (ms) => T + (1 - ms / yMax) * (H - T - B);
  const perRound = new Map();

  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "chart-title chart-desc",
                         "data-points": points.length });
  // The job's best after each round: the engine's own choice (its best_updated events), plotted at
  // that candidate's value, so the line agrees with the job's best even where no time exists.
  const byId = new Map(points.map((p) => [p.candidate_id, p]));
  const best = [];
  for (let r = 1; r <= rounds; r++) {
    let pick = null;
    for (const u of bestUpdates) if ((u.round || 1) <= r && byId.has(u.candidate_id)) pick = byId.get(u.candidate_id);
    if (pick && pick.status === "correct" && pick.ms !== null && pick.ms !== undefined && Number.isFinite(pick.ms)) best.push([r, pick.ms]);
  }
  const desc = best.length
    ? `${points.length} verified candidates over ${rounds} round(s); best ${fmtMs(best[best.length - 1][1])} after round ${best[best.length - 1][0]}.`
    : `${points.length} verified candidates over ${rounds} round(s); none correct yet.`;
  svg.append(s("title", { id: "chart-title" }, title), s("desc", { id: "chart-desc" }, desc));

  // grid and axes
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    svg.append(s("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }),
               s("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, fmtMs(v)));
  }
  svg.append(s("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }),
             s("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }),
             s("text", { x: L - 6, y: laneY + 4, "text-anchor": "end" }, "no time"),
             s("text", { x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle" }, "round"),
             s("text", { x: 8, y: 14 }, unit));
  for (let r = 1; r <= rounds; r++) {
    if (rounds > 20 && r % Math.ceil(rounds / 10) !== 0 && r !== 1) continue;
    svg.append(s("text", { x: x(r), y: H - B + 16, "text-anchor": "middle" }, String(r)));
  }

  // best-so-far step line
  if (best.length) {
    let d = "";
    best.forEach(([r, ms], i) => {
      d += i === 0 ? `M${x(r)},${y(ms)}` : `H${x(r)}V${y(ms)}`;
    });
    const [, lms] = best[best.length - 1];
    d += `H${W - R}`;   // the best holds to the right edge (also gives a one-round job a visible line)
    svg.append(s("path", { class: "best", d, "data-series": "best" }, s("title", {}, `best so far: ${fmtMs(lms)}`)));
  }

  // one marker per verified candidate, spread a little within its round
  for (const p of points) {
    const k = perRound.get(p.round) || 0;
    perRound.set(p.round, k + 1);
    const dx = ((k % 7) - 3) * 5;
    const hasTime = p.ms !== null && p.ms !== undefined && Number.isFinite(p.ms);
    const cx = x(p.round || 1) + dx;
    const label = `round ${p.round}, candidate ${p.index ?? "?"}: ${p.status}${hasTime ? `, ${fmtMs(p.ms)}` : ""}`;
    const attrs = { class: `point${p.status === "correct" ? "" : " failed"}`, "data-candidate": p.candidate_id,
                    "data-status": p.status };
    const marker = p.status === "correct"
      ? s("circle", { ...attrs, cx, cy: hasTime ? y(p.ms) : laneY, r: 5 })
      : s("rect", { ...attrs, x: cx - 4, y: (hasTime ? y(p.ms) : laneY) - 4, width: 8, height: 8 });
    marker.append(s("title", {}, label));
    svg.append(marker);
  }

  // legend (shapes, not only colours)
  svg.append(
    s("line", { class: "legend-best", x1: W - 250, x2: W - 226, y1: 12, y2: 12 }),
    s("text", { x: W - 222, y: 16 }, "best so far"),
    s("circle", { class: "point", cx: W - 148, cy: 12, r: 5 }),
    s("text", { x: W - 140, y: 16 }, "correct"),
    s("rect", { class: "point failed", x: W - 84, y: 8, width: 8, height: 8 }),
    s("text", { x: W - 72, y: 16 }, "not correct"),
  );
  return svg;
}
