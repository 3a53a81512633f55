// Pages (protocol.md 15): who a page is between, how to name them on a
// command line, and what became of a page one sent (its receipts).

export function serverOf(userId) { return userId.slice(userId.indexOf(":") + 1); }
export function localpartOf(userId) { return userId.slice(1, userId.indexOf(":")); }

/**
 * The people of a page other than `selfId` (sorted ids, and their names as
 * the page gave them): a page belongs to the conversation with exactly them.
 */
export function partnersOf(event, selfId) {
  const names = new Map([[event.sender, event.content?.speaker]]);
  (event.recipients ?? []).forEach((id, i) => names.set(id, event.content?.recipient_names?.[i]));
  let ids = [...new Set([event.sender, ...(event.recipients ?? [])])].filter((id) => id !== selfId).sort();
  if (!ids.length) ids = [selfId];
  return { ids, names: ids.map((id) => names.get(id) || localpartOf(id)) };
}

/** The recipients of a conversation on a command line: the name, or name@server for another server's user. */
export function pageTargets({ ids, names }, serverName) {
  return ids.map((id, i) => (serverOf(id) === serverName ? names[i] : `${localpartOf(id)}@${serverOf(id)}`)).join(" ");
}

const RECEIPT_WORDS = { delivered: "delivered", held: "held by their server", waiting: "waiting for them to connect" };

/** The words for a page's receipts (recipient id -> {kind, message}): "delivered", "Bob: delivered; ...". */
export function receiptText(event, receipts) {
  const parts = [];
  for (const [recipient, { kind, message }] of receipts) {
    const index = (event.recipients ?? []).indexOf(recipient);
    const name = event.content?.recipient_names?.[index] || localpartOf(recipient);
    const words = kind === "refused" ? `refused: ${message || ""}` : RECEIPT_WORDS[kind] ?? kind;
    parts.push(receipts.size > 1 ? `${name}: ${words}` : words);
  }
  return parts.join("; ");
}
