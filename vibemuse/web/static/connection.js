// One logical session over successive WebSockets (protocol.md sections 5 to 8).
//
// Theory of operation. A browser cannot set headers on a WebSocket, so each
// socket opens unauthenticated and its first frame is `auth` with the token
// and, once the client has seen any event, `since`: the highest stream
// position seen (5.7). The server then replays what the user missed, in
// order, before live frames; the caller de-duplicates by event id.
//
// Frames that make events are idempotent by messageId (14.7): until their
// answer (`ack`, `error`, `notice`) arrives they stay in `pending`, and every
// new socket sends them again, with the same messageId, right after `auth`.
// A retry the server already did is acked `duplicate: true` and does nothing.
// messageIds are a random per-page prefix and a counter: unique for good.
//
// An unexpected close reconnects with exponential backoff and jitter, reset
// by each `welcome`; while the browser reports itself offline it waits for
// the `online` event instead. 4002, 4003 and 4006 mean the token is gone
// (log in again), 4011 that the account is banned (its tokens are gone too)
// and 4005 that the user has too many sockets: no reconnect.
// Browsers cannot see WebSocket pings, so the client sends `ping` frames
// and drops a socket that has been silent for too long.

const STOP_CODES = new Set([4002, 4003, 4006, 4011]);
const PING_EVERY_MS = 20000;
const SILENT_FOR_MS = 50000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15000;

function randomPrefix() {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

export class Connection {
  /**
   * token: the access token; since(): the highest position seen, or null;
   * onFrame(frame): every server frame; onState(state, detail): "connecting",
   * "online", "reconnecting", "offline", "stopped" or "logged_out".
   */
  constructor({ token, since, onFrame, onState, url }) {
    this.token = token;
    this.since = since;
    this.onFrame = onFrame;
    this.onState = onState;
    this.url = url || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/ws`;
    this.prefix = randomPrefix();
    this.counter = 0;
    this.pending = new Map(); // messageId -> frame, sent again on every new socket until answered
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.pinger = null;
    this.lastHeard = 0;
    this.live = false;
    this.stopped = false;
    this.onOnline = () => { if (!this.socket && !this.stopped) this.open(); };
    window.addEventListener("online", this.onOnline);
  }

  start() { this.open(); }

  nextId() { return `${this.prefix}.${++this.counter}`; }

  /**
   * Send a frame. `retry`: it makes an event (or changes something), so it is
   * kept and sent again after a reconnect until answered. Frames that are
   * not kept are dropped while no socket is open (typing, who, ping).
   */
  send(type, data = {}, { retry = false } = {}) {
    const frame = { type, messageId: this.nextId(), data };
    if (retry) this.pending.set(frame.messageId, frame);
    if (this.socket && this.socket.readyState === WebSocket.OPEN && this.authSent) {
      this.socket.send(JSON.stringify(frame));
    }
    return frame.messageId;
  }

  open() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped) return;
    if (navigator.onLine === false) {
      this.onState("offline");
      return; // the "online" event opens it
    }
    this.onState(this.attempt === 0 && !this.everLive ? "connecting" : "reconnecting");
    const socket = new WebSocket(this.url, ["vibemuse.v1"]);
    this.socket = socket;
    this.authSent = false;
    socket.onopen = () => {
      const data = { token: this.token };
      const since = this.since();
      if (since !== null && since !== undefined) data.since = since;
      socket.send(JSON.stringify({ type: "auth", messageId: this.nextId(), data }));
      this.authSent = true;
      for (const frame of this.pending.values()) socket.send(JSON.stringify(frame));
      this.lastHeard = Date.now();
      this.pinger = setInterval(() => this.keepAlive(socket), PING_EVERY_MS);
    };
    socket.onmessage = (message) => {
      if (socket !== this.socket) return;
      this.lastHeard = Date.now();
      let frame;
      try { frame = JSON.parse(message.data); } catch { return; }
      if (frame.type === "welcome") {
        this.attempt = 0;
        this.live = true;
        this.everLive = true;
        this.onState("online");
      }
      const inReplyTo = frame.data?.inReplyTo;
      if (inReplyTo && frame.type !== "pong") this.pending.delete(inReplyTo);
      this.onFrame(frame);
    };
    socket.onclose = (event) => this.closed(socket, event.code, event.reason);
  }

  keepAlive(socket) {
    if (socket !== this.socket) return;
    if (Date.now() - this.lastHeard > SILENT_FOR_MS) {
      socket.close(); // silent: treat as dropped (onclose reconnects)
      return;
    }
    this.send("ping", {});
  }

  closed(socket, code, reason) {
    if (socket !== this.socket) return;
    clearInterval(this.pinger);
    this.socket = null;
    this.live = false;
    if (this.stopped) return;
    if (STOP_CODES.has(code)) {
      this.stop();
      this.onState("logged_out", { code, reason });
      return;
    }
    if (code === 4005) {
      this.stop();
      this.onState("stopped", { code, reason: reason || "Too many connections: close another tab first." });
      return;
    }
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt += 1;
    this.onState(navigator.onLine === false ? "offline" : "reconnecting", { code, delay });
    this.timer = setTimeout(() => this.open(), delay);
  }

  /** Reconnect now (a user's "retry" button, or after a stop). */
  retry() {
    if (this.stopped) window.addEventListener("online", this.onOnline);
    this.stopped = false;
    this.attempt = 0;
    if (!this.socket) this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    window.removeEventListener("online", this.onOnline);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000);
    }
  }
}
