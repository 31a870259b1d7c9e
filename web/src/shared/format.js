// Display helpers shared by both UIs.
export function clock(ts) {
  const d = new Date(ts);
  const now = new Date();
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });
  if (d.toDateString() === now.toDateString()) return hm;
  return `${d.getMonth() + 1}/${d.getDate()} ${hm}`;
}

// duration renders milliseconds as 45s, 3m, 2h5m.
export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
}

// bodyText is the one-line text of a message body of any type.
export function bodyText(body) {
  if (!body) return '';
  if (body.type === 'text' || body.type === 'system' || body.type === 'quick_reply') return body.text ?? '';
  return `[${body.type}]`;
}

// insertBySeq puts msg into list (ascending by seq) unless its seq is there
// already; it reports whether it did.
export function insertBySeq(list, msg) {
  let i = list.length;
  while (i > 0 && list[i - 1].seq > msg.seq) i--;
  if (list[i - 1]?.seq === msg.seq) return false;
  list.splice(i, 0, msg);
  return true;
}
