// Stacked bar charts drawn as inline SVG: no chart library, and the totals are also given as text.
import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

function label(iso, granularity) {
  const date = new Date(iso);
  const withSeconds = /s$/.test(granularity || "");
  const opts = withSeconds ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" };
  if ((granularity || "").endsWith("h") || (granularity || "").endsWith("d")) Object.assign(opts, { month: "short", day: "numeric" });
  return date.toLocaleString(undefined, opts);
}

// data: [{time_bucket, metrics: {measure: n}}]; series: [{key, label}]
export function stackedBars({ title, data, series, granularity }) {
  const width = 720;
  const height = 220;
  const pad = { left: 36, right: 8, top: 10, bottom: 28 };
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const totals = data.map((b) => series.reduce((sum, one) => sum + (Number(b.metrics?.[one.key]) || 0), 0));
  const max = Math.max(1, ...totals);
  const slot = innerW / Math.max(1, data.length);
  const barW = Math.max(1, slot * 0.8);
  const sums = series.map((one) => data.reduce((sum, b) => sum + (Number(b.metrics?.[one.key]) || 0), 0));
  const summary = series.map((one, i) => `${one.label} ${sums[i]}`).join(", ");
  const svg = s("svg", {
    class: "chart",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `${title}: ${summary}`,
    preserveAspectRatio: "none",
  });
  svg.append(s("title", {}, `${title}: ${summary}`));
  svg.append(s("line", { class: "axis", x1: pad.left, y1: pad.top + innerH, x2: width - pad.right, y2: pad.top + innerH }));
  svg.append(s("text", { x: 2, y: pad.top + 10 }, String(max)));
  svg.append(s("text", { x: 2, y: pad.top + innerH }, "0"));
  data.forEach((bucket, i) => {
    let y = pad.top + innerH;
    const x = pad.left + i * slot + (slot - barW) / 2;
    series.forEach((one, k) => {
      const value = Number(bucket.metrics?.[one.key]) || 0;
      if (!value) return;
      const barH = (value / max) * innerH;
      y -= barH;
      const rect = s("rect", { class: `s${k}`, x, y, width: barW, height: barH });
      rect.append(s("title", {}, `${label(bucket.time_bucket, granularity)}: ${one.label} ${value}`));
      svg.append(rect);
    });
  });
  const ticks = Math.min(6, data.length);
  for (let t = 0; t < ticks; t++) {
    const i = Math.round((t * (data.length - 1)) / Math.max(1, ticks - 1));
    const x = pad.left + i * slot;
    svg.append(s("text", { x, y: height - 8 }, label(data[i].time_bucket, granularity)));
  }
  const legend = h(
    "ul",
    { class: "legend", "aria-label": `${title} totals` },
    series.map((one, k) =>
      h("li", { "data-measure": one.key }, h("span", { class: `swatch s${k}`, "aria-hidden": "true" }), `${one.label}: `, h("strong", {}, String(sums[k])))
    )
  );
  return h("figure", { class: "panel" }, h("figcaption", {}, h("strong", {}, title)), svg, legend);
}
