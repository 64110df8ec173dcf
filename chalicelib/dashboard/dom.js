// Small DOM helpers: element building, formatting, masking, and the loading/empty/error states every page shows.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "class") el.className = value;
    else if (key === "value") el.value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

export function time(iso) {
  return h("time", { datetime: iso || "" }, when(iso));
}

const GOOD = new Set(["accepted", "SUCCESSFUL", "successful", "delivered", "completed", "done", "enabled", "active"]);
const BAD = new Set(["rejected", "FAILED", "failed", "CANCELLED", "cancelled", "disabled"]);
const WAIT = new Set(["QUEUED", "SCHEDULED", "HOLD", "paused", "running", "queued", "planned", "processing"]);

export function badge(status) {
  const kind = GOOD.has(status) ? "ok" : BAD.has(status) ? "bad" : WAIT.has(status) ? "warn" : "muted";
  return h("span", { class: `badge ${kind}` }, status ?? "—");
}

// Header values that authenticate or sign something are shown masked: a screen share must not leak them.
const SECRET_HEADER = /(authorization|cookie|secret|token|signature|api[-_]?key|password|x-hub-signature)/i;

export function maskValue(value) {
  const text = String(value ?? "");
  return `•••••••• (${text.length} characters)`;
}

export function maskHeaders(headers) {
  const out = {};
  for (const [name, value] of Object.entries(headers || {})) {
    out[name] = SECRET_HEADER.test(name) ? maskValue(value) : value;
  }
  return out;
}

export function pretty(value) {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

export function jsonBlock(value, label) {
  return h("pre", { tabindex: "0", "aria-label": label }, pretty(value));
}

export function loading(what = "Loading…") {
  return h("p", { class: "loading", role: "status" }, what);
}

export function empty(what) {
  return h("p", { class: "empty" }, what);
}

export function errorBox(err) {
  const field = err && err.field ? h("span", {}, " (field ", h("code", {}, err.field), ")") : null;
  const status = err && err.status ? `${err.status}: ` : "";
  return h("div", { class: "error", role: "alert" }, status, err ? err.message : "Something went wrong", field);
}

export function notice(text) {
  return h("div", { class: "notice", role: "status" }, text);
}

export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button" }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      // Clipboard access can be refused (no permission, no secure context): select the text instead.
      const range = document.createRange();
      range.selectNodeContents(button.previousElementSibling || button);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => (button.textContent = label), 2000);
  });
  return button;
}

// A table whose first column links somewhere: rows are reachable by keyboard through real links.
export function table(columns, rows, { caption, rowClass } = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.cls }, c.label)))),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h("tr", { class: rowClass ? rowClass(row) : null }, columns.map((c) => h("td", { class: c.cls, "data-label": c.label }, c.cell(row))))
        )
      )
    )
  );
}

let fieldCount = 0;

// A label tied to its control by id (not by nesting), so a select's options never leak into its name.
export function field(label, input, hint) {
  if (!input.id) input.id = `f${++fieldCount}`;
  const hintNode = hint ? h("span", { class: "muted", id: `${input.id}-hint` }, hint) : null;
  if (hintNode) input.setAttribute("aria-describedby", hintNode.id);
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, hintNode);
}

export function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

// Runs an async load into a container with the loading, error and done states.
export async function load(container, work) {
  replace(container, loading());
  try {
    const content = await work();
    replace(container, content);
  } catch (err) {
    replace(container, errorBox(err));
  }
}
