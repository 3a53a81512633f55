// What the client keeps in the browser: the session (localStorage, shared by
// the tabs) and the stream position seen (sessionStorage: each tab resumes
// from its own). Storage that is full or switched off is not an error.

function store(kind) {
  try { return kind === "session" ? window.sessionStorage : window.localStorage; } catch { return null; }
}

export function readJson(kind, key, fallback) {
  try { return JSON.parse(store(kind)?.getItem(key) ?? "null") ?? fallback; } catch { return fallback; }
}

export function writeJson(kind, key, value) {
  try { store(kind)?.setItem(key, JSON.stringify(value)); } catch { /* storage full or off: keep going */ }
}

export function forget(kind, key) {
  try { store(kind)?.removeItem(key); } catch { /* nothing to forget */ }
}
