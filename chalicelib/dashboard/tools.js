// Metrics charts, bulk retries with live progress, the transformation editor and project secrets.
import { api } from "./api.js";
import { stackedBars } from "./charts.js";
import { badge, copyButton, empty, errorBox, field, h, jsonBlock, load, loading, notice, replace, table, time } from "./dom.js";
import { go, href, onLeave } from "./router.js";

// ---- metrics -----------------------------------------------------------------------------------------

// Each range gets a granularity that keeps the chart between ~30 and ~170 bars.
const RANGES = [
  ["15m", 15 * 60, "30s"],
  ["1h", 3600, "1m"],
  ["6h", 6 * 3600, "5m"],
  ["24h", 24 * 3600, "15m"],
  ["7d", 7 * 24 * 3600, "1h"],
];
const GRANULARITIES = ["1s", "5s", "10s", "30s", "1m", "5m", "15m", "1h"];
const REQUEST_SERIES = [
  { key: "accepted_count", label: "Accepted" },
  { key: "rejected_count", label: "Rejected" },
];
const EVENT_SERIES = [
  { key: "delivered_count", label: "Delivered" },
  { key: "failed_count", label: "Failed" },
  { key: "queued_count", label: "Queued" },
  { key: "ignored_count", label: "Ignored" },
];

export async function metricsPage(main, route) {
  const range = RANGES.find(([name]) => name === route.query.get("range")) || RANGES[1];
  const granularity = route.query.get("granularity") || range[2];
  const rangeSelect = h("select", { name: "range" }, RANGES.map(([name]) => h("option", { value: name, selected: name === range[0] }, `last ${name}`)));
  const granularitySelect = h("select", { name: "granularity" }, GRANULARITIES.map((g) => h("option", { value: g, selected: g === granularity }, g)));
  const form = h(
    "form",
    { class: "panel row", "aria-label": "Chart range" },
    field("Range", rangeSelect),
    field("Granularity", granularitySelect),
    h("button", { type: "submit", class: "primary" }, "Show"),
  );
  // A new range suggests its own granularity; the user can still pick another before showing.
  rangeSelect.addEventListener("change", () => (granularitySelect.value = RANGES.find(([n]) => n === rangeSelect.value)[2]));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go("metrics", { range: rangeSelect.value, granularity: granularitySelect.value, t: Date.now().toString(36) });
  });
  const charts = h("div", {}, loading());
  replace(main, h("h1", {}, "Metrics"), form, charts);
  const end = new Date();
  const start = new Date(end.getTime() - range[1] * 1000);
  const base = { "date_range[start]": start.toISOString(), "date_range[end]": end.toISOString(), granularity };
  await load(charts, async () => {
    const [requests, events] = await Promise.all([
      api.get("/metrics/requests", { ...base, "measures[]": REQUEST_SERIES.map((s) => s.key) }),
      api.get("/metrics/events", { ...base, "measures[]": EVENT_SERIES.map((s) => s.key) }),
    ]);
    return h(
      "div",
      { class: "split" },
      stackedBars({ title: "Requests", data: requests.data, series: REQUEST_SERIES, granularity: requests.granularity }),
      stackedBars({ title: "Events", data: events.data, series: EVENT_SERIES, granularity: events.granularity })
    );
  });
}

// ---- bulk retries ------------------------------------------------------------------------------------

const BULK_FILTERS = ["from", "to", "status", "q", "connection_id", "destination_id", "source_id"];
const FINISHED = new Set(["completed", "cancelled", "failed"]);

// From the events page: show how many events the current filter would retry, then start and follow it.
export async function bulkLauncher(slot, filters, onSettled) {
  const body = {};
  for (const name of BULK_FILTERS) if (filters[name]) body[name] = filters[name];
  replace(slot, h("div", { class: "panel" }, loading("Counting matching events…")));
  let planned;
  try {
    planned = (await api.get("/events/count", body)).count;
  } catch (err) {
    replace(slot, errorBox(err));
    return;
  }
  const described = Object.entries(body).map(([k, v]) => `${k}=${v}`).join(", ") || "no filter: every event";
  const start = h("button", { type: "button", class: "primary", disabled: planned === 0 }, `Retry ${planned} event${planned === 1 ? "" : "s"}`);
  const close = h("button", { type: "button", onclick: () => replace(slot) }, "Close");
  const status = h("div", { "aria-live": "polite" });
  start.addEventListener("click", async () => {
    start.disabled = true;
    try {
      const op = await api.post("/events/bulk_operations", body);
      progressPanel(slot, op, onSettled);
    } catch (err) {
      replace(status, errorBox(err));
      start.disabled = false;
    }
  });
  replace(
    slot,
    h(
      "section",
      { class: "panel", "aria-label": "Bulk retry" },
      h("h2", {}, "Bulk retry"),
      h("p", {}, "Planned: ", h("strong", { "data-planned": planned }, `${planned} event${planned === 1 ? "" : "s"}`), ` match (${described}).`),
      planned === 0 ? empty("Nothing to retry with these filters.") : null,
      h("div", { class: "actions" }, start, close),
      status
    )
  );
  start.focus();
}

// A completed operation has issued every retry; its counters settle once those retries' attempts finish.
function settled(op) {
  if (!FINISHED.has(op.status)) return false;
  return op.status !== "completed" || (op.done_count ?? 0) >= (op.queued_count ?? 0);
}

function progressText(op) {
  const total = op.total_count ?? 0;
  return `${op.done_count ?? 0} of ${total} done · ${op.failed_count ?? 0} failed · ${op.queued_count ?? 0} retried`;
}

// A live view of one bulk operation: polls until it finishes or is cancelled.
export function progressPanel(slot, initial, onSettled = () => {}) {
  let op = initial;
  let timer = null;
  const bar = h("progress", { class: "progress", max: 1, value: 0, "aria-label": "Bulk retry progress" });
  const text = h("p", { "aria-live": "polite" });
  const state = h("span");
  const error = h("div");
  const cancel = h("button", { type: "button", class: "danger" }, "Cancel bulk retry");
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      op = await api.post(`/events/bulk_operations/${op.id}/cancel`);
      paint();
    } catch (err) {
      replace(error, errorBox(err));
    }
  });
  function paint() {
    const total = Math.max(1, op.total_count ?? 0);
    bar.max = total;
    bar.value = Math.min(total, op.done_count ?? 0);
    replace(text, progressText(op));
    replace(state, badge(op.status));
    cancel.disabled = !op.cancelable;
  }
  async function poll() {
    try {
      const list = await api.get("/events/bulk_operations", { bucket: "all", limit: 100 });
      op = list.models.find((one) => one.id === op.id) || op;
      paint();
    } catch (err) {
      replace(error, errorBox(err));
    }
    if (!settled(op)) timer = setTimeout(poll, 800);
    else onSettled(op);
  }
  onLeave(() => clearTimeout(timer));
  replace(
    slot,
    h(
      "section",
      { class: "panel", "aria-label": "Bulk retry progress", "data-operation": op.id },
      h("h2", {}, "Bulk retry ", h("code", {}, op.id), " ", state),
      bar,
      text,
      h("div", { class: "actions" }, cancel, h("a", { class: "button", href: "#/bulk" }, "All bulk retries")),
      error
    )
  );
  paint();
  if (!settled(op)) timer = setTimeout(poll, 500);
}

export async function bulkPage(main, route) {
  const list = h("div", {}, loading());
  const detail = h("div");
  replace(main, h("h1", {}, "Bulk retries"), h("p", { class: "muted" }, "Start one from the Events page: filter, then “Bulk retry…”."), detail, list);
  await load(list, async () => {
    const page = await api.get("/events/bulk_operations", { bucket: "all", limit: 100 });
    const chosen = page.models.find((op) => op.id === route.parts[1]);
    if (chosen) progressPanel(detail, chosen);
    if (!page.models.length) return empty("No bulk retries yet.");
    return table(
      [
        { label: "Operation", cell: (op) => h("a", { href: href(`bulk/${op.id}`) }, h("code", {}, op.id)) },
        { label: "Status", cell: (op) => badge(op.status) },
        { label: "Progress", cell: (op) => progressText(op) },
        { label: "Created", cls: "hide-narrow", cell: (op) => time(op.created_at) },
      ],
      page.models,
      { caption: "Bulk retries" }
    );
  });
}

// ---- transformations ---------------------------------------------------------------------------------

const SAMPLE_CODE = `addHandler("transform", (request, context) => {
  console.log("received", request.method, request.path);
  request.headers["x-transformed"] = "yes";
  return request;
});
`;
const SAMPLE_REQUEST = { method: "POST", path: "/", query: "", headers: { "content-type": "application/json" }, body: { hello: "world" } };

export async function transformationsPage(main, route) {
  const id = route.parts[1];
  if (id) return transformationEditor(main, id === "new" ? null : id);
  const list = h("div", {}, loading());
  replace(main, h("div", { class: "row" }, h("h1", {}, "Transformations"), h("a", { class: "button", href: "#/transformations/new" }, "New transformation")), list);
  await load(list, async () => {
    const page = await api.get("/transformations", { limit: 255 });
    if (!page.models.length) return empty("No transformations yet.");
    return table(
      [
        { label: "Name", cell: (t) => h("a", { href: href(`transformations/${t.id}`) }, t.name) },
        { label: "ID", cls: "hide-narrow", cell: (t) => h("code", {}, t.id) },
        { label: "Updated", cell: (t) => time(t.updated_at) },
      ],
      page.models,
      { caption: "Transformations" }
    );
  });
}

async function transformationEditor(main, id) {
  replace(main, loading());
  const doc = id ? await api.get(`/transformations/${id}`) : { name: "", code: SAMPLE_CODE, env: {} };
  const name = h("input", { name: "name", value: doc.name, required: true });
  const code = h("textarea", { name: "code", class: "code", spellcheck: "false" }, doc.code);
  const env = h("textarea", { name: "env", rows: 3, spellcheck: "false" }, JSON.stringify(doc.env || {}, null, 2));
  const sample = h("textarea", { name: "request", rows: 8, spellcheck: "false" }, JSON.stringify(SAMPLE_REQUEST, null, 2));
  const saveStatus = h("div", { "aria-live": "polite" });
  const output = h("section", { "aria-label": "Run output", "aria-live": "polite" });
  const executions = h("div");
  const parse = (area, label) => {
    try {
      return JSON.parse(area.value || "{}");
    } catch (err) {
      throw Object.assign(new Error(`${label} is not valid JSON: ${err.message}`), { field: label });
    }
  };
  const form = h(
    "form",
    { class: "panel", "aria-label": "Transformation" },
    field("Name", name),
    field("Code (JavaScript: addHandler(\"transform\", (request, context) => request))", code),
    field("Environment variables (JSON object)", env),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save")),
    saveStatus
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const body = { name: name.value, code: code.value, env: parse(env, "env") };
      const saved = id ? await api.put(`/transformations/${id}`, body) : await api.post("/transformations", body);
      if (!id) return go(`transformations/${saved.id}`);
      replace(saveStatus, notice("Saved"));
    } catch (err) {
      replace(saveStatus, errorBox(err));
    }
  });
  const run = h("button", { type: "button", class: "primary" }, "Run");
  run.addEventListener("click", async () => {
    run.disabled = true;
    replace(output, loading("Running…"));
    try {
      const result = await api.put("/transformations/run", { code: code.value, env: parse(env, "env"), request: parse(sample, "request") });
      replace(output, h("h3", {}, `Output (${Number(result.duration_ms).toFixed(1)} ms)`), jsonBlock(result.request, "Transformed request"), logList(result.logs));
    } catch (err) {
      replace(output, errorBox(err), logList(err.body?.logs));
    } finally {
      run.disabled = false;
    }
  });
  replace(
    main,
    h("div", { class: "row" }, h("h1", {}, id ? `Transformation ${doc.name}` : "New transformation"), h("a", { href: "#/transformations" }, "All transformations")),
    h(
      "div",
      { class: "split" },
      form,
      h("section", { class: "panel", "aria-label": "Run panel" }, h("h2", {}, "Run"), field("Sample request (JSON)", sample), h("div", { class: "actions" }, run), output)
    ),
    executions
  );
  if (id) {
    await load(executions, async () => {
      const page = await api.get(`/transformations/${id}/executions`, { limit: 20 });
      const logs = h("div", { "aria-live": "polite" });
      const showLogs = (x) => replace(logs, h("h3", {}, "Execution ", h("code", {}, x.id)), x.error ? errorBox({ message: x.error }) : null, logList(x.logs));
      return h(
        "section",
        { class: "panel", "aria-label": "Recent executions" },
        h("h2", {}, "Recent executions"),
        page.models.length
          ? table(
              [
                { label: "Execution", cell: (x) => h("button", { type: "button", onclick: () => showLogs(x) }, x.id) },
                { label: "Result", cell: (x) => badge(x.status) },
                { label: "Log level", cls: "hide-narrow", cell: (x) => x.log_level || "—" },
                { label: "Request", cell: (x) => h("a", { href: href(`requests/${x.request_id}`) }, h("code", {}, x.request_id)) },
                { label: "When", cls: "hide-narrow", cell: (x) => time(x.created_at) },
              ],
              page.models,
              { caption: "Executions" }
            )
          : empty("No executions yet: they appear when a connection's transform rule runs."),
        logs
      );
    });
  }
}

function logList(logs) {
  if (!logs || !logs.length) return h("p", { class: "muted" }, "No console lines.");
  return h("div", {}, h("h3", {}, "Console"), h("ol", { class: "logs", "aria-label": "Console lines" }, logs.map((line) => h("li", { class: line.level }, `[${line.level}] ${line.message}`))));
}

// ---- project secrets ---------------------------------------------------------------------------------

const SECRETS = [
  ["api_key", "API key", "Authenticates API calls (Authorization: Bearer …)."],
  ["signing_secret", "Signing secret", "Signs every delivery (x-fasthook-signature)."],
];

export async function secretsPage(main) {
  const status = h("div", { "aria-live": "polite" });
  const body = h("div", {}, loading());
  replace(main, h("h1", {}, "Project secrets"), status, body);
  async function show(secrets) {
    replace(
      body,
      SECRETS.map(([key, label, help]) => {
        const secret = secrets[key];
        const value = h("code", { "data-secret": key }, secret.masked_value);
        const reveal = h("button", { type: "button", "aria-pressed": "false" }, "Reveal");
        reveal.addEventListener("click", () => {
          const shown = reveal.getAttribute("aria-pressed") === "true";
          value.textContent = shown ? secret.masked_value : secret.value;
          reveal.setAttribute("aria-pressed", String(!shown));
          reveal.textContent = shown ? "Reveal" : "Hide";
        });
        const rotate = h("button", { type: "button", class: "danger" }, "Rotate");
        rotate.addEventListener("click", async () => {
          if (!confirm(`Rotate the ${label.toLowerCase()}? The old value stops working at once.`)) return;
          try {
            await show(await api.post("/project-secrets/rotate", { rotate: [key] }));
            replace(status, notice(`${label} rotated`));
          } catch (err) {
            replace(status, errorBox(err));
          }
        });
        return h(
          "section",
          { class: "panel", "aria-label": label },
          h("h2", {}, label),
          h("p", { class: "muted" }, help),
          h("div", { class: "url" }, value, reveal, copyButton(secret.value, `Copy ${label.toLowerCase()}`), rotate),
          h("p", { class: "muted" }, "Last rotated ", time(secret.last_rotated_at))
        );
      })
    );
  }
  try {
    await show(await api.get("/project-secrets"));
  } catch (err) {
    replace(body, errorBox(err));
  }
}
