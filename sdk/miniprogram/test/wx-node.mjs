// The slice of the WeChat mini-program API the SDK uses, for Node, over
// real networking: wx.connectSocket is a WebSocket client from the ws
// package, wx.request is fetch, storage is a JSON file (a new wx over the
// same file is an app restart), wx.login asks the fake WeChat for a code.
// Callbacks and results follow WeChat's documentation: success/fail with
// errMsg, SocketTask with onOpen/onMessage/onClose/onError, storage that
// answers '' for a missing key.
import WebSocket from 'ws';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';

function call(opts, name, res) {
  if (opts && typeof opts[name] === 'function') opts[name](res);
  if (opts && typeof opts.complete === 'function') opts.complete(res);
}

// deadSocket is a SocketTask that fails as WeChat's does without a
// network: an error, then the close.
function deadSocket() {
  const handlers = { open: [], message: [], close: [], error: [] };
  setTimeout(() => {
    handlers.error.forEach((fn) => fn({ errMsg: 'connectSocket:fail net::ERR_INTERNET_DISCONNECTED' }));
    handlers.close.forEach((fn) => fn({ code: 1006, reason: 'abnormal closure' }));
  }, 0);
  return {
    send: (o) => call(o, 'fail', { errMsg: 'sendSocketMessage:fail WebSocket is not connected' }),
    close: (o) => call(o, 'success', { errMsg: 'closeSocket:ok' }),
    onOpen: (fn) => handlers.open.push(fn),
    onMessage: (fn) => handlers.message.push(fn),
    onClose: (fn) => handlers.close.push(fn),
    onError: (fn) => handlers.error.push(fn),
  };
}

export function createWx({ storageFile, login } = {}) {
  let store = storageFile && existsSync(storageFile) ? JSON.parse(readFileSync(storageFile, 'utf8')) : {};
  const persist = () => { if (storageFile) writeFileSync(storageFile, JSON.stringify(store)); };
  const listeners = { network: new Set(), appShow: new Set() };
  const sockets = new Set();
  let online = true;

  const wx = {
    sockets,

    connectSocket(opts) {
      if (!online) return deadSocket();
      const ws = new WebSocket(opts.url, opts.protocols, { headers: opts.header });
      const handlers = { open: [], message: [], close: [], error: [] };
      const fire = (kind, res) => handlers[kind].forEach((fn) => fn(res));
      let closed = false;
      ws.on('open', () => fire('open', { header: {}, profile: {} }));
      ws.on('message', (data, isBinary) => fire('message', { data: isBinary ? new Uint8Array(data).buffer : data.toString() }));
      ws.on('error', (err) => fire('error', { errMsg: 'connectSocket:fail ' + err.message }));
      ws.on('close', (code, reason) => {
        closed = true;
        sockets.delete(task);
        fire('close', { code, reason: reason.toString() });
      });
      const task = {
        get readyState() { return ws.readyState; },
        send(o) {
          if (ws.readyState !== WebSocket.OPEN) {
            call(o, 'fail', { errMsg: 'sendSocketMessage:fail WebSocket is not connected' });
            return;
          }
          ws.send(o.data, (err) => call(o, err ? 'fail' : 'success', { errMsg: err ? 'sendSocketMessage:fail ' + err.message : 'sendSocketMessage:ok' }));
        },
        close(o = {}) {
          if (!closed) {
            // A stalled socket would wait 30 s for the server's close frame.
            if (ws.readyState === WebSocket.CONNECTING || ws.isPaused) ws.terminate();
            else ws.close(o.code ?? 1000, o.reason);
          }
          call(o, 'success', { errMsg: 'closeSocket:ok' });
        },
        onOpen: (fn) => handlers.open.push(fn),
        onMessage: (fn) => handlers.message.push(fn),
        onClose: (fn) => handlers.close.push(fn),
        onError: (fn) => handlers.error.push(fn),
        // Test only: the network vanishes under this socket (drop: the
        // close is noticed; stall: nothing more arrives, nothing says why).
        drop: () => ws.terminate(),
        stall: () => ws.pause(),
      };
      sockets.add(task);
      queueMicrotask(() => call(opts, 'success', { errMsg: 'connectSocket:ok' }));
      return task;
    },

    request(opts) {
      if (!online) {
        queueMicrotask(() => call(opts, 'fail', { errMsg: 'request:fail net::ERR_INTERNET_DISCONNECTED' }));
        return { abort() {} };
      }
      const method = (opts.method || 'GET').toUpperCase();
      const header = opts.header || {};
      let url = opts.url;
      let body;
      if (opts.data !== undefined) {
        if (method === 'GET') {
          url += (url.includes('?') ? '&' : '?') + new URLSearchParams(opts.data).toString();
        } else {
          body = typeof opts.data === 'string' ? opts.data : JSON.stringify(opts.data);
        }
      }
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new Error('timeout')), opts.timeout || 60_000);
      fetch(url, { method, headers: header, body, signal: controller.signal })
        .then(async (res) => {
          const text = await res.text();
          let data = text;
          if ((opts.dataType || 'json') === 'json') {
            try { data = JSON.parse(text); } catch { /* WeChat hands the text over as it is */ }
          }
          clearTimeout(timer);
          call(opts, 'success', { data, statusCode: res.status, header: Object.fromEntries(res.headers), errMsg: 'request:ok' });
        })
        .catch((err) => {
          clearTimeout(timer);
          const why = controller.signal.aborted ? 'timeout' : err.cause?.code || err.message;
          call(opts, 'fail', { errMsg: 'request:fail ' + why });
        });
      return { abort: () => controller.abort(new Error('abort')) };
    },

    getStorageSync: (key) => (key in store ? structuredClone(store[key]) : ''),
    setStorageSync(key, data) {
      store[key] = structuredClone(data);
      persist();
    },
    removeStorageSync(key) {
      delete store[key];
      persist();
    },
    clearStorageSync() {
      store = {};
      persist();
    },

    login(opts) {
      Promise.resolve()
        .then(() => login())
        .then(
          (code) => call(opts, 'success', { code, errMsg: 'login:ok' }),
          (err) => call(opts, 'fail', { errMsg: 'login:fail ' + err.message }),
        );
    },

    onNetworkStatusChange: (fn) => listeners.network.add(fn),
    offNetworkStatusChange: (fn) => listeners.network.delete(fn),
    onAppShow: (fn) => listeners.appShow.add(fn),
    offAppShow: (fn) => listeners.appShow.delete(fn),

    // Test only: the phone loses or regains its network. Going offline
    // drops the open sockets; neither reports the change (emitNetworkStatus does).
    setOnline(value) {
      online = value;
      if (!online) sockets.forEach((t) => t.drop());
    },
    // Test only: what the runtime would report.
    emitNetworkStatus(isConnected) {
      listeners.network.forEach((fn) => fn({ isConnected, networkType: isConnected ? 'wifi' : 'none' }));
    },
    emitAppShow() {
      listeners.appShow.forEach((fn) => fn({ path: 'pages/chat/chat', scene: 1001 }));
    },
    listenerCount: () => listeners.network.size + listeners.appShow.size,
  };
  return wx;
}
