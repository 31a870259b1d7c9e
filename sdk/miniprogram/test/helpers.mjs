// Shared pieces of the SDK tests: a real kefu server wired to the fake
// WeChat, SDK clients over wx-node, an agent on a real WebSocket, and
// waiting with deadlines instead of sleeps.
import { createRequire } from 'node:module';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startKefu, api, staffLogin, createAgent, ADMIN_PASSWORD } from '../../../scripts/testkit/kefu-server.mjs';
import { startFakeWeChat } from './fake-wechat.mjs';
import { createWx } from './wx-node.mjs';

const require = createRequire(import.meta.url);
export const { KefuClient, KefuError } = require('../kefu/kefu.js');
export { api, staffLogin, createAgent };

// startStack starts the fake WeChat and a kefu server that calls it, and
// gives the demo tenant the fake's AppSecret.
export async function startStack(extraEnv = {}) {
  const wechat = await startFakeWeChat({ appid: 'demo' });
  const server = await startKefu({ KEFU_WECHAT_API_BASE: wechat.url, ...extraEnv });
  const admin = await staffLogin(server, 'admin', ADMIN_PASSWORD);
  await api(server, 'PUT', '/v1/tenant/credentials', { token: admin.access_token, body: { wechat_app_secret: wechat.secret } });
  return {
    server,
    wechat,
    admin,
    clients: new Set(),
    close: async function () {
      // A failed test leaves its clients reconnecting: stop them first.
      for (const c of this.clients) c.destroy();
      await server.close();
      await wechat.close();
    },
  };
}

export function tempStorage() {
  return join(mkdtempSync(join(tmpdir(), 'kefu-sdk-')), 'storage.json');
}

// newClient makes an SDK client over its own wx; storageFile is its
// phone's storage (pass the same file again to "restart the app"). The
// wx.login of a wechat client yields a good code for openid unless
// loginCode says otherwise.
export function newClient(stack, { storageFile = tempStorage(), auth = 'visitor', openid, loginCode, ...options } = {}) {
  const wx = createWx({
    storageFile,
    login: loginCode || (() => stack.wechat.issueCode(openid || 'oTest' + Math.random().toString(36).slice(2, 10))),
  });
  const client = new KefuClient({
    baseUrl: stack.server.url,
    tenant: 'demo',
    auth,
    wx,
    backoffBaseMs: 100,
    backoffMaxMs: 1000,
    ...options,
  });
  stack.clients.add(client);
  // What a UI built on the events shows: history pages and live messages
  // appended as they come.
  const ui = [];
  client.on('messages', (e) => ui.push(...e.messages));
  client.on('message', (m) => ui.push(m));
  return { client, wx, storageFile, ui };
}

// waitFor polls cond until it returns a truthy value or the deadline
// passes.
export async function waitFor(label, cond, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// nextEvent resolves with the next event name whose payload matches pred.
export function nextEvent(client, name, pred = () => true, timeoutMs = 15_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off(name, on);
      reject(new Error(`timed out waiting for a "${name}" event`));
    }, timeoutMs);
    const on = (e) => {
      if (!pred(e)) return;
      clearTimeout(timer);
      client.off(name, on);
      resolve(e);
    };
    client.on(name, on);
  });
}

// history reads a conversation's whole history over REST.
export async function history(server, token, conv) {
  const all = [];
  for (;;) {
    const page = await api(server, 'GET', `/v1/conversations/${conv}/messages?after_seq=${all.length ? all.at(-1).seq : 0}&limit=200`, { token });
    all.push(...page.messages);
    if (!page.more) return all;
  }
}

// Agent is a member of staff on /v1/ws/agent over a real WebSocket.
export class Agent {
  static async connect(server, token) {
    const a = new Agent(server, token);
    await a.open();
    return a;
  }

  constructor(server, token) {
    this.server = server;
    this.token = token;
    this.frames = [];
    this.waiters = new Set();
    this.n = 0;
    // client_msg_ids must not repeat across reconnects: the server would
    // take a repeat for a resend.
    this.tag = Math.random().toString(36).slice(2, 8);
  }

  async open() {
    this.ws = new WebSocket(this.server.url.replace(/^http/, 'ws') + '/v1/ws/agent');
    this.ws.on('message', (d) => {
      const f = JSON.parse(d.toString());
      this.frames.push(f);
      for (const w of this.waiters) w();
    });
    this.closed = new Promise((r) => this.ws.once('close', r));
    await new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
    this.send({ type: 'hello', v: 1, token: this.token });
    await this.next((f) => f.type === 'welcome', 'welcome');
  }

  send(frame) {
    this.ws.send(JSON.stringify(frame));
  }

  // next resolves with the first frame from index `from` on that matches.
  next(pred, label, { from = 0, timeoutMs = 15_000 } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const f = this.frames.slice(from).find(pred);
        if (!f) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(f);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`agent: timed out waiting for ${label}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  // follow pages a conversation's history to the end, so pushes come.
  async follow(conv) {
    let last = 0;
    for (;;) {
      const id = 'r' + ++this.n;
      this.send({ type: 'resume', id, conv, last_seq: last, limit: 200 });
      const page = await this.next((f) => f.id === id, `history ${id}`);
      if (page.type !== 'history') throw new Error('resume failed: ' + JSON.stringify(page));
      if (page.messages.length) last = page.messages.at(-1).seq;
      if (!page.more) return page;
    }
  }

  // op sends a lifecycle frame (accept, close...) and resolves with its done.
  async op(frame) {
    const id = frame.type + ++this.n;
    this.send({ ...frame, id });
    const f = await this.next((x) => x.id === id, `answer to ${id}`);
    if (f.type !== 'done') throw new Error(`${frame.type} failed: ` + JSON.stringify(f));
    return f;
  }

  async say(conv, text) {
    const cmid = `a-${this.tag}-${++this.n}`;
    this.send({ type: 'send', conv, client_msg_id: cmid, body: { type: 'text', text } });
    const ack = await this.next((f) => (f.type === 'ack' || f.type === 'error') && f.client_msg_id === cmid, `ack of ${cmid}`);
    if (ack.type !== 'ack') throw new Error('agent send failed: ' + JSON.stringify(ack));
    return ack;
  }

  async close() {
    this.ws.close();
    await this.closed;
  }
}
