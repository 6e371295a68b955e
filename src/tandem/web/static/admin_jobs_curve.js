// The live loss curve of a training job: an SVG line over (step, loss) points, built with DOM
// calls (no markup strings, no inline style: the page's CSP). Colours come from the stylesheet.

const SVG = "http://www.w3.org/2000/svg";
const W = 560;
const H = 200;
const PAD = { left: 48, right: 12, top: 10, bottom: 28 };

function node(tag, attrs = {}, text = "") {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text) n.textContent = text;
  return n;
}

function fmt(v) {
  return Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : v.toPrecision(3);
}

export function drawCurve(box, points) {
  if (!points || !points.length) {
    box.replaceChildren(Object.assign(document.createElement("p"), { className: "muted small", textContent: "No loss logged yet (it is logged every logging_steps steps)." }));
    return;
  }
  const steps = points.map((p) => p[0]);
  const losses = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  let [y0, y1] = [Math.min(...losses), Math.max(...losses)];
  if (y0 === y1) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const sx = (x) => PAD.left + (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const sy = (y) => PAD.top + (1 - (y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  const svg = node("svg", { viewBox: `0 0 ${W} ${H}`, class: "curve-svg" });
  svg.append(node("title", {}, `training loss over ${points.length} logged steps`));
  for (const y of [y0, (y0 + y1) / 2, y1]) {
    svg.append(node("line", { x1: PAD.left, x2: W - PAD.right, y1: sy(y), y2: sy(y), class: "grid" }));
    svg.append(node("text", { x: PAD.left - 6, y: sy(y) + 4, "text-anchor": "end", class: "tick" }, fmt(y)));
  }
  for (const x of x1 === x0 ? [x0] : [x0, x1]) {
    svg.append(node("text", { x: sx(x), y: H - 8, "text-anchor": "middle", class: "tick" }, `step ${x}`));
  }
  const path = points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ");
  svg.append(node("path", { d: path, class: "line" }));
  if (points.length < 40) {
    for (const [x, y] of points) svg.append(node("circle", { cx: sx(x), cy: sy(y), r: 3, class: "dot" }, ""));
  }
  box.replaceChildren(svg);
}
