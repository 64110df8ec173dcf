// Sources, destinations and connections: list, create, edit, enable/disable, pause/unpause, rules editor.
import { api } from "./api.js";
import { badge, copyButton, empty, errorBox, field, h, loading, notice, replace, table } from "./dom.js";

function parseJson(text, name) {
  try {
    return JSON.parse(text || "null");
  } catch (err) {
    const error = new Error(`${name} is not valid JSON: ${err.message}`);
    error.field = name;
    throw error;
  }
}

function state(doc) {
  if (doc.disabled_at) return badge("disabled");
  if (doc.paused_at) return badge("paused");
  return badge("active");
}

function sourceUrl(url) {
  return h("span", { class: "url" }, h("code", {}, url), copyButton(url, "Copy URL"));
}

// One page per resource kind; `kind` says what differs between them.
async function resourcePage(main, kind) {
  const status = h("div", { "aria-live": "polite" });
  const formSlot = h("div");
  const list = h("div", {}, loading());
  const create = h("button", { type: "button", class: "primary", onclick: () => openForm(null) }, `New ${kind.label}`);
  replace(main, h("div", { class: "row" }, h("h1", {}, kind.title), create), status, formSlot, list);

  async function refresh() {
    try {
      const page = await api.get(kind.path, { limit: 255 });
      if (!page.models.length) {
        replace(list, empty(`No ${kind.title.toLowerCase()} yet. Use “New ${kind.label}” to add one.`));
        return;
      }
      replace(list, table(kind.columns(actionsFor), page.models, { caption: kind.title }));
    } catch (err) {
      replace(list, errorBox(err));
    }
  }

  async function act(label, work) {
    replace(status);
    try {
      await work();
      await refresh();
      replace(status, notice(label));
    } catch (err) {
      replace(status, errorBox(err));
    }
  }

  function actionsFor(doc) {
    const buttons = [h("button", { type: "button", onclick: () => openForm(doc) }, "Edit")];
    if (kind.pausable) {
      buttons.push(
        doc.paused_at
          ? h("button", { type: "button", onclick: () => act(`${doc.name} unpaused`, () => api.put(`${kind.path}/${doc.id}/unpause`)) }, "Unpause")
          : h("button", { type: "button", onclick: () => act(`${doc.name} paused`, () => api.put(`${kind.path}/${doc.id}/pause`)) }, "Pause")
      );
    }
    buttons.push(
      doc.disabled_at
        ? h("button", { type: "button", onclick: () => act(`${doc.name} enabled`, () => api.put(`${kind.path}/${doc.id}/enable`)) }, "Enable")
        : h("button", { type: "button", onclick: () => act(`${doc.name} disabled`, () => api.put(`${kind.path}/${doc.id}/disable`)) }, "Disable")
    );
    buttons.push(
      h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: () => {
            if (confirm(`Delete ${kind.label} ${doc.name}?`)) act(`${doc.name} deleted`, () => api.del(`${kind.path}/${doc.id}`));
          },
        },
        "Delete"
      )
    );
    return h("div", { class: "actions", role: "group", "aria-label": `Actions for ${doc.name}` }, buttons);
  }

  async function openForm(doc) {
    replace(formSlot, loading());
    const inputs = await kind.form(doc);
    const error = h("div", { "aria-live": "assertive" });
    const form = h(
      "form",
      { class: "panel", "aria-label": doc ? `Edit ${kind.label} ${doc.name}` : `New ${kind.label}` },
      h("h2", {}, doc ? `Edit ${doc.name}` : `New ${kind.label}`),
      inputs.fields,
      error,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit", class: "primary" }, doc ? "Save" : `Create ${kind.label}`),
        h("button", { type: "button", onclick: () => replace(formSlot) }, "Cancel")
      )
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      replace(error);
      try {
        const body = inputs.body();
        const saved = doc ? await api.put(`${kind.path}/${doc.id}`, body) : await api.post(kind.path, body);
        replace(formSlot);
        await refresh();
        replace(status, notice(`${kind.label} ${saved.name} saved`));
      } catch (err) {
        replace(error, errorBox(err));
        const named = err.field && form.querySelector(`[data-field="${err.field.split(/[.[]/)[0]}"]`);
        if (named) named.setAttribute("aria-invalid", "true");
      }
    });
    replace(formSlot, form);
    form.querySelector("input, select, textarea")?.focus();
  }

  await refresh();
}

function textInput(name, value, attrs = {}) {
  return h("input", { name, "data-field": name, value: value ?? "", ...attrs });
}

function jsonInput(name, value, rows = 6) {
  return h("textarea", { name, "data-field": name, rows, spellcheck: "false" }, JSON.stringify(value ?? {}, null, 2));
}

const SOURCES = {
  label: "source",
  title: "Sources",
  path: "/sources",
  columns: (actions) => [
    { label: "Name", cell: (d) => h("strong", {}, d.name) },
    { label: "URL", cell: (d) => sourceUrl(d.url) },
    { label: "Verification", cls: "hide-narrow", cell: (d) => d.config?.auth_type || "none" },
    { label: "State", cell: state },
    { label: "Actions", cell: actions },
  ],
  form: async (doc) => {
    const name = textInput("name", doc?.name, { required: true, maxlength: 155 });
    const description = textInput("description", doc?.description);
    const config = jsonInput("config", doc ? doc.config : { allowed_http_methods: ["POST", "PUT", "PATCH", "DELETE"] });
    return {
      fields: [
        h("div", { class: "row" }, field("Name", name), field("Description", description)),
        field("Config (JSON: allowed_http_methods, auth_type, auth, custom_response)", config),
      ],
      body: () => ({ name: name.value, description: description.value || null, config: parseJson(config.value, "config") }),
    };
  },
};

const DESTINATIONS = {
  label: "destination",
  title: "Destinations",
  path: "/destinations",
  columns: (actions) => [
    { label: "Name", cell: (d) => h("strong", {}, d.name) },
    { label: "Target", cell: (d) => h("code", {}, d.config?.url || d.config?.path || "—") },
    { label: "Type", cls: "hide-narrow", cell: (d) => d.type },
    { label: "State", cell: state },
    { label: "Actions", cell: actions },
  ],
  form: async (doc) => {
    const name = textInput("name", doc?.name, { required: true, maxlength: 155 });
    const description = textInput("description", doc?.description);
    const type = h(
      "select",
      { name: "type", "data-field": "type" },
      ["HTTP", "MOCK_API"].map((t) => h("option", { value: t, selected: (doc?.type || "HTTP") === t }, t))
    );
    const config = jsonInput("config", doc ? doc.config : { url: "https://example.com/webhooks" });
    return {
      fields: [
        h("div", { class: "row" }, field("Name", name), field("Type", type), field("Description", description)),
        field("Config (JSON: url or path, http_method, http_timeout, rate_limit, rate_limit_period, auth_type, auth)", config),
      ],
      body: () => ({ name: name.value, type: type.value, description: description.value || null, config: parseJson(config.value, "config") }),
    };
  },
};

const RULE_TEMPLATES = {
  filter: { type: "filter", body: { type: { $eq: "order.created" } } },
  transform: { type: "transform", transformation_id: "trs_..." },
  deduplicate: { type: "deduplicate", window: 60000, include_fields: ["body.id"] },
  delay: { type: "delay", delay: 1000 },
  retry: { type: "retry", strategy: "exponential", count: 5, interval: 30000, response_status_codes: ["500-599"] },
};

// The rules editor: JSON, with templates to start from; the API validates and names the faulty field.
function rulesEditor(rules) {
  const area = h("textarea", { name: "rules", "data-field": "rules", rows: 8, spellcheck: "false", "aria-describedby": "rules-help" }, JSON.stringify(rules || [], null, 2));
  const add = (kind) => {
    let current;
    try {
      current = JSON.parse(area.value || "[]");
    } catch {
      current = [];
    }
    current.push(RULE_TEMPLATES[kind]);
    area.value = JSON.stringify(current, null, 2);
    area.focus();
  };
  return {
    area,
    node: h(
      "fieldset",
      { class: "panel" },
      h("legend", {}, "Rules"),
      h("p", { id: "rules-help", class: "muted" }, "Filters and transforms run in order, then deduplicate, then delay; retry applies at delivery."),
      h("div", { class: "actions" }, Object.keys(RULE_TEMPLATES).map((kind) => h("button", { type: "button", onclick: () => add(kind) }, `Add ${kind}`))),
      field("Rules (JSON array)", area)
    ),
  };
}

const CONNECTIONS = {
  label: "connection",
  title: "Connections",
  path: "/connections",
  pausable: true,
  columns: (actions) => [
    { label: "Name", cell: (d) => h("strong", {}, d.name) },
    { label: "Source → destination", cell: (d) => `${d.source?.name} → ${d.destination?.name}` },
    { label: "Source URL", cell: (d) => (d.source ? sourceUrl(d.source.url) : "—") },
    { label: "Rules", cls: "hide-narrow", cell: (d) => (d.rules || []).map((r) => r.type).join(", ") || "none" },
    { label: "State", cell: state },
    { label: "Actions", cell: actions },
  ],
  form: async (doc) => {
    const [sources, destinations] = await Promise.all([api.get("/sources", { limit: 255 }), api.get("/destinations", { limit: 255 })]);
    const name = textInput("name", doc?.name, { required: true, maxlength: 155 });
    const description = textInput("description", doc?.description);
    const source = h(
      "select",
      { name: "source_id", "data-field": "source_id", disabled: !!doc, required: true },
      sources.models.map((s) => h("option", { value: s.id, selected: doc?.source?.id === s.id }, s.name))
    );
    const destination = h(
      "select",
      { name: "destination_id", "data-field": "destination_id", required: true },
      destinations.models.map((d) => h("option", { value: d.id, selected: doc?.destination?.id === d.id }, d.name))
    );
    const rules = rulesEditor(doc?.rules);
    const fields = [
      h("div", { class: "row" }, field("Name", name), field("Source", source), field("Destination", destination), field("Description", description)),
      rules.node,
    ];
    if (!sources.models.length || !destinations.models.length) fields.unshift(errorBox({ message: "Create a source and a destination first." }));
    return {
      fields,
      body: () => {
        const body = { name: name.value, description: description.value || null, destination_id: destination.value, rules: parseJson(rules.area.value, "rules") };
        if (!doc) body.source_id = source.value;
        return body;
      },
    };
  },
};

export const sourcesPage = (main) => resourcePage(main, SOURCES);
export const destinationsPage = (main) => resourcePage(main, DESTINATIONS);
export const connectionsPage = (main) => resourcePage(main, CONNECTIONS);
