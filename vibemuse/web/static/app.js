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
import { CommandLine } from "./commandline.js";
import { LineActions } from "./lineactions.js";
import { LoginScreen, SESSION_KEY } from "./login.js";
import { el, eventNodes, fill, isDeleted, isMessage, shownContent } from "./render.js";
import { localpartOf, pageTargets, partnersOf, receiptText, serverOf } from "./pages.js";
import { Roster, whoLines } from "./roster.js";
import { channelTabs, pageTabs } from "./sidebar.js";
import { forget, readJson, writeJson } from "./storage.js";

const $ = (id) => document.getElementById(id);

const STATUS_TEXT = {
  connecting: "Connecting…",
  online: "Online",
  reconnecting: "Reconnecting…",
  offline: "Offline: waiting for the network…",
  stopped: "Disconnected",
};

export class App {
  constructor() {
    this.api = new Api();
    this.login = new LoginScreen(this.api, (session) => this.start(session));
    this.roster = new Roster($("roster"), $("roster-count"), $("typing-line"));
    this.commandLine = new CommandLine($("input"), $("input-form"), {
      onLine: (text) => this.line(text),
      onTyping: (typing) => this.typing(typing),
    });
    this.bindStaticControls();
  }

  boot() {
    const session = readJson("local", SESSION_KEY, null);
    if (session?.accessToken && (!session.expiresAt || Date.parse(session.expiresAt) > Date.now())) this.start(session);
    else this.showLogin();
  }

  // -- logging in and out ------------------------------------------------

  showLogin(message = "") {
    for (const id of ["logs", "page-list", "channel-list", "roster"]) $(id).replaceChildren();
    this.connectionState("connecting");
    this.login.show(message);
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
    this.roster.replace([]);
    this.actions = new LineActions({
      selfId: this.selfId,
      send: (type, data, line) => this.send(type, data, { key: line.key, action: type }),
      redraw: (line) => this.drawLine(line),
    });
    this.conversations = new Map(); // conversation key -> {ids, names, unread}
    this.channels = new Map(); // channel id -> {channelId, name, role, unread}
    this.room = null;
    this.limits = { typingTimeoutMs: 6000, typingRefreshMs: 3000 };
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
    forget("local", SESSION_KEY);
    forget("session", this.sinceKey);
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
        this.commandLine.refreshMs = this.limits.typingRefreshMs;
        this.session.user = data.user;
        $("me").textContent = data.user.username;
        this.connection.send("channel_list", {});
        if (!this.welcomed) {
          this.welcomed = true;
          for (const [key, conversation] of this.conversations) this.loadConversation(key, conversation);
        }
        break;
      case "roster": this.rosterFrame(data); break;
      case "message": case "system_message": case "channel_message":
        this.addEvent(data.event, { live: true });
        break;
      case "channel_notice":
        this.addEvent(data.event, { live: true });
        if (data.event.content?.target === this.selfId) this.connection.send("channel_list", {});
        break;
      case "user_joined":
        this.addEvent(data.event, { live: true });
        this.roster.arrived(data.user);
        break;
      case "user_left":
        this.addEvent(data.event, { live: true });
        this.roster.left(data.event.sender);
        break;
      case "page_receipt": case "message_edited": case "message_deleted":
        this.addEvent(data.event, { live: true });
        break;
      case "presence": this.presence(data); break;
      case "typing": if (data.userId !== this.selfId) this.roster.typing(data); break;
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

  rosterFrame(data) {
    const moved = this.room && this.room.id !== data.room.id;
    this.room = data.room;
    if (moved) {
      for (const [id, line] of this.lines) if (line.key === "room") this.lines.delete(id);
      this.log("room").clear();
    }
    this.roster.replace(data.members);
    for (const event of data.recent) this.addEvent(event, { live: false });
    if (this.since === null && data.recent.length) {
      this.noteSince(Math.max(...data.recent.map((event) => event.unsigned?.stream_position ?? 0)));
    }
    $("room-tab-name").textContent = data.room.name;
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
    if (event.type === "vm.room.message" || event.type === "vm.page") this.roster.stopTyping(event.sender);
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
    const { ids, names } = partnersOf(event, this.selfId);
    return this.conversation(ids, names);
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

  receipt(receipt) {
    const line = this.lines.get(receipt.content?.relates_to);
    if (!line) return;
    line.receipts.set(receipt.content.recipient, { kind: receipt.content.kind, message: receipt.content.message });
    this.drawLine(line);
  }

  receiptNode(line) {
    const node = el("span", "receipt", receiptText(line.event, line.receipts));
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

  // -- the room: presence, typing, WHO ----------------------------------------

  presence(data) {
    this.roster.presence(data);
    if (data.userId === this.selfId) {
      this.away = data.status === "away";
      $("away-button").setAttribute("aria-pressed", String(this.away));
    }
  }

  who(data) {
    const key = this.keyOfReply(data.inReplyTo);
    for (const line of whoLines(data)) this.notice(key, line, "who");
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
    if (reply.action === "report_message") this.notice(reply.key, "Reported: the moderators will look at it.");
    if (reply.action === "leave") this.connection.send("channel_list", {});
  }

  gap(data) {
    this.since = null;
    this.noteSince(data.latestPosition);
    this.notice("room", "You were away too long to catch up here: the latest history is shown.");
    for (const log of this.logs.values()) { log.historyLoaded = false; log.exhausted = false; }
    if (this.room) this.loadHistory("room", {});
    if (this.view.startsWith("channel:")) this.loadHistory(this.view, {});
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

  /** A line from the command line: a MUSH command, or in a conversation or channel a message to it. */
  line(text) {
    let line = text;
    if (this.view.startsWith("page:") && !text.startsWith("/")) {
      line = `page ${pageTargets(this.conversations.get(this.view), this.serverName)}=${text}`;
    } else if (this.view.startsWith("channel:") && !text.startsWith("/")) {
      line = `@chat ${this.channels.get(this.view.slice(8)).name}=${text}`;
    } else if (this.view !== "room") {
      line = text.slice(1);
    }
    const data = { line };
    if (this.room && this.view === "room") data.roomId = this.room.id;
    this.send("command", data, { key: this.view, action: "command" });
  }

  /** Tell the room whether the player is typing; false if it cannot be said now. */
  typing(typing) {
    if (this.view !== "room" || !this.room || !this.connection?.live) return false;
    const data = typing ? { typing, roomId: this.room.id } : { typing };
    this.send("typing", data, { action: "typing" }, false);
    return true;
  }

  lineAction(event) {
    const target = event.target.closest("button");
    const node = event.target.closest("li.line");
    const line = node?.dataset.eventId ? this.lines.get(node.dataset.eventId) : null;
    if (target && line) this.actions.handle(line, target);
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
    if (!id || log.loading) return;  // one read at a time: "older" counts from what the first one shows
    log.historyLoaded = true;
    log.loading = true;
    if (this.view === key) $("older-button").disabled = true;
    try {
      const before = older ? log.oldestEvent() ?? undefined : undefined;
      const page = await this.api.history(kind, id, { before });
      for (const event of page.events) this.addEvent(event, { history: true });
      if (older && (page.next === null || !page.events.length)) log.exhausted = true;
    } catch (error) {
      this.notice(key, error.message, "error");
    } finally {
      log.loading = false;
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

  renderPageList() {
    const items = pageTabs(this.conversations, this.view);
    $("page-list").replaceChildren(...items);
    $("no-pages").hidden = items.length > 0;
  }

  renderChannelList() {
    $("channel-list").replaceChildren(...channelTabs(this.channels, this.muted, this.view));
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
    $("logout-button").addEventListener("click", () => this.logout());
    $("retry-button").addEventListener("click", () => this.connection?.retry());
    $("away-button").addEventListener("click", () => this.toggleAway());
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
