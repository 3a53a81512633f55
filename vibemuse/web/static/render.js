// Turning events into DOM nodes. Every text a player wrote reaches the page
// through textContent (createTextNode): never through innerHTML, so no text
// can become markup or script. Styles come from the server's spans
// (protocol.md 14.5) as CSS classes, and hex colours as CSSOM properties.

const COLOURS = new Set(["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"]);
const HEX = /^#[0-9a-f]{6}$/;

function applyColour(node, which, value) {
  if (COLOURS.has(value)) node.classList.add(`${which}-${value}`);
  else if (HEX.test(value)) node.style[which === "fg" ? "color" : "backgroundColor"] = value;
}

/** One span of text with its style: a <span> whose only content is a text node. */
export function styledSpan(text, style) {
  const node = document.createElement("span");
  node.textContent = text;
  if (!style) return node;
  let fg = style.fg, bg = style.bg;
  if (style.inverse) {
    [fg, bg] = [bg, fg];
    if (!fg) node.classList.add("fg-inverse");
    if (!bg) node.classList.add("bg-inverse");
  }
  if (fg) applyColour(node, "fg", fg);
  if (bg) applyColour(node, "bg", bg);
  for (const flag of ["bold", "underline", "blink"]) if (style[flag]) node.classList.add(`m-${flag}`);
  return node;
}

/** Nodes for a list of spans ([{text, style?}]). */
export function spanNodes(spans) {
  return spans.map((span) => styledSpan(String(span.text ?? ""), span.style));
}

function suffixOfSelf(event, content) {
  if (event.type === "vm.page") return content.style === "say" ? "'." : "";
  const sayStyle = content.kind === "say" || (content.kind === "ooc" && content.style === "say");
  return sayStyle ? "\"" : "";
}

/** The speaker's own line with the message's styles: prefix + spans + suffix (14.3, 15.3). */
function selfNodes(event, content) {
  const line = content.rendered_self;
  if (!content.spans) return [document.createTextNode(line)];
  const suffix = suffixOfSelf(event, content);
  const tail = content.body + suffix;
  if (!line.endsWith(tail)) return [document.createTextNode(line)];
  const prefix = line.slice(0, line.length - tail.length);
  return [document.createTextNode(prefix), ...spanNodes(content.spans), document.createTextNode(suffix)];
}

/** The content to show for an event: the latest edit's, when history says it was edited. */
export function shownContent(event) {
  return event.unsigned?.edited?.content ?? event.content ?? {};
}

/** True if the event is a message its author may edit or delete (17.3). */
export function isMessage(event) {
  return event.type === "vm.room.message" || event.type === "vm.channel.message" || event.type === "vm.page";
}

/** True if the event was redacted (deleted): its text is gone. */
export function isDeleted(event) {
  const content = event.content ?? {};
  return isMessage(event) && typeof content.rendered !== "string";
}

/** The DOM nodes of one event's line, as the user `selfId` sees it. */
export function eventNodes(event, selfId, content = shownContent(event)) {
  if (isDeleted(event) || typeof content.rendered !== "string") {
    return [document.createTextNode(isMessage(event) ? "(message deleted)" : "")];
  }
  const own = event.sender === selfId && typeof content.rendered_self === "string";
  if (own) return selfNodes(event, content);
  if (Array.isArray(content.rendered_spans)) return spanNodes(content.rendered_spans);
  return [document.createTextNode(content.rendered)];
}

/** Fill `node` with the given children (text nodes or elements), replacing what it held. */
export function fill(node, children) {
  node.replaceChildren(...children);
  return node;
}

/** A small element with text: el("li", "line", "hello"). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const UNITS = [[86400000, "d"], [3600000, "h"], [60000, "m"], [1000, "s"]];

/** A MUSH-style duration: 3h, 12m, 40s. */
export function duration(ms) {
  for (const [size, unit] of UNITS) if (ms >= size) return `${Math.floor(ms / size)}${unit}`;
  return "0s";
}
