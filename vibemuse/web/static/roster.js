// Who is in the room: presence and typing (protocol.md 14.6, 14.8).
//
// The `roster` frame replaces the members; `presence`, `user_joined` and
// `user_left` change them. A typing indicator starts with `typing: true`
// and ends with `typing: false`, a message or departure of the typist, or
// by itself `timeoutMs` after the last `typing: true`. Idle times grow
// between frames: each is the snapshot's `idleMs` plus the time since it came.

import { duration, el } from "./render.js";

export class Roster {
  constructor(list, count, typingLine) {
    this.list = list;
    this.count = count;
    this.typingLine = typingLine;
    this.members = new Map(); // user id -> presence object
    this.typers = new Map(); // user id -> timer that ends the indicator
    setInterval(() => { if ([...this.members.values()].some((m) => m.status === "idle")) this.render(); }, 30000);
  }

  /** A presence object, stamped with when it came (so its idle time can grow). */
  static stamped(member) { return { ...member, seenAt: Date.now() }; }

  replace(members) {
    this.members = new Map(members.map((member) => [member.userId, Roster.stamped(member)]));
    for (const timer of this.typers.values()) clearTimeout(timer);
    this.typers.clear();
    this.render();
  }

  arrived(user) {
    if (!this.members.has(user.id)) {
      this.members.set(user.id, Roster.stamped({ userId: user.id, username: user.username, status: "online",
                                                onForMs: 0, idleMs: 0 }));
    }
    this.render();
  }

  left(userId) {
    this.members.delete(userId);
    this.stopTyping(userId);
  }

  presence(data) {
    if (data.status === "offline") this.left(data.userId);
    else this.members.set(data.userId, Roster.stamped(data));
    this.render();
  }

  typing(data) {
    this.stopTyping(data.userId, false);
    if (data.typing) this.typers.set(data.userId, setTimeout(() => this.stopTyping(data.userId), data.timeoutMs));
    this.render();
  }

  stopTyping(userId, render = true) {
    clearTimeout(this.typers.get(userId));
    this.typers.delete(userId);
    if (render) this.render();
  }

  nameOf(userId) {
    return this.members.get(userId)?.username ?? userId.slice(1, userId.indexOf(":"));
  }

  render() {
    const items = [];
    for (const member of this.members.values()) {
      const item = el("li", `member status-${member.status}`);
      item.dataset.userId = member.userId;
      item.append(el("span", "member-name", member.username));
      let status = member.status;
      if (member.status === "idle") status = `idle ${duration(member.idleMs + Date.now() - member.seenAt)}`;
      if (member.status === "away" && member.awayMessage) status = `away: ${member.awayMessage}`;
      item.append(el("span", "member-status", status));
      if (this.typers.has(member.userId)) {
        item.classList.add("typing");
        item.append(el("span", "member-typing", "typing…"));
      }
      items.push(item);
    }
    this.list.replaceChildren(...items);
    this.count.textContent = `(${this.members.size})`;
    const typists = [...this.typers.keys()].map((id) => this.nameOf(id));
    this.typingLine.textContent = typists.length === 0 ? ""
      : typists.length === 1 ? `${typists[0]} is typing…` : `${typists.join(", ")} are typing…`;
  }
}

/** The lines of a `who` answer, as a MUSH prints them. */
export function whoLines(data) {
  const pad = (text, width) => (text.length >= width ? `${text} ` : text.padEnd(width));
  const lines = [`${pad("Player Name", 20)}${pad("On For", 8)}${pad("Idle", 6)}Status`];
  for (const user of data.users) {
    const status = user.status + (user.awayMessage ? `: ${user.awayMessage}` : "");
    lines.push(`${pad(user.username, 20)}${pad(duration(user.onForMs), 8)}${pad(duration(user.idleMs), 6)}${status}`);
  }
  lines.push(`${data.total} player${data.total === 1 ? " is" : "s are"} connected.`);
  return lines;
}
