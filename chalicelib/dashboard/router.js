// Hash routes (`#/events/evt_...?status=failed`): the server only ever serves `/`, so every page is a hash.

// Work a page started (timers) that must stop when the user leaves it.
const cleanups = [];

export function onLeave(fn) {
  cleanups.push(fn);
}

export function leave() {
  while (cleanups.length) cleanups.pop()();
}

export function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, search] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(search || "") };
}

export function href(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) if (value) params.set(key, value);
  const text = params.toString();
  return `#/${path}${text ? `?${text}` : ""}`;
}

export function go(path, query) {
  location.hash = href(path, query);
}
