// The dashboard's only door to FastHook: same-origin calls to /api/control/v1 and /api/auth with the session token.
const TOKEN_KEY = "fasthook.session";
// The page may be served under a stage prefix (API Gateway's /api/), so calls are relative to the page.
const BASE = location.pathname.replace(/[^/]*$/, "");

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.field = this.body.field || null;
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

function queryString(query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) params.append(key, one);
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

async function call(prefix, method, path, { body, query } = {}) {
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`${BASE}${prefix}${path}${queryString(query)}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, { error: "network", message: `FastHook could not be reached (${err.message})` });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: "bad_response", message: text.slice(0, 200) };
    }
  }
  if (response.status === 401 && prefix !== "api/auth") {
    session.token = null;
    onUnauthorized();
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const api = {
  get: (path, query) => call("api/control/v1", "GET", path, { query }),
  post: (path, body, query) => call("api/control/v1", "POST", path, { body: body ?? {}, query }),
  put: (path, body, query) => call("api/control/v1", "PUT", path, { body: body ?? {}, query }),
  del: (path) => call("api/control/v1", "DELETE", path),
};

export const auth = {
  demoLogin: () => call("api/auth", "POST", "/demo/login", { body: {} }),
  googleLogin: (credential) => call("api/auth", "POST", "/google/login", { body: { credential } }),
  me: () => call("api/auth", "GET", "/me"),
  logout: () => call("api/auth", "POST", "/logout", { body: {} }),
};

export async function dashboardConfig() {
  const response = await fetch(`${BASE}ui/config.json`);
  return response.ok ? response.json() : {};
}
