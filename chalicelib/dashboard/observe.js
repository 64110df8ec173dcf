// Requests -> events -> attempts, with the API's filters, detail panes and single and bulk retries.
import { api } from "./api.js";
import { badge, empty, errorBox, field, h, jsonBlock, kv, load, loading, maskHeaders, replace, table, time } from "./dom.js";
import { href, go, onLeave } from "./router.js";
import { bulkLauncher } from "./tools.js";

const REQUEST_STATUSES = ["", "accepted", "rejected"];
const EVENT_STATUSES = ["", "queued", "processing", "delivered", "failed", "ignored", "SCHEDULED", "QUEUED", "HOLD", "SUCCESSFUL", "FAILED", "CANCELLED"];
const RANGES = ["now-15m", "now-1h", "now-6h", "now-24h", "now-7d"];

function pick(query, names) {
  const out = {};
  for (const name of names) if (query.get(name)) out[name] = query.get(name);
  return out;
}

// The filter bar: its values live in the hash, so a filtered view can be bookmarked and shared.
function filterForm(page, query, { statuses, extra }) {
  const from = h("input", { name: "from", list: "ranges", value: query.get("from") || "", placeholder: "now-1h or ISO time", size: 16 });
  const to = h("input", { name: "to", value: query.get("to") || "", placeholder: "now", size: 12 });
  const status = h("select", { name: "status" }, statuses.map((s) => h("option", { value: s, selected: query.get("status") === s }, s || "any")));
  const q = h("input", { name: "q", type: "search", value: query.get("q") || "", placeholder: "req_… / evt_… id", size: 22 });
  const extras = (extra || []).map(([name, label]) => [name, h("input", { name, value: query.get(name) || "", size: 16 }), label]);
  const form = h(
    "form",
    { class: "panel row", role: "search", "aria-label": `Filter ${page}` },
    h("datalist", { id: "ranges" }, RANGES.map((r) => h("option", { value: r }))),
    field("From", from),
    field("To", to),
    field("Status", status),
    field("ID or search", q),
    extras.map(([, input, label]) => field(label, input)),
    h("button", { type: "submit", class: "primary" }, "Apply"),
    h("a", { class: "button", href: `#/${page}` }, "Clear")
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = { from: from.value.trim(), to: to.value.trim(), status: status.value, q: q.value.trim() };
    for (const [name, input] of extras) values[name] = input.value.trim();
    go(page, values);
  });
  return form;
}

function dataPane(data) {
  if (!data) return empty("No stored data.");
  return h(
    "div",
    {},
    kv([
      ["Method", data.method],
      ["Path", h("code", {}, data.path || "/")],
      ["Query", h("code", {}, data.query || "—")],
    ]),
    h("h3", {}, "Headers"),
    jsonBlock(maskHeaders(data.headers), "Headers"),
    h("h3", {}, data.is_base64 ? "Body (base64)" : "Body"),
    jsonBlock(data.body, "Body")
  );
}

// ---- requests ----------------------------------------------------------------------------------------

const REQUEST_FILTERS = ["from", "to", "status", "q", "source_id"];

export async function requestsPage(main, route) {
  const filters = pick(route.query, REQUEST_FILTERS);
  const list = h("div", {}, loading());
  const detail = h("section", { "aria-label": "Request detail" });
  const refresh = h("button", { type: "button", onclick: () => loadList() }, "Refresh");
  replace(
    main,
    h("div", { class: "row" }, h("h1", {}, "Requests"), refresh),
    filterForm("requests", route.query, { statuses: REQUEST_STATUSES, extra: [["source_id", "Source ID"]] }),
    h("div", { class: "split" }, list, detail)
  );
  const selected = route.parts[1];
  async function loadList() {
    await load(list, async () => {
      const page = await api.get("/requests", { ...filters, limit: 50 });
      if (!page.models.length) return empty("No requests match. Send a webhook to a source URL, or widen the time range.");
      return table(
        [
          { label: "Request", cell: (r) => h("a", { href: href(`requests/${r.id}`, filters) }, h("code", {}, r.id)) },
          { label: "Status", cell: (r) => badge(r.status) },
          { label: "Events", cell: (r) => String(r.events_count ?? 0) },
          { label: "Received", cls: "hide-narrow", cell: (r) => time(r.created_at) },
        ],
        page.models,
        { caption: "Requests", rowClass: (r) => (r.id === selected ? "selected" : null) }
      );
    });
  }
  await loadList();
  if (selected) await requestDetail(detail, selected, filters);
}

async function requestDetail(container, id, filters) {
  await load(container, async () => {
    const [request, events, ignored] = await Promise.all([
      api.get(`/requests/${id}`),
      api.get(`/requests/${id}/events`),
      api.get(`/requests/${id}/ignored_events`),
    ]);
    return h(
      "div",
      { class: "panel" },
      h("h2", {}, "Request ", h("code", {}, request.id)),
      kv([
        ["Status", badge(request.status)],
        ["Verified", String(request.verified)],
        ["Source", h("code", {}, request.source_id)],
        ["Received", time(request.created_at)],
        ["Rejection", request.rejection_cause],
      ]),
      h("h3", {}, "Events"),
      events.models.length
        ? table(
            [
              { label: "Event", cell: (e) => h("a", { href: href(`events/${e.id}`, {}) }, h("code", {}, e.id)) },
              { label: "Status", cell: (e) => badge(e.status) },
              { label: "Attempts", cell: (e) => String(e.attempts ?? 0) },
            ],
            events.models,
            { caption: "Events of this request" }
          )
        : empty("No events: no enabled connection matched."),
      ignored.models.length
        ? [
            h("h3", {}, "Ignored"),
            table(
              [
                { label: "Connection", cell: (i) => h("code", {}, i.connection_id) },
                { label: "Cause", cell: (i) => badge(i.cause) },
              ],
              ignored.models,
              { caption: "Ignored branches of this request" }
            ),
          ]
        : null,
      dataPane(request.data)
    );
  });
  container.querySelector("h2")?.scrollIntoView({ block: "nearest" });
  void filters;
}

// ---- events and attempts ----------------------------------------------------------------------------

const EVENT_FILTERS = ["from", "to", "status", "q", "connection_id", "destination_id", "source_id"];
const ACTIVE = new Set(["QUEUED", "SCHEDULED"]);

export async function eventsPage(main, route) {
  const filters = pick(route.query, EVENT_FILTERS);
  const list = h("div", {}, loading());
  const count = h("p", { class: "muted", "aria-live": "polite" });
  const detail = h("section", { "aria-label": "Event detail" });
  const bulkSlot = h("div");
  const refresh = h("button", { type: "button", onclick: () => loadList() }, "Refresh");
  const bulk = h("button", { type: "button", onclick: () => bulkLauncher(bulkSlot, filters, () => loadList()) }, "Bulk retry…");
  replace(
    main,
    h("div", { class: "row" }, h("h1", {}, "Events"), refresh, bulk),
    filterForm("events", route.query, {
      statuses: EVENT_STATUSES,
      extra: [
        ["connection_id", "Connection ID"],
        ["destination_id", "Destination ID"],
      ],
    }),
    bulkSlot,
    count,
    h("div", { class: "split" }, list, detail)
  );
  const [selected, attemptId] = [route.parts[1], route.parts[2]];
  async function loadList() {
    await load(list, async () => {
      const [page, total] = await Promise.all([api.get("/events", { ...filters, limit: 50 }), api.get("/events/count", filters)]);
      replace(count, `${total.count} event${total.count === 1 ? "" : "s"} match these filters.`);
      if (!page.models.length) return empty("No events match these filters.");
      return table(
        [
          { label: "Event", cell: (e) => h("a", { href: href(`events/${e.id}`, filters) }, h("code", {}, e.id)) },
          { label: "Status", cell: (e) => badge(e.status) },
          { label: "HTTP", cell: (e) => String(e.response_status ?? e.error_code ?? "—") },
          { label: "Attempts", cls: "hide-narrow", cell: (e) => String(e.attempts ?? 0) },
          { label: "Created", cls: "hide-narrow", cell: (e) => time(e.created_at) },
        ],
        page.models,
        { caption: "Events", rowClass: (e) => (e.id === selected ? "selected" : null) }
      );
    });
  }
  await loadList();
  if (selected) await eventDetail(detail, selected, attemptId, filters, loadList);
}

async function eventDetail(container, id, attemptId, filters, reloadList) {
  const status = h("div", { "aria-live": "polite" });
  await load(container, async () => {
    const [event, attempts] = await Promise.all([api.get(`/events/${id}`), api.get("/attempts", { event_id: id, dir: "desc" })]);
    const retry = h("button", { type: "button", class: "primary" }, "Retry now");
    retry.addEventListener("click", async () => {
      retry.disabled = true;
      replace(status, loading("Retrying…"));
      try {
        await api.post(`/events/${id}/retry`);
        await waitForAttempt(id, attempts.models.length);
        await eventDetail(container, id, null, filters, reloadList);
        reloadList();
      } catch (err) {
        replace(status, errorBox(err));
        retry.disabled = false;
      }
    });
    const attemptPane = h("div");
    const node = h(
      "div",
      { class: "panel" },
      h("h2", {}, "Event ", h("code", {}, event.id)),
      kv([
        ["Status", badge(event.status)],
        ["Attempts", String(event.attempts ?? 0)],
        ["Last response", String(event.response_status ?? event.error_code ?? "—")],
        ["Request", h("a", { href: href(`requests/${event.request_id}`, {}) }, h("code", {}, event.request_id))],
        ["Connection", h("code", {}, event.connection_id)],
        ["Next attempt", event.next_attempt_at ? time(event.next_attempt_at) : "—"],
      ]),
      h("div", { class: "actions" }, retry),
      status,
      h("h3", {}, "Attempts"),
      attempts.models.length
        ? table(
            [
              { label: "Attempt", cell: (a) => h("a", { href: href(`events/${id}/${a.id}`, filters) }, `#${a.attempt_number} `, h("code", { class: "hide-narrow" }, a.id)) },
              { label: "Status", cell: (a) => badge(a.status) },
              { label: "HTTP", cell: (a) => String(a.response_status ?? a.error_code ?? "—") },
              { label: "Trigger", cls: "hide-narrow", cell: (a) => a.trigger },
              { label: "When", cls: "hide-narrow", cell: (a) => time(a.created_at) },
            ],
            attempts.models,
            { caption: "Attempts", rowClass: (a) => (a.id === attemptId ? "selected" : null) }
          )
        : empty(ACTIVE.has(event.status) ? "No attempt yet: the event is queued." : "No attempts."),
      attemptPane,
      h("h3", {}, "Delivered data"),
      dataPane(event.data)
    );
    const attempt = attemptId && attempts.models.find((a) => a.id === attemptId);
    if (attempt) replace(attemptPane, attemptDetail(attempt));
    return node;
  });
}

function attemptDetail(a) {
  return h(
    "section",
    { class: "panel", "aria-label": `Attempt ${a.attempt_number}` },
    h("h3", {}, `Attempt #${a.attempt_number} `, h("code", {}, a.id)),
    kv([
      ["Status", badge(a.status)],
      ["Response status", String(a.response_status ?? "—")],
      ["Error", a.error_code ? `${a.error_code}: ${a.error_message || ""}` : "—"],
      ["Trigger", a.trigger],
      ["URL", h("code", {}, `${a.http_method || ""} ${a.requested_url || ""}`)],
      ["Latency", a.delivery_latency != null ? `${a.delivery_latency} ms` : "—"],
      ["When", time(a.created_at)],
    ]),
    h("h4", {}, "Response body"),
    jsonBlock(a.body ?? "", "Response body")
  );
}

// A retry is asynchronous: wait (briefly) for the new attempt so the pane shows its outcome.
async function waitForAttempt(eventId, before) {
  const deadline = Date.now() + 20000;
  let stop = false;
  onLeave(() => (stop = true));
  while (!stop && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 700));
    const [event, attempts] = await Promise.all([api.get(`/events/${eventId}`), api.get("/attempts", { event_id: eventId, limit: 1 })]);
    if (attempts.models.length && attempts.count >= 1 && !ACTIVE.has(event.status) && event.attempts > before) return;
  }
}


