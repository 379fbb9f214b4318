// Bench results: this gateway stores none yet (`kgen bench` keeps its results locally), so the
// page says so instead of showing anything made up.
import { h } from "./dom.js";

export function benchPage(main) {
  main.append(
    h("h1", {}, "Bench"),
    h("p", { class: "notice", id: "bench-empty", role: "status" },
      "No bench results: this gateway stores no `kgen bench` results, so there is nothing to show here. ",
      "Run the benchmark suite where it lives and read its results file."));
  return null;
}
