// The sidebar's lists: one tab per view (the room, each page conversation,
// each channel) with its unread count; the current view is aria-current.

import { el } from "./render.js";

export function tab(view, name, unread, current, extraClass = "") {
  const item = el("li");
  const button = el("button", `tab ${extraClass}`);
  button.type = "button";
  button.dataset.view = view;
  if (current) button.setAttribute("aria-current", "page");
  button.append(el("span", "tab-name", name));
  const badge = el("span", "unread", String(unread));
  badge.hidden = !unread;
  badge.setAttribute("aria-label", `${unread} unread`);
  button.append(badge);
  item.append(button);
  return item;
}

/** Tabs of the page conversations, in the order they started. */
export function pageTabs(conversations, view) {
  return [...conversations.values()].map((c) => tab(c.key, c.names.join(", "), c.unread, c.key === view));
}

/** Tabs of the channels one is on, by name; a muted one is marked. */
export function channelTabs(channels, muted, view) {
  return [...channels.values()].filter((c) => c.member)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((c) => {
      const key = `channel:${c.channelId}`;
      return tab(key, c.name + (c.alias ? ` (+${c.alias})` : ""), c.unread, key === view,
                 muted.has(c.channelId) ? "muted" : "");
    });
}
