// The workspace's state: the conversation lists, one thread per
// conversation followed over the socket, the agent's own state, quick
// replies. Components read it and call its actions; only this module
// talks to the socket.
import { reactive } from 'vue';
import { Api } from '../shared/api.js';
import { KefuSocket, wsURL } from '../shared/socket.js';
import { insertBySeq } from '../shared/format.js';
import { getToken, session } from './session.js';
import { t } from './messages.js';

export const api = new Api(getToken);

export const desk = reactive({
  status: 'idle',
  agent: { presence: 'offline', capacity: 0, load: 0, convs: [] },
  convs: {}, // id -> conversation (REST shape)
  lists: { queued: [], mine: [], hold: [], closed: [] },
  threads: {}, // id -> thread (below)
  active: null,
  canned: [],
  insert: null, // { text }: text the side panel puts into the composer
});

let socket = null;
let poll = null;
const listeners = { notice: [] };

export function onNotice(fn) { listeners.notice.push(fn); }

function thread(id) {
  if (!desk.threads[id]) {
    desk.threads[id] = {
      messages: [], base: 0, state: '', userRead: 0, myRead: 0, typing: false,
      notes: [], events: [], summary: '', loadingOlder: false, outbox: [],
    };
  }
  return desk.threads[id];
}

export const isMe = (party) => party?.role === 'agent' && party.id === session.staff?.id;

// unread counts the customer's messages after my read pointer.
export function unread(id) {
  const th = desk.threads[id];
  if (!th) return 0;
  return th.messages.filter((m) => m.from.role === 'user' && m.seq > th.myRead).length;
}

export function start() {
  socket = new KefuSocket({ url: wsURL('/v1/ws/agent'), getToken, storage: localStorage, storageKey: `kefu.outbox.staff.${session.staff.id}` });
  socket.on('status', (s) => { desk.status = s; });
  socket.on('open', () => { refreshLists(); });
  socket.on('base', (conv, base) => { thread(conv).base = base; });
  socket.on('message', (conv, msg) => {
    const th = thread(conv);
    insertBySeq(th.messages, msg);
    if (msg.from.role === 'user') th.typing = false;
    refreshOutbox(conv);
    if (conv === desk.active) markRead(conv);
  });
  socket.on('history', (conv, page) => {
    const th = thread(conv);
    th.state = page.state;
    for (const r of page.read) {
      if (r.by.role === 'user') th.userRead = Math.max(th.userRead, r.seq);
      if (isMe(r.by)) th.myRead = Math.max(th.myRead, r.seq);
    }
    refreshOutbox(conv);
    if (conv === desk.active) markRead(conv);
  });
  socket.on('read', (f) => {
    const th = thread(f.conv);
    if (f.by.role === 'user') th.userRead = Math.max(th.userRead, f.seq);
    if (isMe(f.by)) th.myRead = Math.max(th.myRead, f.seq);
  });
  socket.on('typing', (f) => {
    if (f.from.role !== 'user') return;
    const th = thread(f.conv);
    th.typing = f.on;
    clearTimeout(th.typingTimer);
    if (f.on) th.typingTimer = setTimeout(() => { th.typing = false; }, 6000);
  });
  socket.on('state', (f) => {
    const th = thread(f.conv);
    th.state = f.state;
    if (f.summary) th.summary = f.summary;
    const c = desk.convs[f.conv];
    if (c) Object.assign(c, { state: f.state, agent_id: f.agent_id ?? '', group: f.group ?? c.group, invited: f.invited ?? [], pushedAt: Date.now() });
    placeInLists(f.conv);
    if (f.conv === desk.active) loadEvents(f.conv);
  });
  socket.on('rated', (f) => { if (desk.convs[f.conv]) desk.convs[f.conv].rating = f.rating; });
  socket.on('note', (f) => { const th = thread(f.conv); if (!th.notes.some((n) => n.id === f.note.id)) th.notes.push(f.note); });
  socket.on('agent', (f) => {
    const before = desk.agent.convs.join();
    desk.agent = { presence: f.presence, capacity: f.capacity, load: f.load, convs: f.convs ?? [] };
    if (before !== desk.agent.convs.join()) refreshLists();
  });
  socket.on('notice', (f) => {
    for (const fn of listeners.notice) fn(f);
    refreshLists();
  });
  socket.on('queued', (item) => refreshOutbox(item.conv));
  socket.on('ack', (f) => refreshOutbox(f.conv));
  socket.on('failed', (item, frame) => {
    refreshOutbox(item.conv);
    thread(item.conv).outbox.push({ ...item, failed: frame.code });
  });
  socket.on('revoked', () => { location.reload(); });
  socket.on('auth_failed', () => { location.reload(); });
  socket.start();
  // The queue changes without telling every agent; look every few seconds.
  poll = setInterval(refreshQueue, 4000);
  loadCanned();
}

export function stop() {
  clearInterval(poll);
  socket?.stop();
}

function refreshOutbox(conv) {
  const th = thread(conv);
  th.outbox = [...socket.pendingFor(conv).map((o) => ({ ...o })), ...th.outbox.filter((o) => o.failed)];
}

// A pushed state is fresher than a list read at about the same time: the
// store is written behind the conversation actor, so a list can lag a
// push by a moment.
const FRESH_MS = 10_000;
const fresh = (c) => c?.pushedAt && Date.now() - c.pushedAt < FRESH_MS;

async function fetchList(query) {
  const res = await api.get(`/v1/conversations?${query}`);
  for (const c of res.conversations) {
    const known = desk.convs[c.id];
    desk.convs[c.id] = fresh(known)
      ? { ...known, ...c, state: known.state, agent_id: known.agent_id, invited: known.invited }
      : { ...known, ...c, pushedAt: 0 };
  }
  return res.conversations.map((c) => c.id);
}

export async function refreshQueue() {
  try {
    desk.lists.queued = (await fetchList('state=QUEUED&limit=100')).filter((id) => listOf(desk.convs[id]) === 'queued');
  } catch { /* shown by the socket status */ }
}

// refreshLists reads the lists again. The agent frame's convs (what the
// agent actor says I hold) is the truth the lists must reach: the store is
// written behind the actors, so a list read at once may miss a
// conversation just assigned, and is read again shortly.
export async function refreshLists(attempt = 0) {
  try {
    const [queued, mine, invited, hold, closed] = await Promise.all([
      fetchList('state=QUEUED&limit=100'), fetchList('mine=true&state=ASSIGNED&limit=100'),
      fetchList('invited=true&state=ASSIGNED&limit=100'),
      fetchList('mine=true&state=ON_HOLD&limit=100'), fetchList('mine=true&state=CLOSED&limit=30'),
    ]);
    const lists = { queued, mine: [...mine, ...invited], hold, closed };
    for (const [name, ids] of Object.entries(lists)) desk.lists[name] = ids.filter((id) => listOf(desk.convs[id]) === name);
    for (const id of Object.keys(desk.convs)) if (fresh(desk.convs[id])) placeInLists(id);
    // Follow every conversation I serve, so its unread count stays live.
    for (const id of [...desk.lists.mine, ...desk.lists.hold]) if (!socket.convs.has(id)) socket.follow(id);
    const missing = desk.agent.convs.some((id) => !desk.lists.mine.includes(id) && !desk.lists.hold.includes(id));
    if (missing && attempt < 6) setTimeout(() => refreshLists(attempt + 1), 300 * 2 ** attempt);
  } catch { /* retried on the next change */ }
}

// listOf names the list a conversation belongs in, if any.
function listOf(c) {
  if (c.state === 'QUEUED') return 'queued';
  // A colleague invited me: I help with it from my own list.
  if (c.state === 'ASSIGNED' && c.invited?.includes(session.staff.id)) return 'mine';
  if (c.agent_id !== session.staff.id) return null;
  return { ASSIGNED: 'mine', ON_HOLD: 'hold', CLOSED: 'closed' }[c.state] ?? null;
}

function placeInLists(id) {
  const c = desk.convs[id];
  if (!c) return;
  const want = listOf(c);
  for (const [name, ids] of Object.entries(desk.lists)) {
    const has = ids.includes(id);
    if (name === want && !has) ids.unshift(id);
    if (name !== want && has) ids.splice(ids.indexOf(id), 1);
  }
}

// open shows a conversation; conv is its REST shape when it comes from
// outside the lists (a customer's past conversations).
export async function open(id, conv) {
  if (conv) desk.convs[id] = { ...desk.convs[id], ...conv };
  desk.active = id;
  const th = thread(id);
  await socket.follow(id);
  markRead(id);
  loadEvents(id);
  loadNotes(id);
  return th;
}

export function markRead(id) {
  const th = desk.threads[id];
  const last = th?.messages[th.messages.length - 1];
  if (!last || last.seq <= th.myRead || document.visibilityState !== 'visible') return;
  th.myRead = last.seq;
  socket.read(id, last.seq);
}

// loadOlder pages back through REST: seqs are gapless, so the page before
// base starts after base-50.
export async function loadOlder(id) {
  const th = thread(id);
  if (th.base <= 0 || th.loadingOlder) return;
  th.loadingOlder = true;
  try {
    const from = Math.max(0, th.base - 50);
    const page = await api.get(`/v1/conversations/${id}/messages?after_seq=${from}&limit=${th.base - from}`);
    for (const m of page.messages) insertBySeq(th.messages, m);
    th.base = from;
  } finally {
    th.loadingOlder = false;
  }
}

export async function loadEvents(id) {
  try {
    const res = await api.get(`/v1/conversations/${id}/events`);
    const th = thread(id);
    th.events = res.events;
    const esc = [...res.events].reverse().find((e) => e.type === 'escalated' && e.note);
    if (esc) th.summary = esc.note;
  } catch { /* not allowed to see them: no summary */ }
}

export async function loadNotes(id) {
  try { thread(id).notes = (await api.get(`/v1/conversations/${id}/notes`)).notes; } catch { /* as above */ }
}

export function insertText(text) { desk.insert = { text }; }

export function sendText(id, text) { socket.sendText(id, text); }
export function retry(id, item) {
  const th = thread(id);
  th.outbox = th.outbox.filter((o) => o.client_msg_id !== item.client_msg_id);
  socket.retry({ conv: item.conv, client_msg_id: item.client_msg_id, body: item.body, at: item.at });
}
export function typing(id, on) { socket.typing(id, on); }
export function setPresence(status) { socket.frame({ type: 'presence', status }); desk.agent.presence = status; }

// op runs a lifecycle operation over the socket and refreshes the lists.
export async function op(type, conv, fields = {}) {
  const res = await socket.op(type, { conv, ...fields });
  const c = desk.convs[conv];
  if (res.state && c) Object.assign(c, { state: res.state, pushedAt: Date.now() }, type === 'accept' ? { agent_id: session.staff.id } : {});
  await refreshLists();
  return res;
}

export async function addNote(conv, text) {
  const res = await socket.op('note', { conv, text });
  const th = thread(conv);
  if (res.note && !th.notes.some((n) => n.id === res.note.id)) th.notes.push(res.note);
}

export async function loadCanned() {
  try { desk.canned = (await api.get('/v1/canned')).canned ?? []; } catch { desk.canned = []; }
}

export function alertText(f) {
  switch (f.kind) {
    case 'assigned': return t('newAssignment');
    case 'transferred': return f.conv && desk.lists.mine.includes(f.conv) ? t('transferredToYou') : t('takenAway');
    case 'invited': return t('invitedYou');
    case 'sla_warning': return t('slaWarning');
    case 'no_reply': return t('noReplyNotice');
    case 'hold_expired': return t('holdExpired');
    default: return f.text || f.kind;
  }
}
