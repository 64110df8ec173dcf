// The dashboard's shell: hash router, login, navigation and who is logged in. Pages live in their own modules.
import { auth, dashboardConfig, session, whenUnauthorized } from "./api.js";
import { errorBox, h, replace } from "./dom.js";
import { connectionsPage, destinationsPage, sourcesPage } from "./resources.js";
import { eventsPage, requestsPage } from "./observe.js";
import { bulkPage, metricsPage, secretsPage, transformationsPage } from "./tools.js";
import { go, leave, parseHash } from "./router.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

const PAGES = {
  connections: connectionsPage,
  sources: sourcesPage,
  destinations: destinationsPage,
  requests: requestsPage,
  events: eventsPage,
  metrics: metricsPage,
  bulk: bulkPage,
  transformations: transformationsPage,
  secrets: secretsPage,
};

// Focus moves to the page's content on every navigation (not on the first load), so keyboard and
// screen reader users start where the new page starts.
async function render(moveFocus = true) {
  leave();
  const route = parseHash();
  if (!session.token) {
    nav.hidden = true;
    replace(who);
    return loginPage();
  }
  const name = route.parts[0] || "connections";
  if (name === "login") return go("connections");
  nav.hidden = false;
  for (const link of nav.querySelectorAll("a")) {
    if (link.getAttribute("href") === `#/${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const page = PAGES[name];
  document.title = `FastHook · ${name}`;
  if (moveFocus) main.focus({ preventScroll: true });
  if (!page) return replace(main, h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/connections" }, "Go to connections")));
  try {
    await page(main, route);
  } catch (err) {
    replace(main, errorBox(err));
  }
}

async function showWho() {
  try {
    const me = await auth.me();
    const label = me.user ? me.user.name || me.user.email : me.team ? me.team.name : "signed in";
    replace(who, h("span", { class: "hide-narrow" }, label), h("button", { type: "button", onclick: logout }, "Log out"));
  } catch {
    replace(who, h("button", { type: "button", onclick: logout }, "Log out"));
  }
}

async function logout() {
  try {
    await auth.logout();
  } catch {
    // The session may already be gone; either way this browser forgets it.
  }
  session.token = null;
  location.hash = "#/login";
  render();
}

async function loggedIn(result) {
  session.token = result.token;
  showWho();
  if (location.hash.replace(/^#\/?/, "").startsWith("login") || !location.hash) go("connections");
  else render();
}

async function loginPage() {
  document.title = "FastHook · log in";
  const status = h("div", { "aria-live": "polite" });
  const demo = h("button", { type: "button", class: "primary" }, "Log in as demo user");
  demo.addEventListener("click", async () => {
    demo.disabled = true;
    replace(status);
    try {
      await loggedIn(await auth.demoLogin());
    } catch (err) {
      replace(status, errorBox(err));
      demo.disabled = false;
    }
  });
  const google = h("div", { id: "google-login" });
  replace(
    main,
    h(
      "section",
      { class: "panel login", "aria-labelledby": "login-title" },
      h("h1", { id: "login-title" }, "Log in to FastHook"),
      h("p", {}, "The demo user sees the demo team's sources, connections and webhooks."),
      h("div", { class: "actions" }, demo),
      google,
      status
    )
  );
  const config = await dashboardConfig().catch(() => ({}));
  if (config.google_client_id) mountGoogle(google, config.google_client_id, status);
}

// Google's sign-in button exists only when this deployment has a Google client id.
function mountGoogle(container, clientId, status) {
  const script = h("script", { src: "https://accounts.google.com/gsi/client", async: true });
  script.addEventListener("load", () => {
    window.google.accounts.id.initialize({
      client_id: clientId,
      callback: async ({ credential }) => {
        try {
          await loggedIn(await auth.googleLogin(credential));
        } catch (err) {
          replace(status, errorBox(err));
        }
      },
    });
    container.append(h("p", {}, "or"));
    const slot = h("div");
    container.append(slot);
    window.google.accounts.id.renderButton(slot, { theme: "outline", size: "large", text: "signin_with" });
  });
  script.addEventListener("error", () => replace(status, errorBox({ message: "Google sign-in could not be loaded" })));
  document.head.append(script);
}

whenUnauthorized(() => {
  if (!location.hash.startsWith("#/login")) location.hash = "#/login";
});
window.addEventListener("hashchange", () => render());
if (session.token) showWho();
render(false);
