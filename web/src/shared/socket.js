// KefuSocket is the browser side of Kefu's WebSocket protocol
// (docs/protocol.md), shared by the agent workspace and the chat widget.
// It signs in with hello, follows conversations with exact resume, keeps
// unacknowledged sends in an outbox that is resent after every reconnect
// (same client_msg_id, so the server stores each once), and reconnects by
// itself with backoff.
import { Emitter } from './emitter.js';

const TRANSIENT = new Set(['rate_limited', 'unavailable', 'internal']);
const PAGE = 200;

export class KefuSocket extends Emitter {
  // opts: url (ws://…/v1/ws/user or /agent), getToken(force) → token,
  // storage (a Storage, e.g. localStorage, for the outbox) and storageKey.
  constructor({ url, getToken, storage = null, storageKey = 'kefu.outbox' }) {
    super();
    this.url = url;
    this.getToken = getToken;
    this.storage = storage;
    this.storageKey = storageKey;
    this.ws = null;
    this.status = 'idle'; // idle | connecting | open | reconnecting | stopped
    this.you = null;
    this.convs = new Map(); // conv -> { lastSeq, base, seen:Set, catchingUp }
    this.pending = new Map(); // request id -> { resolve, reject, timer }
    this.reads = new Map(); // conv -> read seq waiting to be reported
    this.readsSent = new Map(); // conv -> the last read seq reported
    this.outbox = this.loadOutbox();
    this.attempt = 0;
    this.nextId = 1;
    this.retryTimer = null;
    this.heartbeat = null;
    this.forceToken = false;
    this.onOnline = () => { if (this.status === 'reconnecting') this.reconnectNow(); };
    this.onVisible = () => {
      if (document.visibilityState === 'visible' && this.status === 'reconnecting') this.reconnectNow();
    };
  }

  start() {
    if (this.status !== 'idle' && this.status !== 'stopped') return;
    window.addEventListener('online', this.onOnline);
    document.addEventListener('visibilitychange', this.onVisible);
    this.connect();
  }

  stop() {
    this.setStatus('stopped');
    window.removeEventListener('online', this.onOnline);
    document.removeEventListener('visibilitychange', this.onVisible);
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeat);
    this.failPending('stopped');
    if (this.ws) { this.ws.onclose = null; this.ws.close(1000); this.ws = null; }
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.emit('status', status);
  }

  async connect() {
    this.setStatus(this.attempt === 0 ? 'connecting' : 'reconnecting');
    let token;
    try {
      token = await this.getToken(this.forceToken);
      this.forceToken = false;
    } catch (err) {
      if (err?.fatal) { this.emit('auth_failed', err); this.stop(); return; }
      this.scheduleReconnect();
      return;
    }
    if (this.status === 'stopped') return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', v: 1, token }));
    ws.onmessage = (ev) => {
      let frame;
      try { frame = JSON.parse(ev.data); } catch { return; }
      this.handle(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.heartbeat);
      this.failPending('disconnected');
      if (this.status === 'stopped') return;
      if (ev.code === 4003) { this.emit('revoked'); this.stop(); return; }
      if (ev.code === 4001) this.forceToken = true;
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    this.setStatus('reconnecting');
    this.attempt++;
    // Exponential backoff with full jitter, capped: many clients of a
    // restarted server do not come back all in the same instant.
    const cap = Math.min(10000, 500 * 2 ** Math.min(this.attempt - 1, 5));
    const delay = 250 + Math.random() * cap;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    clearTimeout(this.retryTimer);
    this.connect();
  }

  send_(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // request sends a frame with an id and resolves with the answer that
  // echoes it (history, done, pong) or rejects with its error frame.
  request(frame, timeoutMs = 15000) {
    const id = `r${this.nextId++}`;
    return new Promise((resolve, reject) => {
      if (!this.send_({ ...frame, id })) { reject(Object.assign(new Error('not connected'), { code: 'disconnected' })); return; }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(Object.assign(new Error('no answer'), { code: 'timeout' }));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  failPending(code) {
    for (const [, p] of this.pending) { clearTimeout(p.timer); p.reject(Object.assign(new Error(code), { code })); }
    this.pending.clear();
  }

  async onWelcome(frame) {
    this.you = frame.you;
    this.attempt = 0;
    this.setStatus('open');
    clearInterval(this.heartbeat);
    // A ping every 20 s finds a connection that died without a close
    // (a sleeping laptop, a lost network) sooner than the browser does.
    this.heartbeat = setInterval(() => {
      this.request({ type: 'ping' }, 10000).catch((err) => {
        if (err.code === 'timeout' && this.ws) this.ws.close(4000, 'no pong');
      });
    }, 20000);
    this.emit('open', frame);
    for (const conv of this.convs.keys()) this.catchUp(conv);
    this.flushOutbox();
  }

  // follow starts receiving a conversation: the newest `tail` messages
  // first (older ones can be paged with REST), then live pushes. It
  // resolves with the last history page.
  follow(conv, { tail = 50 } = {}) {
    if (!this.convs.has(conv)) this.convs.set(conv, { lastSeq: -1, base: 0, seen: new Set(), catchingUp: null, tail });
    return this.catchUp(conv);
  }

  unfollow(conv) {
    this.convs.delete(conv);
    this.send_({ type: 'leave', conv });
  }

  // catchUp pages history from the last seq received until the server
  // says there is no more; live pushes start after the last page.
  catchUp(conv) {
    const st = this.convs.get(conv);
    if (!st || this.status !== 'open') return Promise.resolve(null);
    if (st.catchingUp) return st.catchingUp;
    st.catchingUp = (async () => {
      try {
        if (st.lastSeq < 0) {
          // First visit: learn the newest seq, then start tail messages back.
          const probe = await this.request({ type: 'resume', conv, last_seq: 0, limit: 1 });
          st.base = Math.max(0, probe.last_seq - st.tail);
          st.lastSeq = st.base;
          this.emit('base', conv, st.base);
        }
        let page;
        do {
          page = await this.request({ type: 'resume', conv, last_seq: st.lastSeq, limit: PAGE });
          for (const m of page.messages) this.deliver(conv, m);
        } while (page.more && this.convs.get(conv) === st);
        this.emit('history', conv, page);
        return page;
      } catch (err) {
        if (err.code === 'seq_ahead') { st.lastSeq = -1; st.seen.clear(); }
        if (err.code !== 'disconnected' && err.code !== 'stopped') this.emit('error', err, conv);
        return null;
      } finally {
        st.catchingUp = null;
      }
    })();
    return st.catchingUp;
  }

  // deliver hands each message to the UI once, and keeps lastSeq at the
  // highest seq received without a gap.
  deliver(conv, msg) {
    const st = this.convs.get(conv);
    if (!st || msg.seq <= st.base || st.seen.has(msg.seq)) return;
    st.seen.add(msg.seq);
    while (st.seen.has(st.lastSeq + 1)) st.lastSeq++;
    this.emit('message', conv, msg);
    if (msg.seq > st.lastSeq + 1 && !st.catchingUp) this.catchUp(conv); // a gap: fetch what is missing
  }

  handle(frame) {
    if (frame.id && this.pending.has(frame.id)) {
      const p = this.pending.get(frame.id);
      this.pending.delete(frame.id);
      clearTimeout(p.timer);
      if (frame.type === 'error') p.reject(Object.assign(new Error(frame.message), { code: frame.code, frame }));
      else p.resolve(frame);
      return;
    }
    switch (frame.type) {
      case 'welcome': this.onWelcome(frame); break;
      case 'message': this.deliver(frame.conv, frame.msg); break;
      case 'ack': this.onAck(frame); break;
      case 'error': this.onError(frame); break;
      default: this.emit(frame.type, frame);
    }
  }

  onAck(frame) {
    const i = this.outbox.findIndex((o) => o.client_msg_id === frame.client_msg_id && o.conv === frame.conv);
    const item = i >= 0 ? this.outbox.splice(i, 1)[0] : null;
    this.saveOutbox();
    this.emit('ack', frame);
    if (item) this.deliver(frame.conv, { conv: frame.conv, seq: frame.seq, client_msg_id: frame.client_msg_id, from: this.you, body: item.body, ts: frame.ts });
  }

  onError(frame) {
    if (frame.client_msg_id) {
      const item = this.outbox.find((o) => o.client_msg_id === frame.client_msg_id);
      if (item && TRANSIENT.has(frame.code)) {
        // Dropped, not refused: resend after a pause.
        setTimeout(() => this.sendItem(item), 1000 + Math.random() * 1000);
        return;
      }
      if (item) {
        item.failed = frame.code;
        this.outbox = this.outbox.filter((o) => o !== item);
        this.saveOutbox();
        this.emit('failed', item, frame);
        return;
      }
    }
    this.emit('error', Object.assign(new Error(frame.message), { code: frame.code, frame }), frame.conv);
  }

  // sendText queues a text message and returns its outbox item.
  sendText(conv, text) {
    const item = { conv, client_msg_id: newClientMsgId(), body: { type: 'text', text }, at: Date.now() };
    this.outbox.push(item);
    this.saveOutbox();
    this.emit('queued', item);
    this.sendItem(item);
    return item;
  }

  retry(item) {
    item.failed = null;
    this.outbox.push(item);
    this.saveOutbox();
    this.emit('queued', item);
    this.sendItem(item);
  }

  sendItem(item) {
    if (!this.outbox.includes(item)) return;
    this.send_({ type: 'send', conv: item.conv, client_msg_id: item.client_msg_id, body: item.body });
  }

  flushOutbox() {
    for (const item of this.outbox) this.sendItem(item);
  }

  pendingFor(conv) { return this.outbox.filter((o) => o.conv === conv); }

  loadOutbox() {
    if (!this.storage) return [];
    try { return JSON.parse(this.storage.getItem(this.storageKey) ?? '[]'); } catch { return []; }
  }

  saveOutbox() {
    if (this.storage) this.storage.setItem(this.storageKey, JSON.stringify(this.outbox));
  }

  typing(conv, on) { this.send_({ type: 'typing', conv, on }); }
  // read reports how far the user has read. Reports are coalesced for a
  // quarter second: a burst of messages must not become a burst of frames
  // that eats the socket's rate limit.
  read(conv, seq) {
    if ((this.readsSent.get(conv) ?? 0) >= seq || (this.reads.get(conv) ?? 0) >= seq) return;
    this.reads.set(conv, seq);
    this.readTimer ??= setTimeout(() => {
      this.readTimer = null;
      for (const [c, n] of this.reads) if (this.send_({ type: 'read', conv: c, seq: n })) this.readsSent.set(c, n);
      this.reads.clear();
    }, 250);
  }
  frame(frame) { return this.send_(frame); }
  op(type, fields) { return this.request({ type, ...fields }); }
}

export function newClientMsgId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return 'c-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 10);
}

export function wsURL(path) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}${path}`;
}
