// The web client's controller: one player's view of the world.
//
// Theory of operation. Everything the server says arrives as frames
// (connection.js) and goes through `frame()`; every event — live, replayed,
// from a roster or from a history over HTTP — goes through `addEvent()`,
// which drops an event id it has shown already (protocol.md 14.10), so the
// same event reaching the client twice is shown once. Events are routed to
// one scrollback each: the room's, a page conversation's (the set of the
// other people on the page) or a channel's. `since`, the highest stream
// position seen in the socket's own frames, is kept in sessionStorage so a
// reloaded tab resumes where it stopped (5.7); histories read over HTTP do
// not move it, since frames with lower positions may still be on their way.

import { Api } from "./api.js";
import { Connection } from "./connection.js";
import { Scrollback } from "./scrollback.js";
import { duration, el, eventNodes, fill, isDeleted, isMessage, shownContent } from "./render.js";

const $ = (id) => document.getElementById(id);
const SESSION_KEY = "vibemuse.session";
const HISTORY_KEY = "vibemuse.inputHistory";
const HISTORY_SIZE = 100;

const STATUS_TEXT = {
  connecting: "Connecting…",
  online: "Online",
  reconnecting: "Reconnecting…",
  offline: "Offline: waiting for the network…",
  stopped: "Disconnected",
};

function store(kind) {
  try { return kind === "session" ? window.sessionStorage : window.localStorage; } catch { return null; }
}

function readJson(kind, key, fallback) {
  try { return JSON.parse(store(kind)?.getItem(key) ?? "null") ?? fallback; } catch { return fallback; }
}

function writeJson(kind, key, value) {
  try { store(kind)?.setItem(key, JSON.stringify(value)); } catch { /* storage full or off: keep going */ }
}

function serverOf(userId) { return userId.slice(userId.indexOf(":") + 1); }
function localpartOf(userId) { return userId.slice(1, userId.indexOf(":")); }

export class App {
  constructor() {
    this.api = new Api();
    this.inputHistory = readJson("local", HISTORY_KEY, []);
    this.historyIndex = -1;
    this.bindStaticControls();
  }

  boot() {
    const session = readJson("local", SESSION_KEY, null);
    if (session?.accessToken && (!session.expiresAt || Date.parse(session.expiresAt) > Date.now())) this.start(session);
    else this.showLogin();
  }

  // -- logging in and out ------------------------------------------------

  showLogin(message = "") {
    $("app-view").hidden = true;
    for (const id of ["logs", "page-list", "channel-list", "roster"]) $(id).replaceChildren();
    this.connectionState("connecting");
    $("login-view").hidden = false;
    $("login-error").textContent = message;
    this.api.versions().then((v) => { $("login-server").textContent = `Server ${v.server.name}`; }, () => {});
    $("login-username").focus();
  }

  async login(event) {
    event.preventDefault();
    const register = event.submitter?.value === "register";
    const username = $("login-username").value.trim();
    const password = $("login-password").value;
    $("login-error").textContent = "";
    try {
      const session = register ? await this.api.register(username, password) : await this.api.login(username, password);
      writeJson("local", SESSION_KEY, session);
      $("login-form").reset();
      this.start(session);
    } catch (error) {
      $("login-error").textContent = error.message;
    }
  }

  start(session) {
    this.session = session;
    this.api = new Api(session.accessToken);
    this.selfId = session.user.id;
    this.serverName = serverOf(this.selfId);
    this.sinceKey = `vibemuse.since:${this.selfId}`;
    this.since = readJson("session", this.sinceKey, null);
    this.conversationsKey = `vibemuse.conversations:${this.selfId}`;
    this.mutedKey = `vibemuse.muted:${this.selfId}`;
    this.muted = new Set(readJson("local", this.mutedKey, []));
    this.lines = new Map(); // event id -> {node, event, key}
    this.logs = new Map(); // scrollback key -> Scrollback
    this.replyTo = new Map(); // messageId of a frame we sent -> {key, action, eventId}
    this.members = new Map(); // user id -> presence object
    this.typers = new Map(); // user id -> timer
    this.conversations = new Map(); // conversation key -> {ids, names, unread}
    this.channels = new Map(); // channel id -> {channelId, name, role, unread}
    this.room = null;
    this.limits = { typingTimeoutMs: 6000, typingRefreshMs: 3000 };
    this.typingSentAt = 0;
    this.away = false;
    this.welcomed = false; // the first welcome of this login loads the saved page conversations
    this.log("room", "Room");
    for (const saved of readJson("local", this.conversationsKey, [])) this.conversation(saved.ids, saved.names);
    this.setView("room");
    $("login-view").hidden = true;
    $("app-view").hidden = false;
    $("me").textContent = session.user.username;
    this.connection = new Connection({
      token: session.accessToken,
      since: () => this.since,
      onFrame: (frame) => this.frame(frame),
      onState: (state, detail) => this.connectionState(state, detail),
    });
    this.connection.start();
    $("input").focus();
  }

  async logout() {
    this.connection?.stop();
    try { await this.api.logout(); } catch { /* the token may be gone already */ }
    this.forgetSession();
    this.showLogin();
  }

  forgetSession() {
    store("local")?.removeItem(SESSION_KEY);
    store("session")?.removeItem(this.sinceKey);
    this.connection = null;
  }

  connectionState(state, detail = {}) {
    const status = $("status");
    if (state === "logged_out") {
      this.forgetSession();
      this.showLogin("Your session has ended: log in again.");
      return;
    }
    status.dataset.state = state;
    status.textContent = state === "stopped" ? `Disconnected: ${detail.reason}` : STATUS_TEXT[state];
    $("retry-button").hidden = state !== "stopped";
    $("input-form").classList.toggle("waiting", state !== "online");
  }

  // -- frames ------------------------------------------------------------

  frame(frame) {
    const data = frame.data ?? {};
    switch (frame.type) {
      case "welcome":
        this.limits = { ...this.limits, ...data.limits };
        this.session.user = data.user;
        $("me").textContent = data.user.username;
        this.connection.send("channel_list", {});
        if (!this.welcomed) {
          this.welcomed = true;
          for (const [key, conversation] of this.conversations) this.loadConversation(key, conversation);
        }
        break;
      case "roster": this.roster(data); break;
      case "message": case "system_message": case "channel_message":
        this.addEvent(data.event, { live: true });
        break;
      case "channel_notice":
        this.addEvent(data.event, { live: true });
        if (data.event.content?.target === this.selfId) this.connection.send("channel_list", {});
        break;
      case "user_joined":
        this.addEvent(data.event, { live: true });
        if (!this.members.has(data.user.id)) {
          this.members.set(data.user.id, { userId: data.user.id, username: data.user.username, status: "online",
                                           onForMs: 0, idleMs: 0 });
        }
        this.renderRoster();
        break;
      case "user_left":
        this.addEvent(data.event, { live: true });
        this.members.delete(data.event.sender);
        this.stopTyping(data.event.sender);
        break;
      case "page_receipt": case "message_edited": case "message_deleted":
        this.addEvent(data.event, { live: true });
        break;
      case "presence": this.presence(data); break;
      case "typing": this.typing(data); break;
      case "who": this.who(data); break;
      case "notice": this.notice(this.keyOfReply(data.inReplyTo), data.text); break;
      case "error": this.refused(data); break;
      case "ack": this.acked(data); break;
      case "resumed": this.noteSince(data.upto); break;
      case "resume_gap": this.gap(data); break;
      case "channel_list": this.channelList(data.channels); break;
      case "channel_who": this.channelWho(data); break;
      default: break; // pong, and frames this client does not know (6.2)
    }
  }

  noteSince(position) {
    if (typeof position !== "number") return;
    if (this.since === null || position > this.since) {
      this.since = position;
      writeJson("session", this.sinceKey, position);
    }
  }

  roster(data) {
    const moved = this.room && this.room.id !== data.room.id;
    this.room = data.room;
    if (moved) {
      for (const [id, line] of this.lines) if (line.key === "room") this.lines.delete(id);
      this.log("room").clear();
    }
    this.members = new Map(data.members.map((member) => [member.userId, member]));
    for (const timer of this.typers.values()) clearTimeout(timer);
    this.typers.clear();
    for (const event of data.recent) this.addEvent(event, { live: false });
    if (this.since === null && data.recent.length) {
      this.noteSince(Math.max(...data.recent.map((event) => event.unsigned?.stream_position ?? 0)));
    }
    $("room-tab-name").textContent = data.room.name;
    this.renderRoster();
    if (this.view === "room") this.setView("room");
  }

  // -- events ------------------------------------------------------------

  /**
   * Show one event. live: it came in a frame of the socket (so it moves
   * `since` and may count as unread); history: it came from an HTTP history.
   */
  addEvent(event, { live = false, history = false } = {}) {
    if (!event) return;
    const position = event.unsigned?.stream_position ?? null;
    if (live) this.noteSince(position);
    if (event.type === "vm.edit") return this.edited(event);
    if (event.type === "vm.redaction") return this.deleted(event);
    if (event.type === "vm.receipt") return this.receipt(event);
    if (this.lines.has(event.event_id)) return;
    const key = this.keyOf(event);
    if (!key) return;
    const node = el("li", "line");
    node.dataset.eventId = event.event_id;
    node.dataset.sender = event.sender;
    node.dataset.type = event.type;
    if (event.content?.kind) node.dataset.kind = event.content.kind;
    const line = { node, event, key, receipts: new Map() };
    this.lines.set(event.event_id, line);
    this.drawLine(line);
    this.log(key).insert(node, position);
    if (event.type === "vm.room.message" || event.type === "vm.page") this.stopTyping(event.sender);
    if (live && !history && event.sender !== this.selfId) this.unread(key, event);
  }

  keyOf(event) {
    if (event.type === "vm.page") return this.conversationOf(event).key;
    if (event.channel_id) return this.channelKey(event.channel_id);
    if (event.room_id) return this.room && event.room_id === this.room.id ? "room" : null;
    if (event.type === "vm.system") return "room";
    return null;
  }

  channelKey(channelId) {
    if (!this.channels.has(channelId)) this.channels.set(channelId, { channelId, name: channelId, unread: 0 });
    return `channel:${channelId}`;
  }

  drawLine(line) {
    const { node, event } = line;
    const content = line.content ?? shownContent(event);
    const text = fill(el("span", "text"), eventNodes(event, this.selfId, content));
    const parts = [text];
    if (line.content || event.unsigned?.edited) parts.push(el("span", "edited", "(edited)"));
    if (event.type === "vm.page" && line.receipts.size) parts.push(this.receiptNode(line));
    if (isMessage(event) && !isDeleted(event) && !line.deleted) {
      const button = el("button", "actions-toggle", "⋯");
      button.type = "button";
      button.setAttribute("aria-label", "Message actions");
      button.setAttribute("aria-expanded", "false");
      parts.push(button);
    }
    if (line.deleted) fill(text, [document.createTextNode("(message deleted)")]);
    node.classList.toggle("own", event.sender === this.selfId);
    node.classList.toggle("deleted", Boolean(line.deleted || isDeleted(event)));
    node.replaceChildren(...parts);
  }

  edited(edit) {
    const line = this.lines.get(edit.content?.relates_to);
    if (!line || !edit.content.new_content) return;
    line.content = edit.content.new_content;
    this.drawLine(line);
  }

  deleted(redaction) {
    const line = this.lines.get(redaction.content?.redacts);
    if (!line) return;
    line.deleted = true;
    this.drawLine(line);
  }

  // -- pages ---------------------------------------------------------------

  conversationOf(event) {
    const names = new Map([[event.sender, event.content?.speaker]]);
    (event.recipients ?? []).forEach((id, i) => names.set(id, event.content?.recipient_names?.[i]));
    let ids = [...new Set([event.sender, ...(event.recipients ?? [])])].filter((id) => id !== this.selfId).sort();
    if (!ids.length) ids = [this.selfId];
    return this.conversation(ids, ids.map((id) => names.get(id) || localpartOf(id)));
  }

  conversation(ids, names) {
    const key = `page:${ids.join(",")}`;
    let conversation = this.conversations.get(key);
    if (!conversation) {
      conversation = { key, ids, names, unread: 0 };
      this.conversations.set(key, conversation);
      this.log(key, `Pages with ${names.join(", ")}`);
      writeJson("local", this.conversationsKey,
                [...this.conversations.values()].map(({ ids: i, names: n }) => ({ ids: i, names: n })));
      this.renderPageList();
    }
    return conversation;
  }

  async loadConversation(key, conversation) {
    for (const id of conversation.ids) {
      try {
        const page = await this.api.history("page", id);
        for (const event of page.events) this.addEvent(event, { history: true });
      } catch { /* a partner that no longer exists: nothing to show */ }
    }
    this.log(key).historyLoaded = true;
  }

  /** How to name the people of a conversation on a command line: name, or name@server. */
  pageTargets(conversation) {
    return conversation.ids.map((id, i) => {
      const server = serverOf(id);
      return server === this.serverName ? conversation.names[i] : `${localpartOf(id)}@${server}`;
    }).join(" ");
  }

  receipt(receipt) {
    const line = this.lines.get(receipt.content?.relates_to);
    if (!line) return;
    line.receipts.set(receipt.content.recipient, { kind: receipt.content.kind, message: receipt.content.message });
    this.drawLine(line);
  }

  receiptNode(line) {
    const parts = [];
    for (const [recipient, { kind, message }] of line.receipts) {
      const index = (line.event.recipients ?? []).indexOf(recipient);
      const name = line.event.content?.recipient_names?.[index] || localpartOf(recipient);
      const words = { delivered: "delivered", held: "held by their server", refused: `refused: ${message || ""}`,
                      waiting: "waiting for them to connect" }[kind] ?? kind;
      parts.push(line.receipts.size > 1 ? `${name}: ${words}` : words);
    }
    const node = el("span", "receipt", parts.join("; "));
    node.dataset.receipt = [...line.receipts.values()].map((r) => r.kind).join(" ");
    return node;
  }

  // -- channels ------------------------------------------------------------

  channelList(list) {
    const current = new Set();
    for (const entry of list) {
      current.add(entry.channelId);
      const known = this.channels.get(entry.channelId) ?? { unread: 0 };
      this.channels.set(entry.channelId, { ...known, ...entry, member: true });
      this.log(`channel:${entry.channelId}`, `Channel ${entry.name}`);
    }
    for (const [id, channel] of this.channels) if (!current.has(id)) channel.member = false;
    if (this.view?.startsWith("channel:") && !current.has(this.view.slice(8))) this.setView("room");
    this.renderChannelList();
  }

  async joinChannel(event) {
    event.preventDefault();
    const name = $("channel-join-name").value.trim();
    if (!name) return;
    try {
      const answer = await this.api.joinOrCreateChannel(name);
      $("channel-join-name").value = "";
      const channelId = answer.channel.id ?? answer.channel.channelId;
      this.channels.set(channelId, { ...(this.channels.get(channelId) ?? { unread: 0 }), channelId,
                                     name: answer.channel.name, member: true });
      this.log(`channel:${channelId}`, `Channel ${answer.channel.name}`);
      this.renderChannelList();
      this.setView(`channel:${channelId}`);
      this.connection.send("channel_list", {});
    } catch (error) {
      this.notice(this.view, error.message, "error");
    }
  }

  channelWho(data) {
    const names = data.members.map((member) => `${member.title ? member.title + " " : ""}${localpartOf(member.userId)}`
                                          + (member.role !== "member" ? ` (${member.role})` : ""));
    const channel = this.channels.get(data.channelId);
    this.notice(this.keyOfReply(data.inReplyTo),
                `On ${channel?.name ?? data.channelId}: ${names.join(", ") || "nobody connected"}.`);
  }

  // -- the room: roster, presence, typing, WHO -------------------------------

  presence(data) {
    if (data.status === "offline") {
      this.members.delete(data.userId);
      this.stopTyping(data.userId);
    } else {
      this.members.set(data.userId, data);
    }
    if (data.userId === this.selfId) {
      this.away = data.status === "away";
      $("away-button").setAttribute("aria-pressed", String(this.away));
    }
    this.renderRoster();
  }

  typing(data) {
    if (data.userId === this.selfId) return;
    this.stopTyping(data.userId, false);
    if (data.typing) {
      this.typers.set(data.userId, setTimeout(() => this.stopTyping(data.userId), data.timeoutMs));
    }
    this.renderRoster();
  }

  stopTyping(userId, render = true) {
    const timer = this.typers.get(userId);
    if (timer === undefined) { if (render) this.renderRoster(); return; }
    clearTimeout(timer);
    this.typers.delete(userId);
    if (render) this.renderRoster();
  }

  renderRoster() {
    const items = [];
    for (const member of this.members.values()) {
      const item = el("li", `member status-${member.status}`);
      item.dataset.userId = member.userId;
      item.append(el("span", "member-name", member.username));
      let status = member.status;
      if (member.status === "idle") status = `idle ${duration(member.idleMs)}`;
      if (member.status === "away" && member.awayMessage) status = `away: ${member.awayMessage}`;
      item.append(el("span", "member-status", status));
      if (this.typers.has(member.userId)) {
        item.classList.add("typing");
        item.append(el("span", "member-typing", "typing…"));
      }
      items.push(item);
    }
    $("roster").replaceChildren(...items);
    $("roster-count").textContent = `(${this.members.size})`;
    const typists = [...this.typers.keys()].map((id) => this.members.get(id)?.username ?? localpartOf(id));
    $("typing-line").textContent = typists.length === 0 ? ""
      : typists.length === 1 ? `${typists[0]} is typing…` : `${typists.join(", ")} are typing…`;
  }

  who(data) {
    const key = this.keyOfReply(data.inReplyTo);
    const pad = (text, width) => text.length >= width ? `${text} ` : text.padEnd(width);
    this.notice(key, `${pad("Player Name", 20)}${pad("On For", 8)}${pad("Idle", 6)}Status`, "who");
    for (const user of data.users) {
      const status = user.status + (user.awayMessage ? `: ${user.awayMessage}` : "");
      this.notice(key, `${pad(user.username, 20)}${pad(duration(user.onForMs), 8)}${pad(duration(user.idleMs), 6)}${status}`,
                  "who");
    }
    this.notice(key, `${data.total} player${data.total === 1 ? " is" : "s are"} connected.`, "who");
  }

  // -- answers to our own frames ----------------------------------------------

  keyOfReply(messageId) {
    const key = this.replyTo.get(messageId)?.key;
    return key && this.logs.has(key) ? key : this.view;
  }

  refused(data) {
    const reply = this.replyTo.get(data.inReplyTo);
    this.replyTo.delete(data.inReplyTo);
    if (reply?.action === "typing") return; // a stale indicator: nothing to tell the player
    this.notice(reply?.key && this.logs.has(reply.key) ? reply.key : this.view, data.message, "error");
  }

  acked(data) {
    const reply = this.replyTo.get(data.inReplyTo);
    this.replyTo.delete(data.inReplyTo);
    if (!reply) return;
    if (data.offline && data.eventId) { // a page: who gets it now, who when they connect
      const line = this.lines.get(data.eventId);
      if (!line) return;
      for (const recipient of line.event.recipients ?? []) {
        if (recipient === this.selfId || line.receipts.has(recipient)) continue;
        if (data.offline.includes(recipient)) line.receipts.set(recipient, { kind: "waiting" });
        else if (serverOf(recipient) === this.serverName) line.receipts.set(recipient, { kind: "delivered" });
      }
      this.drawLine(line);
    }
    if (reply.action === "report") this.notice(reply.key, "Reported: the moderators will look at it.");
    if (reply.action === "leave") this.connection.send("channel_list", {});
  }

  gap(data) {
    this.since = null;
    this.noteSince(data.latestPosition);
    this.notice("room", "You were away too long to catch up here: the latest history is shown.");
    for (const log of this.logs.values()) { log.historyLoaded = false; log.exhausted = false; }
    if (this.room) this.loadHistory("room", {});
    for (const [key, conversation] of this.conversations) this.loadConversation(key, conversation);
  }

  notice(key, text, kind = "notice") {
    const line = el("li", `line ${kind}`);
    line.append(el("span", "text", text));
    this.log(key ?? "room").insert(line);
  }

  // -- sending ---------------------------------------------------------------

  send(type, data, reply, retry = true) {
    const messageId = this.connection.send(type, data, { retry });
    this.replyTo.set(messageId, reply);
    return messageId;
  }

  submit(event) {
    event.preventDefault();
    const input = $("input");
    const text = input.value;
    if (!text.trim()) return;
    this.remember(text);
    input.value = "";
    this.typingSentAt = 0;
    let line = text;
    if (this.view.startsWith("page:") && !text.startsWith("/")) {
      line = `page ${this.pageTargets(this.conversations.get(this.view))}=${text}`;
    } else if (this.view.startsWith("channel:") && !text.startsWith("/")) {
      line = `@chat ${this.channels.get(this.view.slice(8)).name}=${text}`;
    } else if (this.view !== "room") {
      line = text.slice(1);
    }
    const data = { line };
    if (this.room && this.view === "room") data.roomId = this.room.id;
    this.send("command", data, { key: this.view, action: "command" });
  }

  inputChanged() {
    if (this.view !== "room" || !this.room || !this.connection?.live) return;
    const typing = $("input").value.trim() !== "";
    const now = Date.now();
    if (typing && now - this.typingSentAt >= this.limits.typingRefreshMs) {
      this.typingSentAt = now;
      this.send("typing", { typing: true, roomId: this.room.id }, { action: "typing" }, false);
    } else if (!typing && this.typingSentAt) {
      this.typingSentAt = 0;
      this.send("typing", { typing: false }, { action: "typing" }, false);
    }
  }

  remember(text) {
    if (this.inputHistory[this.inputHistory.length - 1] !== text) this.inputHistory.push(text);
    this.inputHistory = this.inputHistory.slice(-HISTORY_SIZE);
    writeJson("local", HISTORY_KEY, this.inputHistory);
    this.historyIndex = -1;
  }

  inputKey(event) {
    const input = $("input");
    if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      if (!this.inputHistory.length) return;
      event.preventDefault();
      const last = this.inputHistory.length - 1;
      if (event.key === "ArrowUp") this.historyIndex = this.historyIndex < 0 ? last : Math.max(0, this.historyIndex - 1);
      else this.historyIndex = this.historyIndex < 0 || this.historyIndex >= last ? -1 : this.historyIndex + 1;
      input.value = this.historyIndex < 0 ? "" : this.inputHistory[this.historyIndex];
      input.setSelectionRange(input.value.length, input.value.length);
    } else if (event.key === "Escape") {
      input.value = "";
      this.inputChanged();
    }
  }

  // -- one message's actions: edit, delete (own), report (others') -------------

  lineAction(event) {
    const target = event.target.closest("button");
    const node = event.target.closest("li.line");
    if (!target || !node?.dataset.eventId) return;
    const line = this.lines.get(node.dataset.eventId);
    if (!line) return;
    if (target.classList.contains("actions-toggle")) return this.toggleActions(line, target);
    const action = target.dataset.action;
    if (action === "edit") this.actionForm(line, "Edit", shownContent(line.event).body ?? "", (text) =>
      this.send("edit_message", { eventId: line.event.event_id, text }, { key: line.key, action: "edit" }));
    if (action === "delete") this.confirmDelete(line);
    if (action === "report") this.actionForm(line, "Reason for the report", "", (reason) =>
      this.send("report_message", { eventId: line.event.event_id, reason }, { key: line.key, action: "report" }));
    if (action === "cancel") this.drawLine(line);
    if (action === "confirm-delete") {
      this.send("delete_message", { eventId: line.event.event_id }, { key: line.key, action: "delete" });
      this.drawLine(line);
    }
  }

  toggleActions(line, toggle) {
    const open = line.node.querySelector(".actions");
    if (open) { this.drawLine(line); return; }
    const own = line.event.sender === this.selfId;
    const bar = el("span", "actions");
    for (const [action, label] of own ? [["edit", "Edit"], ["delete", "Delete"]] : [["report", "Report"]]) {
      const button = el("button", "secondary small", label);
      button.type = "button";
      button.dataset.action = action;
      bar.append(button);
    }
    toggle.setAttribute("aria-expanded", "true");
    line.node.append(bar);
    bar.querySelector("button").focus();
  }

  confirmDelete(line) {
    line.node.querySelector(".actions")?.remove();
    const bar = el("span", "actions");
    bar.append(el("span", "", "Delete this message?"));
    for (const [action, label] of [["confirm-delete", "Delete"], ["cancel", "Cancel"]]) {
      const button = el("button", "secondary small", label);
      button.type = "button";
      button.dataset.action = action;
      bar.append(button);
    }
    line.node.append(bar);
    bar.querySelector("button").focus();
  }

  actionForm(line, label, value, done) {
    line.node.querySelector(".actions")?.remove();
    const form = el("form", "actions action-form");
    const input = el("input");
    input.value = value;
    input.setAttribute("aria-label", label);
    input.placeholder = label;
    const ok = el("button", "small", label === "Edit" ? "Save" : "Send");
    ok.type = "submit";
    const cancel = el("button", "secondary small", "Cancel");
    cancel.type = "button";
    cancel.dataset.action = "cancel";
    form.append(input, ok, cancel);
    form.addEventListener("submit", (submitted) => {
      submitted.preventDefault();
      if (!input.value.trim()) return;
      done(input.value);
      this.drawLine(line);
    });
    form.addEventListener("keydown", (key) => { if (key.key === "Escape") this.drawLine(line); });
    line.node.append(form);
    input.focus();
  }

  // -- views -------------------------------------------------------------------

  log(key, label = key) {
    let log = this.logs.get(key);
    if (!log) {
      log = new Scrollback(key, label);
      log.node.hidden = key !== this.view;
      this.logs.set(key, log);
      $("logs").append(log.node);
    }
    return log;
  }

  setView(key) {
    if (!this.logs.has(key)) key = "room";
    const changed = this.view !== key;
    this.view = key;
    for (const [k, log] of this.logs) log.node.hidden = k !== key;
    const log = this.log(key);
    let title = "Room", description = "";
    const channel = key.startsWith("channel:") ? this.channels.get(key.slice(8)) : null;
    if (key === "room" && this.room) { title = this.room.name; description = this.room.description; }
    if (key.startsWith("page:")) title = `Pages with ${this.conversations.get(key).names.join(", ")}`;
    if (channel) { title = `Channel ${channel.name}`; description = channel.topic ?? ""; }
    $("view-title").textContent = title;
    $("view-description").textContent = description;
    $("leave-button").hidden = !channel;
    $("mute-button").hidden = !channel;
    if (channel) {
      const muted = this.muted.has(channel.channelId);
      $("mute-button").textContent = muted ? "Unmute" : "Mute";
      $("mute-button").setAttribute("aria-pressed", String(muted));
    }
    $("older-button").disabled = log.exhausted;
    $("input").placeholder = key === "room" ? "\"hello  :waves  page bob=hi  +pub hi  WHO"
      : "Type to send here (:waves to pose); /WHO for a command";
    this.clearUnread(key);
    if (channel && !log.historyLoaded) this.loadHistory(key, {});
    if (changed) log.toBottom();
    for (const tab of document.querySelectorAll("[data-view]")) {
      if (tab.dataset.view === key) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    }
  }

  async loadHistory(key, { older = false }) {
    const log = this.log(key);
    let kind, id;
    if (key === "room") { kind = "room"; id = this.room?.id; }
    else if (key.startsWith("channel:")) { kind = "channel"; id = key.slice(8); }
    else { kind = "page"; id = this.conversations.get(key)?.ids[0]; }
    if (!id) return;
    log.historyLoaded = true;
    try {
      const before = older ? log.oldestEvent() ?? undefined : undefined;
      const page = await this.api.history(kind, id, { before });
      for (const event of page.events) this.addEvent(event, { history: true });
      if (older && (page.next === null || !page.events.length)) log.exhausted = true;
    } catch (error) {
      this.notice(key, error.message, "error");
    }
    if (this.view === key) $("older-button").disabled = log.exhausted;
  }

  unread(key, event) {
    const visible = this.view === key && !document.hidden;
    if (visible) return;
    if (key.startsWith("channel:")) {
      const channel = this.channels.get(key.slice(8));
      if (!channel || this.muted.has(channel.channelId) || event.type !== "vm.channel.message") return;
      channel.unread += 1;
      this.renderChannelList();
    } else if (key.startsWith("page:")) {
      const conversation = this.conversations.get(key);
      conversation.unread += 1;
      $("announcer").textContent = `New page from ${event.content?.speaker ?? "someone"}.`;
      this.renderPageList();
    }
    this.renderTitle();
  }

  clearUnread(key) {
    const conversation = this.conversations.get(key);
    if (conversation?.unread) { conversation.unread = 0; this.renderPageList(); }
    const channel = key.startsWith("channel:") ? this.channels.get(key.slice(8)) : null;
    if (channel?.unread) { channel.unread = 0; this.renderChannelList(); }
    this.renderTitle();
  }

  renderTitle() {
    let count = 0;
    for (const c of this.conversations.values()) count += c.unread;
    for (const c of this.channels.values()) count += c.member ? c.unread : 0;
    document.title = count ? `(${count}) VibeMUSE` : "VibeMUSE";
    $("nav-toggle").textContent = count ? `Menu (${count})` : "Menu";
  }

  tab(view, name, unread, extraClass = "") {
    const item = el("li");
    const button = el("button", `tab ${extraClass}`);
    button.type = "button";
    button.dataset.view = view;
    if (view === this.view) button.setAttribute("aria-current", "page");
    button.append(el("span", "tab-name", name));
    const badge = el("span", "unread", String(unread));
    badge.hidden = !unread;
    badge.setAttribute("aria-label", `${unread} unread`);
    button.append(badge);
    item.append(button);
    return item;
  }

  renderPageList() {
    const items = [...this.conversations.values()].map((c) => this.tab(c.key, c.names.join(", "), c.unread));
    $("page-list").replaceChildren(...items);
    $("no-pages").hidden = items.length > 0;
  }

  renderChannelList() {
    const items = [...this.channels.values()].filter((c) => c.member)
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((c) => this.tab(`channel:${c.channelId}`, c.name + (c.alias ? ` (+${c.alias})` : ""), c.unread,
                           this.muted.has(c.channelId) ? "muted" : ""));
    $("channel-list").replaceChildren(...items);
  }

  toggleMute() {
    const channelId = this.view.slice(8);
    if (this.muted.has(channelId)) this.muted.delete(channelId);
    else { this.muted.add(channelId); this.channels.get(channelId).unread = 0; }
    writeJson("local", this.mutedKey, [...this.muted]);
    this.renderChannelList();
    this.setView(this.view);
  }

  leaveChannel() {
    const channelId = this.view.slice(8);
    this.send("leave_channel", { channelId }, { key: this.view, action: "leave" });
  }

  toggleAway() {
    this.send("set_presence", this.away ? { status: "online" } : { status: "away" }, { key: "room", action: "presence" },
              false);
  }

  bindStaticControls() {
    $("login-form").addEventListener("submit", (event) => this.login(event));
    $("logout-button").addEventListener("click", () => this.logout());
    $("retry-button").addEventListener("click", () => this.connection?.retry());
    $("away-button").addEventListener("click", () => this.toggleAway());
    $("input-form").addEventListener("submit", (event) => this.submit(event));
    $("input").addEventListener("input", () => this.inputChanged());
    $("input").addEventListener("keydown", (event) => this.inputKey(event));
    $("older-button").addEventListener("click", () => this.loadHistory(this.view, { older: true }));
    $("mute-button").addEventListener("click", () => this.toggleMute());
    $("leave-button").addEventListener("click", () => this.leaveChannel());
    $("channel-join-form").addEventListener("submit", (event) => this.joinChannel(event));
    $("logs").addEventListener("click", (event) => this.lineAction(event));
    $("app-view").addEventListener("click", (event) => {
      const tab = event.target.closest("[data-view]");
      if (!tab) return;
      this.setView(tab.dataset.view);
      document.body.classList.remove("nav-open");
      $("nav-toggle").setAttribute("aria-expanded", "false");
      $("input").focus();
    });
    $("nav-toggle").addEventListener("click", () => {
      const open = document.body.classList.toggle("nav-open");
      $("nav-toggle").setAttribute("aria-expanded", String(open));
    });
    document.addEventListener("visibilitychange", () => { if (!document.hidden && this.view) this.clearUnread(this.view); });
  }
}
