// One scrollback: an ordered list of lines kept in stream order.
//
// Lines of events carry their stream position (data-pos) and go in at their
// place, so a replayed or back-filled event lands where it belongs; lines
// without an event (notices, errors, WHO) go at the end, at the position of
// the newest line then. The view follows new lines only while the reader is
// at the bottom.

import { el } from "./render.js";

export class Scrollback {
  constructor(key, label) {
    this.key = key;
    this.node = el("ol", "log");
    this.node.setAttribute("role", "log");
    this.node.setAttribute("aria-label", label);
    this.node.tabIndex = 0;
    this.node.dataset.log = key;
    this.exhausted = false; // no older history to load
    this.historyLoaded = false;
  }

  newest() {
    const last = this.node.lastElementChild;
    return last ? Number(last.dataset.pos) : 0;
  }

  /** The oldest stream position of an event line here, or null. */
  oldestEvent() {
    for (const line of this.node.children) if (line.dataset.eventId) return Number(line.dataset.pos);
    return null;
  }

  /** Put a line in at stream position `position` (null: at the end). */
  insert(line, position = null) {
    const follow = this.atBottom();
    const pos = position === null ? this.newest() : position;
    line.dataset.pos = String(pos);
    let after = this.node.lastElementChild;
    while (after && Number(after.dataset.pos) > pos) after = after.previousElementSibling;
    if (after) after.after(line);
    else this.node.prepend(line);
    if (follow) this.toBottom();
  }

  atBottom() {
    const box = this.node.parentElement;
    return !box || box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  }

  toBottom() {
    const box = this.node.parentElement;
    if (box) box.scrollTop = box.scrollHeight;
  }

  clear() {
    this.node.replaceChildren();
    this.exhausted = false;
    this.historyLoaded = false;
  }
}
