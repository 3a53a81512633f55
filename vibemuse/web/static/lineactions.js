// One message's actions (protocol.md 17): edit or delete one's own, report
// someone else's. A `⋯` button on the line opens a small bar of buttons
// in place; edit and report open a field; everything works by keyboard
// (Enter to act, Escape to close) and hands the frame to `send`.

import { el, shownContent } from "./render.js";

function button(label, action, className = "secondary small") {
  const node = el("button", className, label);
  node.type = "button";
  if (action) node.dataset.action = action;
  return node;
}

export class LineActions {
  /** selfId: the user; send(type, data, line): send a frame about a line; redraw(line): draw it afresh. */
  constructor({ selfId, send, redraw }) {
    this.selfId = selfId;
    this.send = send;
    this.redraw = redraw;
  }

  /** A click (or Enter) on a button of the line. */
  handle(line, target) {
    const eventId = line.event.event_id;
    const action = target.dataset.action;
    if (target.classList.contains("actions-toggle")) this.toggle(line, target);
    else if (action === "edit") {
      this.form(line, "Edit", shownContent(line.event).body ?? "", (text) => this.send("edit_message", { eventId, text }, line));
    } else if (action === "delete") this.confirmDelete(line);
    else if (action === "report") {
      this.form(line, "Reason for the report", "", (reason) => this.send("report_message", { eventId, reason }, line));
    } else if (action === "cancel") this.redraw(line);
    else if (action === "confirm-delete") {
      this.send("delete_message", { eventId }, line);
      this.redraw(line);
    }
  }

  toggle(line, toggle) {
    if (line.node.querySelector(".actions")) { this.redraw(line); return; }
    const own = line.event.sender === this.selfId;
    const bar = el("span", "actions");
    bar.append(...(own ? [button("Edit", "edit"), button("Delete", "delete")] : [button("Report", "report")]));
    toggle.setAttribute("aria-expanded", "true");
    line.node.append(bar);
    bar.querySelector("button").focus();
  }

  confirmDelete(line) {
    line.node.querySelector(".actions")?.remove();
    const bar = el("span", "actions");
    bar.append(el("span", "", "Delete this message?"), button("Delete", "confirm-delete"), button("Cancel", "cancel"));
    line.node.append(bar);
    bar.querySelector("button").focus();
  }

  form(line, label, value, done) {
    line.node.querySelector(".actions")?.remove();
    const form = el("form", "actions action-form");
    const input = el("input");
    input.value = value;
    input.setAttribute("aria-label", label);
    input.placeholder = label;
    const ok = button(label === "Edit" ? "Save" : "Send", null, "small");
    ok.type = "submit";
    form.append(input, ok, button("Cancel", "cancel"));
    form.addEventListener("submit", (submitted) => {
      submitted.preventDefault();
      if (!input.value.trim()) return;
      done(input.value);
      this.redraw(line);
    });
    form.addEventListener("keydown", (key) => { if (key.key === "Escape") this.redraw(line); });
    line.node.append(form);
    input.focus();
  }
}
