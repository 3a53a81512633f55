// The command line: what the player types, the history on the arrow keys
// (kept in localStorage), and the typing indicator it sends (14.8): `typing:
// true` when a line is started and again every `typingRefreshMs` while it
// grows, `typing: false` when it is cleared; a line sent ends the indicator
// on the server by itself.

const HISTORY_KEY = "vibemuse.inputHistory";
const HISTORY_SIZE = 100;

function readHistory() {
  try { return JSON.parse(localStorage.getItem(HISTORY_KEY) ?? "[]"); } catch { return []; }
}

export class CommandLine {
  /** onLine(text): a line to send; onTyping(bool): tell the room (only called when it should be sent). */
  constructor(input, form, { onLine, onTyping }) {
    this.input = input;
    this.onLine = onLine;
    this.onTyping = onTyping;
    this.history = readHistory();
    this.index = -1;
    this.typingSentAt = 0;
    this.refreshMs = 3000;
    form.addEventListener("submit", (event) => { event.preventDefault(); this.submit(); });
    input.addEventListener("input", () => this.changed());
    input.addEventListener("keydown", (event) => this.key(event));
  }

  submit() {
    const text = this.input.value;
    if (!text.trim()) return;
    this.remember(text);
    this.input.value = "";
    this.typingSentAt = 0;
    this.onLine(text);
  }

  changed() {
    const typing = this.input.value.trim() !== "";
    const now = Date.now();
    if (typing && now - this.typingSentAt >= this.refreshMs) {
      if (this.onTyping(true)) this.typingSentAt = now;
    } else if (!typing && this.typingSentAt) {
      this.typingSentAt = 0;
      this.onTyping(false);
    }
  }

  remember(text) {
    if (this.history[this.history.length - 1] !== text) this.history.push(text);
    this.history = this.history.slice(-HISTORY_SIZE);
    try { localStorage.setItem(HISTORY_KEY, JSON.stringify(this.history)); } catch { /* storage off */ }
    this.index = -1;
  }

  key(event) {
    if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      if (!this.history.length) return;
      event.preventDefault();
      const last = this.history.length - 1;
      if (event.key === "ArrowUp") this.index = this.index < 0 ? last : Math.max(0, this.index - 1);
      else this.index = this.index < 0 || this.index >= last ? -1 : this.index + 1;
      this.input.value = this.index < 0 ? "" : this.history[this.index];
      this.input.setSelectionRange(this.input.value.length, this.input.value.length);
    } else if (event.key === "Escape") {
      this.input.value = "";
      this.changed();
    }
  }
}
