/*
 * Kefu mini-program SDK: a customer's chat with a Kefu server over
 * wx.connectSocket and wx.request. No dependencies; ES2017; CommonJS, so
 * WeChat mini-programs, uni-app and Taro can require it. The protocol it
 * speaks is docs/protocol.md of the Kefu repository.
 *
 * What it keeps in wx storage (under "kefu:<tenant>:"):
 *   auth    the user token, so a restart does not log in again
 *   conv    the current conversation id, so a restart continues it
 *   outbox  messages sent but not yet acked, so a restart resends them
 *           with the same client_msg_id (the server stores them once)
 *
 * The message list (client.messages) lives in memory: it is rebuilt from
 * the server's history at each start, in seq order, with no gap and no
 * duplicate.
 */
'use strict';

var PROTOCOL_VERSION = 1;

// Send errors worth retrying with the same client_msg_id: nothing was
// stored. Every other error refuses the message for good.
var RETRY_SEND = ['rate_limited', 'unavailable'];

// Sign-in and setup failures worth retrying later. The others (a refused
// wx.login code, an unknown tenant) need the user or the host app.
var RETRY_SETUP = ['rate_limited', 'unavailable', 'internal', 'network', 'timeout', 'wx_login_failed'];

var DEFAULTS = {
  auth: 'wechat',
  pageSize: 50,
  backoffBaseMs: 500,
  backoffMaxMs: 30000,
  healthyAfterMs: 10000,
  handshakeTimeoutMs: 15000,
  pingIntervalMs: 25000,
  pongTimeoutMs: 10000,
  ackTimeoutMs: 15000,
  requestTimeoutMs: 15000,
  typingIntervalMs: 3000,
  gapGraceMs: 1000,
};

class KefuError extends Error {
  constructor(code, message, extra) {
    super(message || code);
    this.name = 'KefuError';
    this.code = code;
    if (extra) Object.assign(this, extra);
  }
}

// Emitter is the smallest event emitter the UI needs. A listener that
// throws is reported on the console and does not stop the others.
class Emitter {
  constructor() {
    this._handlers = {};
  }

  on(name, fn) {
    (this._handlers[name] = this._handlers[name] || []).push(fn);
    return this;
  }

  off(name, fn) {
    if (name === undefined) {
      this._handlers = {};
    } else if (fn === undefined) {
      delete this._handlers[name];
    } else if (this._handlers[name]) {
      this._handlers[name] = this._handlers[name].filter(function (h) { return h !== fn && h._kefuOnce !== fn; });
    }
    return this;
  }

  once(name, fn) {
    var self = this;
    var wrapper = function (payload) {
      self.off(name, wrapper);
      fn.call(self, payload);
    };
    wrapper._kefuOnce = fn;
    return this.on(name, wrapper);
  }

  emit(name, payload) {
    var list = (this._handlers[name] || []).slice();
    for (var i = 0; i < list.length; i++) {
      try {
        list[i].call(this, payload);
      } catch (e) {
        if (typeof console !== 'undefined') console.error('kefu: a "' + name + '" listener threw', e);
      }
    }
  }
}

function noop() {}

function isRetryable(list, err) {
  return list.indexOf(err && err.code) >= 0;
}

function sameParty(a, b) {
  return !!a && !!b && a.role === b.role && a.id === b.id;
}

function randomChars(random, n) {
  var s = '';
  while (s.length < n) s += Math.floor(random() * 36).toString(36);
  return s;
}

class KefuClient extends Emitter {
  /**
   * @param {object} options  see README.md: baseUrl and tenant are required.
   */
  constructor(options) {
    super();
    var o = Object.assign({}, DEFAULTS);
    Object.keys(options || {}).forEach(function (k) {
      if (options[k] !== undefined) o[k] = options[k]; // an option left undefined keeps its default
    });
    if (!o.baseUrl) throw new TypeError('kefu: baseUrl is required');
    if (!o.tenant) throw new TypeError('kefu: tenant is required');
    o.baseUrl = String(o.baseUrl).replace(/\/+$/, '');
    o.wsUrl = o.wsUrl || o.baseUrl.replace(/^http/, 'ws') + '/v1/ws/user';
    this.options = o;
    /* global wx */
    this.wx = o.wx || (typeof wx !== 'undefined' ? wx : null);
    if (!this.wx) throw new TypeError('kefu: no wx object: pass options.wx (uni, Taro)');
    var timers = o.timers || {};
    this._setTimeout = timers.setTimeout || function (fn, ms) { return setTimeout(fn, ms); };
    this._clearTimeout = timers.clearTimeout || function (h) { clearTimeout(h); };
    this._now = timers.now || function () { return Date.now(); };
    this._random = o.random || Math.random;
    this._prefix = o.storagePrefix || 'kefu:' + o.tenant + ':';

    this.status = 'idle'; // idle, connecting, open, reconnecting, closed
    this.me = null; // your party, {role:"user", id}, once known
    this._resetConversation(null);
    this._outbox = this._load('outbox') || [];
    var conv = this._load('conv');
    if (conv && conv.id) this.conversationId = conv.id;
    var authInfo = this._load('auth');
    if (authInfo && authInfo.user_id) this.me = { role: 'user', id: authInfo.user_id };

    this._started = false;
    this._destroyed = false;
    this._gen = 0; // bumped whenever a connection attempt ends: late callbacks of older ones are ignored
    this._socket = null;
    this._connecting = false;
    this._live = false;
    this._attempt = 0;
    this._timers = {};
    this._requests = {};
    this._liveWaiters = [];
    this._nextId = 0;
    this._inflight = null; // the outbox entry sent and awaiting its ack
    this._tokenFresh = false;
  }

  // ---- public API ----------------------------------------------------

  /** Logs in if needed, opens or continues the conversation and connects.
   *  Resolves once the conversation is live; rejects only when it cannot
   *  go on without the user or the host app (a refused login). */
  start() {
    if (this._destroyed) return Promise.reject(new KefuError('destroyed', 'this client was destroyed'));
    var live = this._whenLive(0);
    if (!this._started) {
      this._started = true;
      var self = this;
      this._onNetworkChange = function (res) { if (res && res.isConnected) self._wake(); };
      this._onAppShow = function () { self._wake(); };
      if (typeof this.wx.onNetworkStatusChange === 'function') this.wx.onNetworkStatusChange(this._onNetworkChange);
      if (typeof this.wx.onAppShow === 'function') this.wx.onAppShow(this._onAppShow);
    }
    if (!this._live) this._connect();
    return live;
  }

  /** Queues a text message in the outbox and sends it as soon as the
   *  conversation is live. Returns the outbox entry
   *  {conv, client_msg_id, body, created_at}; an `ack` or a `failed` event
   *  names it by client_msg_id later. */
  send(text) {
    if (typeof text !== 'string' || !text.trim()) throw new TypeError('kefu: send needs a non-empty text');
    var entry = {
      conv: this.conversationId,
      client_msg_id: 'c-' + this._now().toString(36) + '-' + randomChars(this._random, 12),
      body: { type: 'text', text: text },
      created_at: this._now(),
    };
    this._outbox.push(entry);
    this._saveOutbox();
    this.typing(false);
    this.emit('pending', entry);
    this._flush();
    return entry;
  }

  /** Sends a quick_reply option the user tapped: its text, as an ordinary
   *  text message. */
  sendOption(option) {
    return this.send(option.text);
  }

  /** Tells the other side you are typing (on=true, the default) or
   *  stopped. Throttled: while typing goes on, one frame every
   *  typingIntervalMs; "stopped" follows by itself after that long
   *  without a call. */
  typing(on) {
    if (on === undefined) on = true;
    if (!this._live || !this.conversationId) return;
    var now = this._now();
    var self = this;
    if (on) {
      if (!this._typingOn || now - this._typingAt >= this.options.typingIntervalMs) {
        this._sendFrame({ type: 'typing', conv: this.conversationId, on: true });
        this._typingAt = now;
      }
      this._typingOn = true;
      this._setTimer('typing', this.options.typingIntervalMs, function () { self.typing(false); });
    } else if (this._typingOn) {
      this._typingOn = false;
      this._clearTimer('typing');
      this._sendFrame({ type: 'typing', conv: this.conversationId, on: false });
    }
  }

  /** Marks the conversation read up to seq (default: the newest message
   *  received). Sent when live; never moves backwards. */
  markRead(seq) {
    seq = seq || this.lastSeq;
    if (!seq || seq <= this._readWanted) return;
    this._readWanted = seq;
    this._sendRead();
  }

  /** "Talk to a person": a BOT conversation is queued for an agent; a
   *  `state` event (QUEUED) and `queue` events follow. */
  escalate() {
    return this._op({ type: 'escalate', conv: this.conversationId }, false);
  }

  /** Closes the conversation; resolves with the server's `done` frame. */
  close(reason) {
    var frame = { type: 'close', conv: this.conversationId };
    if (reason) frame.reason = reason;
    return this._op(frame, true);
  }

  /** Reopens a closed conversation within the tenant's reopen window. */
  reopen() {
    return this._op({ type: 'reopen', conv: this.conversationId }, true);
  }

  /** Rates the conversation (score as the tenant defines it, e.g. 1-5)
   *  with an optional comment; resolves with `done`. */
  rate(score, comment) {
    var frame = { type: 'rate', conv: this.conversationId, score: score };
    if (comment) frame.comment = comment;
    return this._op(frame, true);
  }

  /** Starts a new conversation (after one was closed, say) and follows it
   *  instead of the current one. Resolves with its id. */
  newConversation() {
    var self = this;
    var old = this.conversationId;
    return this._createConversation().then(function (id) {
      if (self._live && old) self._sendFrame({ type: 'leave', conv: old });
      self._switchTo(id);
      if (self._live) self._resume();
      return id;
    });
  }

  /** Messages waiting in the outbox for the current conversation. */
  pending() {
    var conv = this.conversationId;
    return this._outbox.filter(function (e) { return !e.conv || e.conv === conv; }).map(function (e) { return Object.assign({}, e); });
  }

  /** Connects now instead of waiting for the next retry. */
  reconnect() {
    this._wake();
  }

  /** Stops everything: closes the socket, cancels timers, removes the
   *  wx listeners. Storage is kept, so a new client continues. */
  destroy() {
    if (this._destroyed) return;
    this._destroyed = true;
    this._gen++;
    this._closeSocket(1000, 'client destroyed');
    this._endConnection(new KefuError('destroyed', 'this client was destroyed'));
    this._rejectLiveWaiters(new KefuError('destroyed', 'this client was destroyed'));
    for (var name in this._timers) this._clearTimer(name);
    if (this._started) {
      if (typeof this.wx.offNetworkStatusChange === 'function') this.wx.offNetworkStatusChange(this._onNetworkChange);
      if (typeof this.wx.offAppShow === 'function') this.wx.offAppShow(this._onAppShow);
    }
    this._setStatus('closed');
  }

  /** Destroys the client and forgets the token, the conversation and the
   *  outbox kept in storage. */
  logout() {
    this.destroy();
    this._remove('auth');
    this._remove('conv');
    this._remove('outbox');
    this._outbox = [];
  }

  // ---- connection ----------------------------------------------------

  _connect() {
    if (this._destroyed || this._connecting || this._live) return;
    this._clearTimer('retry');
    var gen = ++this._gen;
    var self = this;
    this._connecting = true;
    this._setStatus('connecting', { attempt: this._attempt });
    this._ensureToken()
      .then(function () { return self._ensureConversation(); })
      .then(function () {
        if (gen === self._gen) self._openSocket(gen);
      }, function (err) {
        if (gen !== self._gen) return;
        self._connecting = false;
        self._setupFailed(err);
      });
  }

  _openSocket(gen) {
    var self = this;
    this._setTimer('handshake', this.options.handshakeTimeoutMs, function () {
      self._socketGone(gen, 4000, 'no welcome in time');
    });
    var task;
    try {
      // uni-app returns a SocketTask only when a callback is given.
      task = this.wx.connectSocket({ url: this.options.wsUrl, complete: noop });
    } catch (e) {
      this._socketGone(gen, 1006, e && e.message);
      return;
    }
    var bind = function (t) {
      if (gen !== self._gen) {
        try { t.close({}); } catch (e) { /* already gone */ }
        return;
      }
      self._socket = t;
      t.onOpen(function () {
        if (gen === self._gen) self._sendFrame({ type: 'hello', v: PROTOCOL_VERSION, token: self._token });
      });
      t.onMessage(function (res) {
        if (gen === self._gen) self._onData(res && res.data);
      });
      t.onClose(function (res) { self._socketGone(gen, res && res.code, res && res.reason); });
      t.onError(function (res) { self._socketGone(gen, 1006, res && res.errMsg); });
    };
    // Taro's connectSocket answers a Promise of the task.
    if (task && typeof task.then === 'function') {
      task.then(bind, function (e) { self._socketGone(gen, 1006, e && e.errMsg); });
    } else {
      bind(task);
    }
  }

  // _socketGone ends connection attempt gen (a close, an error, a timeout)
  // and plans the next one.
  _socketGone(gen, code, reason) {
    if (gen !== this._gen || this._destroyed) return;
    this._gen++;
    this._closeSocket(1000, 'reconnecting');
    this._endConnection(new KefuError('disconnected', 'the connection dropped before an answer'));
    if (code === 4001) {
      // The server refused the token. A token it just issued is not worth
      // another try: that needs the host app (a clock far off, say).
      if (this._tokenFresh) {
        this._setupFailed(new KefuError('unauthenticated', 'the server refused a new token: ' + (reason || '')));
        return;
      }
      this._forgetToken();
    }
    this._scheduleReconnect(code, reason);
  }

  // _endConnection forgets everything that lived only with the socket.
  _endConnection(err) {
    this._socket = null;
    this._connecting = false;
    this._live = false;
    this._pagingId = null;
    this._typingOn = false;
    ['handshake', 'ping', 'pong', 'healthy', 'ack', 'gap', 'outboxRetry', 'typing'].forEach(this._clearTimer, this);
    this._inflight = null;
    for (var id in this._requests) {
      var req = this._requests[id];
      delete this._requests[id];
      this._clearTimeout(req.timer);
      req.reject(err);
    }
  }

  _closeSocket(code, reason) {
    var t = this._socket;
    this._socket = null;
    if (t) {
      try { t.close({ code: code, reason: reason }); } catch (e) { /* already closed */ }
    }
  }

  _scheduleReconnect(code, reason) {
    var self = this;
    var base = Math.min(this.options.backoffMaxMs, this.options.backoffBaseMs * Math.pow(2, this._attempt));
    // Half fixed, half random: clients dropped together do not come back together.
    var delay = Math.round(base / 2 + this._random() * base / 2);
    this._attempt++;
    this._setStatus('reconnecting', { attempt: this._attempt, delay_ms: delay, code: code, reason: reason || '' });
    this._setTimer('retry', delay, function () { self._connect(); });
  }

  // _setupFailed handles a failed login or conversation setup.
  _setupFailed(err) {
    this.emit('error', { code: err.code, message: err.message, op: err.op || 'connect' });
    if (isRetryable(RETRY_SETUP, err)) {
      this._scheduleReconnect(0, err.message);
      return;
    }
    this._setStatus('closed', { code: err.code, reason: err.message });
    this._rejectLiveWaiters(err);
  }

  // _wake connects now (the network is back, the app is shown), or checks
  // that a live connection still answers.
  _wake() {
    if (this._destroyed || !this._started) return;
    if (this._live) {
      this._ping();
    } else if (!this._connecting) {
      this._connect();
    }
  }

  _ping() {
    var self = this;
    var gen = this._gen;
    this._sendFrame({ type: 'ping', id: 'ping-' + ++this._nextId });
    if (!this._timers.pong) {
      this._setTimer('pong', this.options.pongTimeoutMs, function () { self._socketGone(gen, 4000, 'no answer to ping'); });
    }
  }

  _armHeartbeat() {
    var self = this;
    this._setTimer('ping', this.options.pingIntervalMs, function () {
      self._ping();
      self._armHeartbeat();
    });
  }

  _goLive() {
    var self = this;
    this._live = true;
    this._connecting = false;
    this._setStatus('open');
    this._setTimer('healthy', this.options.healthyAfterMs, function () { self._attempt = 0; });
    var waiters = this._liveWaiters;
    this._liveWaiters = [];
    waiters.forEach(function (w) {
      self._clearTimeout(w.timer);
      w.resolve();
    });
    this._sendRead();
    this._flush();
  }

  // _whenLive resolves once the conversation is live; timeoutMs 0 waits
  // as long as it takes.
  _whenLive(timeoutMs) {
    if (this._live) return Promise.resolve();
    if (this._destroyed) return Promise.reject(new KefuError('destroyed', 'this client was destroyed'));
    var self = this;
    return new Promise(function (resolve, reject) {
      var w = { resolve: resolve, reject: reject, timer: null };
      if (timeoutMs) {
        w.timer = self._setTimeout(function () {
          self._liveWaiters = self._liveWaiters.filter(function (x) { return x !== w; });
          reject(new KefuError('timeout', 'not connected'));
        }, timeoutMs);
      }
      self._liveWaiters.push(w);
    });
  }

  _rejectLiveWaiters(err) {
    var waiters = this._liveWaiters;
    this._liveWaiters = [];
    var self = this;
    waiters.forEach(function (w) {
      self._clearTimeout(w.timer);
      w.reject(err);
    });
  }

  // _op sends a frame once live; answered ops resolve with their `done`.
  _op(frame, answered) {
    var self = this;
    if (!frame.conv) return Promise.reject(new KefuError('no_conversation', 'no conversation yet: call start() first'));
    return this._whenLive(this.options.requestTimeoutMs).then(function () {
      return new Promise(function (resolve, reject) {
        frame.id = frame.type + '-' + ++self._nextId;
        if (answered) {
          var timer = self._setTimeout(function () {
            delete self._requests[frame.id];
            reject(new KefuError('timeout', frame.type + ' was not answered in time'));
          }, self.options.requestTimeoutMs);
          self._requests[frame.id] = { resolve: resolve, reject: reject, timer: timer };
        }
        self._sendFrame(frame);
        if (!answered) resolve();
      });
    });
  }

  _sendFrame(frame) {
    var t = this._socket;
    if (!t) return false;
    try {
      t.send({ data: JSON.stringify(frame), fail: noop });
      return true;
    } catch (e) {
      return false;
    }
  }

  // ---- frames from the server ----------------------------------------

  _onData(data) {
    var f;
    try {
      f = JSON.parse(typeof data === 'string' ? data : String(data));
    } catch (e) {
      return; // only JSON text frames are part of the protocol
    }
    this._clearTimer('pong'); // anything that arrives proves the connection alive
    switch (f.type) {
      case 'welcome': return this._onWelcome(f);
      case 'history': return this._onHistory(f);
      case 'message': return this._onMessage(f);
      case 'ack': return this._onAck(f);
      case 'error': return this._onError(f);
      case 'done': return this._onDone(f);
      case 'state': return this._onState(f);
      case 'typing':
        if (f.conv === this.conversationId && !sameParty(f.from, this.me)) this.emit('typing', f);
        return;
      case 'read': return this._onRead(f.conv, f.by, f.seq);
      case 'queue':
        if (f.conv !== this.conversationId) return;
        this.queue = { group: f.group, position: f.position, eta_ms: f.eta_ms, available: f.available, reason: f.reason };
        this.emit('queue', f);
        return;
      case 'bot_delta':
        if (f.conv !== this.conversationId) return;
        this.botDraft += f.text;
        this.emit('bot_delta', { conv: f.conv, text: f.text, draft: this.botDraft });
        return;
    }
  }

  _onWelcome(f) {
    this._clearTimer('handshake');
    this._tokenFresh = false;
    this.me = f.you;
    this._armHeartbeat();
    this._resume();
  }

  // _resume asks for the history after lastSeq; pages follow until one
  // says more:false, and the conversation is live from then on.
  _resume() {
    this._pagingId = 'resume-' + ++this._nextId;
    this._sendFrame({ type: 'resume', id: this._pagingId, conv: this.conversationId, last_seq: this.lastSeq, limit: this.options.pageSize });
  }

  _onHistory(f) {
    if (f.id !== this._pagingId || f.conv !== this.conversationId) return;
    var added = this._accept(f.messages || []);
    if (added.length) this.emit('messages', { conv: f.conv, messages: added, more: !!f.more });
    if (f.state && f.state !== this.state) this._setState({ conv: f.conv, state: f.state });
    var self = this;
    (f.read || []).forEach(function (p) { self._onRead(f.conv, p.by, p.seq); });
    if (f.more) {
      this._resume();
      return;
    }
    this._pagingId = null;
    if (!this._live) this._goLive();
    this._checkGap();
  }

  _onMessage(f) {
    if (f.conv !== this.conversationId || !f.msg) return;
    var added = this._accept([f.msg]);
    for (var i = 0; i < added.length; i++) this.emit('message', added[i]);
    this._checkGap();
  }

  // _accept adds messages to the list strictly in seq order: one seen
  // before is dropped, one after a gap waits until the gap is filled. It
  // returns the messages that joined the list.
  _accept(msgs) {
    var added = [];
    for (var i = 0; i < msgs.length; i++) {
      var m = msgs[i];
      if (m && m.conv === this.conversationId && m.seq > this.lastSeq) this._ahead[m.seq] = m;
    }
    while (this._ahead[this.lastSeq + 1]) {
      var next = this._ahead[this.lastSeq + 1];
      delete this._ahead[this.lastSeq + 1];
      this.lastSeq = next.seq;
      this.messages.push(next);
      added.push(next);
      if (next.from && next.from.role === 'bot') this.botDraft = '';
      this._settleOwn(next);
    }
    return added;
  }

  // _settleOwn takes a message of ours found in the history (stored, but
  // its ack was lost) out of the outbox, as its ack would have.
  _settleOwn(m) {
    if (!sameParty(m.from, this.me)) return;
    var entry = this._takeFromOutbox(m.client_msg_id);
    if (!entry) return;
    if (this._inflight && this._inflight.client_msg_id === m.client_msg_id) {
      this._inflight = null;
      this._clearTimer('ack');
    }
    this.emit('ack', { conv: m.conv, client_msg_id: m.client_msg_id, seq: m.seq, ts: m.ts, dup: true, message: m });
  }

  // _checkGap: messages wait behind a missing seq. The server fills gaps
  // itself; if the missing one still has not come after a moment, page
  // from the last seq again.
  _checkGap() {
    var self = this;
    if (Object.keys(this._ahead).length === 0) {
      this._clearTimer('gap');
      return;
    }
    if (this._timers.gap) return;
    this._setTimer('gap', this.options.gapGraceMs, function () {
      if (self._live && !self._pagingId && Object.keys(self._ahead).length) self._resume();
    });
  }

  _onAck(f) {
    var entry = this._takeFromOutbox(f.client_msg_id);
    if (this._inflight && this._inflight.client_msg_id === f.client_msg_id) {
      this._inflight = null;
      this._clearTimer('ack');
    }
    if (entry) {
      var msg = { conv: f.conv, seq: f.seq, client_msg_id: f.client_msg_id, from: this.me, body: entry.body, ts: f.ts };
      this.emit('ack', { conv: f.conv, client_msg_id: f.client_msg_id, seq: f.seq, ts: f.ts, dup: !!f.dup, message: msg });
      var added = this._accept([msg]);
      for (var i = 0; i < added.length; i++) this.emit('message', added[i]);
    }
    this._flush();
  }

  _onError(f) {
    var req = f.id && this._requests[f.id];
    if (req) {
      delete this._requests[f.id];
      this._clearTimeout(req.timer);
      req.reject(new KefuError(f.code, f.message, { conv: f.conv }));
      return;
    }
    if (f.id && f.id === this._pagingId) return this._resumeFailed(f);
    var inflight = this._inflight;
    if (f.client_msg_id || (inflight && f.code === 'rate_limited' && !f.id)) {
      // A frame dropped over the rate limit comes back without its
      // client_msg_id: it can only be the message in flight.
      return this._sendFailed(f.client_msg_id || inflight.client_msg_id, f);
    }
    this.emit('error', { code: f.code, message: f.message, conv: f.conv, op: f.id ? f.id.split('-')[0] : undefined });
  }

  _sendFailed(clientMsgID, f) {
    var self = this;
    if (this._inflight && this._inflight.client_msg_id === clientMsgID) {
      this._inflight = null;
      this._clearTimer('ack');
    }
    if (RETRY_SEND.indexOf(f.code) >= 0) {
      var tries = this._sendTries = (this._sendTries || 0) + 1;
      var delay = Math.min(this.options.backoffMaxMs, 500 * Math.pow(2, Math.min(tries, 6)));
      this._setTimer('outboxRetry', delay, function () { self._flush(); });
      return;
    }
    var entry = this._takeFromOutbox(clientMsgID);
    if (entry) this.emit('failed', Object.assign({}, entry, { code: f.code, message: f.message }));
    this._flush();
  }

  _resumeFailed(f) {
    var self = this;
    this._pagingId = null;
    if (f.code === 'not_found') {
      // The stored conversation is not this user's (a new visitor token,
      // say): start a new one.
      this.emit('error', { code: f.code, message: f.message, conv: f.conv, op: 'resume' });
      var gen = this._gen;
      var lost = this.conversationId;
      this._createConversation().then(function (id) {
        if (gen !== self._gen) return;
        self._retarget(lost, id);
        self._switchTo(id);
        self._resume();
      }, function (err) {
        self._socketGone(gen, 4000, err.message);
      });
    } else if (f.code === 'seq_ahead') {
      // The server knows less than we do (its data was reset): start the
      // list again from its history.
      var conv = this.conversationId;
      this._resetConversation(conv);
      this.emit('conversation', { id: conv, reset: true });
      this._resume();
    } else {
      this._socketGone(this._gen, 4000, 'resume failed: ' + f.code);
    }
  }

  _onDone(f) {
    var req = f.id && this._requests[f.id];
    if (!req) return;
    delete this._requests[f.id];
    this._clearTimeout(req.timer);
    req.resolve(f);
  }

  _onState(f) {
    if (f.conv !== this.conversationId) return;
    this._setState(f);
  }

  _setState(f) {
    this.state = f.state;
    if (f.agent_id !== undefined) this.agentId = f.agent_id || null;
    if (f.state !== 'QUEUED') this.queue = null;
    this.emit('state', f);
  }

  _onRead(conv, by, seq) {
    if (conv !== this.conversationId || !by) return;
    var key = by.role + ':' + by.id;
    if ((this.reads[key] || 0) >= seq) return;
    this.reads[key] = seq;
    var mine = sameParty(by, this.me);
    if (mine && seq > this._readSent) this._readSent = seq;
    this.emit('read', { conv: conv, by: by, seq: seq, mine: mine });
  }

  _sendRead() {
    if (!this._live || this._readWanted <= this._readSent) return;
    if (this._sendFrame({ type: 'read', conv: this.conversationId, seq: this._readWanted })) this._readSent = this._readWanted;
  }

  // ---- the outbox ----------------------------------------------------

  // _flush sends the oldest unacked message, one at a time, so they are
  // stored in the order they were written.
  _flush() {
    if (!this._live || this._inflight || this._timers.outboxRetry || !this._outbox.length) return;
    var self = this;
    var entry = this._outbox[0];
    if (!entry.conv) {
      // Written before the first conversation existed.
      entry.conv = this.conversationId;
      this._saveOutbox();
    }
    this._inflight = entry;
    this._sendFrame({ type: 'send', conv: entry.conv, client_msg_id: entry.client_msg_id, body: entry.body });
    var gen = this._gen;
    // No ack in this long on an open socket: assume the socket is dead.
    this._setTimer('ack', this.options.ackTimeoutMs, function () { self._socketGone(gen, 4000, 'no ack in time'); });
  }

  _takeFromOutbox(clientMsgID) {
    for (var i = 0; i < this._outbox.length; i++) {
      if (this._outbox[i].client_msg_id === clientMsgID) {
        var entry = this._outbox.splice(i, 1)[0];
        this._saveOutbox();
        this._sendTries = 0;
        return entry;
      }
    }
    return null;
  }

  _saveOutbox() {
    this._save('outbox', this._outbox);
  }

  // ---- login and the conversation -------------------------------------

  _ensureToken() {
    var saved = this._load('auth');
    var margin = 60000; // log in again a minute early rather than be refused
    if (saved && saved.token && saved.method === this.options.auth && (!saved.expires_at || this._now() < saved.expires_at - margin)) {
      this._token = saved.token;
      return Promise.resolve(saved.token);
    }
    return this._login();
  }

  _login() {
    var self = this;
    var o = this.options;
    var step;
    switch (o.auth) {
      case 'wechat':
        step = this._wxLogin().then(function (code) {
          return self._http('POST', '/v1/auth/wechat', { tenant: o.tenant, code: code });
        });
        break;
      case 'visitor':
        step = this._http('POST', '/v1/auth/visitor', { tenant: o.tenant });
        break;
      case 'identity':
        if (typeof o.getIdentity !== 'function') return Promise.reject(new KefuError('invalid_options', 'auth "identity" needs options.getIdentity'));
        step = Promise.resolve(o.getIdentity()).then(function (id) {
          return self._http('POST', '/v1/auth/identity', { tenant: o.tenant, user_id: id.user_id, ts: id.ts, sig: id.sig });
        });
        break;
      case 'token':
        if (typeof o.getToken !== 'function') return Promise.reject(new KefuError('invalid_options', 'auth "token" needs options.getToken'));
        step = Promise.resolve(o.getToken()).then(function (t) {
          return typeof t === 'string' ? { access_token: t } : t;
        });
        break;
      default:
        return Promise.reject(new KefuError('invalid_options', 'unknown auth method ' + o.auth));
    }
    return step.then(function (res) {
      if (!res || !res.access_token) throw new KefuError('unauthenticated', 'no token');
      var info = { method: o.auth, token: res.access_token, user_id: res.user_id || '', expires_at: res.expires_in ? self._now() + res.expires_in * 1000 : 0 };
      self._save('auth', info);
      self._token = info.token;
      self._tokenFresh = true;
      self.me = info.user_id ? { role: 'user', id: info.user_id } : null; // a host token names its user only in the welcome
      self.emit('login', { user_id: info.user_id, method: o.auth });
      return info.token;
    }, function (err) {
      err.op = 'login';
      throw err;
    });
  }

  _forgetToken() {
    this._token = null;
    this._remove('auth');
  }

  _wxLogin() {
    var wxapi = this.wx;
    return new Promise(function (resolve, reject) {
      wxapi.login({
        success: function (res) {
          if (res && res.code) resolve(res.code);
          else reject(new KefuError('wx_login_failed', 'wx.login gave no code'));
        },
        fail: function (res) {
          reject(new KefuError('wx_login_failed', (res && res.errMsg) || 'wx.login failed'));
        },
      });
    });
  }

  // _ensureConversation continues the stored conversation if it is this
  // user's, or opens one.
  _ensureConversation() {
    var saved = this._load('conv');
    var userID = this.me && this.me.id;
    if (saved && saved.id && (!saved.user_id || !userID || saved.user_id === userID)) {
      if (saved.id !== this.conversationId) this._switchTo(saved.id);
      return Promise.resolve(saved.id);
    }
    var self = this;
    return this._createConversation().then(function (id) {
      if (saved && saved.id) self._retarget(saved.id, id);
      self._switchTo(id);
      return id;
    });
  }

  // _retarget moves unsent messages of a conversation this user can no
  // longer reach (another sign-in's) to the one that replaces it: the user
  // wrote them into "the chat", not into a conversation id.
  _retarget(lost, id) {
    var moved = false;
    this._outbox.forEach(function (e) {
      if (e.conv === lost) {
        e.conv = id;
        moved = true;
      }
    });
    if (moved) this._saveOutbox();
  }

  _createConversation() {
    var self = this;
    return this._http('POST', '/v1/conversations', {}, true).then(function (conv) {
      self._save('conv', { id: conv.id, user_id: conv.user_id });
      return conv.id;
    }, function (err) {
      err.op = 'conversation';
      throw err;
    });
  }

  _switchTo(id) {
    if (id === this.conversationId) return;
    this._resetConversation(id);
    this.emit('conversation', { id: id });
  }

  _resetConversation(id) {
    this.conversationId = id;
    this.messages = []; // stored messages, ascending seq, gapless
    this.lastSeq = 0;
    this._ahead = {}; // messages received after a gap, by seq
    this.state = null; // BOT, QUEUED, ASSIGNED, ON_HOLD, CLOSED
    this.agentId = null;
    this.queue = null; // the latest `queue` event while QUEUED
    this.botDraft = ''; // bot_delta text of the answer being generated
    this.reads = {}; // "role:id" -> the seq that participant has read
    this._readWanted = 0;
    this._readSent = 0;
  }

  // _http calls the REST API; with auth it sends the token and, when the
  // server refuses it, logs in again once.
  _http(method, path, data, auth, retried) {
    var self = this;
    var header = { 'content-type': 'application/json' };
    if (auth) header.Authorization = 'Bearer ' + this._token;
    return new Promise(function (resolve, reject) {
      self.wx.request({
        url: self.options.baseUrl + path,
        method: method,
        data: data,
        header: header,
        dataType: 'json',
        timeout: self.options.requestTimeoutMs,
        success: function (res) {
          var body = res.data;
          if (typeof body === 'string' && body) {
            try { body = JSON.parse(body); } catch (e) { /* not JSON: keep the text */ }
          }
          if (res.statusCode >= 200 && res.statusCode < 300) {
            resolve(body);
            return;
          }
          var e = body && body.error;
          var code = e ? e.code : res.statusCode === 429 ? 'rate_limited' : res.statusCode >= 500 ? 'unavailable' : 'http_' + res.statusCode;
          reject(new KefuError(code, e ? e.message : 'HTTP ' + res.statusCode, { status: res.statusCode }));
        },
        fail: function (res) {
          var msg = (res && res.errMsg) || 'request failed';
          reject(new KefuError(/timeout/i.test(msg) ? 'timeout' : 'network', msg));
        },
      });
    }).catch(function (err) {
      if (auth && !retried && err.code === 'unauthenticated') {
        self._forgetToken();
        return self._login().then(function () { return self._http(method, path, data, auth, true); });
      }
      throw err;
    });
  }

  // ---- small helpers -------------------------------------------------

  _setStatus(status, detail) {
    this.status = status;
    this.emit('status', Object.assign({ status: status }, detail || {}));
  }

  _setTimer(name, ms, fn) {
    var self = this;
    this._clearTimer(name);
    this._timers[name] = this._setTimeout(function () {
      delete self._timers[name];
      fn();
    }, ms);
  }

  _clearTimer(name) {
    if (this._timers[name] !== undefined) {
      this._clearTimeout(this._timers[name]);
      delete this._timers[name];
    }
  }

  _load(key) {
    try {
      var v = this.wx.getStorageSync(this._prefix + key);
      return v === '' || v === undefined ? null : v;
    } catch (e) {
      return null;
    }
  }

  _save(key, value) {
    try {
      this.wx.setStorageSync(this._prefix + key, value);
    } catch (e) {
      // Storage full or unavailable: go on in memory, and say so.
      this.emit('error', { code: 'storage', message: 'wx storage refused ' + key + ': ' + (e && e.errMsg || e), op: 'storage' });
    }
  }

  _remove(key) {
    try { this.wx.removeStorageSync(this._prefix + key); } catch (e) { /* nothing to remove */ }
  }
}

module.exports = { KefuClient: KefuClient, KefuError: KefuError, Emitter: Emitter, PROTOCOL_VERSION: PROTOCOL_VERSION };
