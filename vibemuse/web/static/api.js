// The HTTP half of protocol v1 (protocol.md section 9): JSON bodies with
// Content-Type application/json, a bearer token, errors as {error: {code, message}}.

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || "internal_error";
    this.details = error?.details;
  }
}

export class Api {
  constructor(token = null) {
    this.token = token;
  }

  async call(method, path, body) {
    const headers = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (failure) {
      throw new ApiError(0, { code: "network_error", message: "The server cannot be reached." });
    }
    const text = await response.text();
    const parsed = text ? JSON.parse(text) : null;
    if (!response.ok) throw new ApiError(response.status, parsed?.error);
    return parsed;
  }

  register(username, password) { return this.call("POST", "/api/auth/register", { username, password }); }
  login(username, password) { return this.call("POST", "/api/auth/login", { username, password }); }
  logout() { return this.call("POST", "/api/auth/logout"); }
  versions() { return this.call("GET", "/api/versions"); }

  /** One page of a history (section 19): {events, next}, oldest first. */
  history(kind, id, { before } = {}) {
    const query = new URLSearchParams({ limit: "50" });
    if (before !== undefined && before !== null) query.set("before", String(before));
    const paths = {
      room: `/api/communication/history/${encodeURIComponent(id)}`,
      channel: `/api/communication/channels/${encodeURIComponent(id)}/history`,
      page: `/api/communication/pages/${encodeURIComponent(id)}`,
    };
    return this.call("GET", `${paths[kind]}?${query}`);
  }

  /** Join a channel, creating it when no channel has that name (16.11). */
  joinOrCreateChannel(name) { return this.call("POST", "/api/communication/channels", { name }); }
  channel(channelId) { return this.call("GET", `/api/communication/channels/${encodeURIComponent(channelId)}`); }
  channels(q = "") { return this.call("GET", `/api/communication/channels?${new URLSearchParams({ q, limit: "50" })}`); }
}
