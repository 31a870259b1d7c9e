import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startStack, newClient, nextEvent, api } from './helpers.mjs';

let stack;
before(async () => { stack = await startStack(); });
after(async () => { await stack?.close(); });

test('a wx.login code signs in as wx-<openid>; a restart keeps the token and the conversation', async () => {
  const openid = 'oGZUI0egBJY1zhBYw2KhdUfwVJJE';
  const first = newClient(stack, { auth: 'wechat', openid });
  const logins = [];
  first.client.on('login', (e) => logins.push(e));
  await first.client.start();
  assert.equal(first.client.me.id, 'wx-' + openid);
  assert.deepEqual(logins, [{ user_id: 'wx-' + openid, method: 'wechat' }]);
  // Kefu called code2session as WeChat documents it.
  assert.equal(stack.wechat.calls.length, 1);
  const call = stack.wechat.calls[0];
  assert.equal(call.appid, 'demo');
  assert.equal(call.secret, stack.wechat.secret);
  assert.equal(call.grant_type, 'authorization_code');
  // The token in storage is good for the REST API as that user.
  const saved = first.wx.getStorageSync('kefu:demo:auth');
  const conv = first.client.conversationId;
  const page = await api(stack.server, 'GET', `/v1/conversations/${conv}/messages`, { token: saved.token });
  assert.deepEqual(page.messages, []);
  first.client.destroy();
  assert.equal(first.wx.listenerCount(), 0, 'destroy removes the wx listeners');

  // The app restarts: same storage, no new wx.login, same conversation.
  const second = newClient(stack, { auth: 'wechat', openid, storageFile: first.storageFile, loginCode: () => { throw new Error('wx.login must not be called'); } });
  await second.client.start();
  assert.equal(second.client.me.id, 'wx-' + openid);
  assert.equal(second.client.conversationId, conv);
  assert.equal(stack.wechat.calls.length, 1);
  second.client.destroy();
});

test('a code WeChat refuses is an error event and start() rejects', async () => {
  const { client } = newClient(stack, { auth: 'wechat', loginCode: () => 'not-a-code-wechat-knows' });
  const error = nextEvent(client, 'error');
  const closed = nextEvent(client, 'status', (e) => e.status === 'closed');
  await assert.rejects(client.start(), (err) => err.code === 'unauthenticated');
  const e = await error;
  assert.equal(e.code, 'unauthenticated');
  assert.equal(e.op, 'login');
  assert.match(e.message, /wx\.login code/);
  assert.equal((await closed).code, 'unauthenticated');
  assert.equal(client.status, 'closed');
  client.destroy();
});

test('a code used twice is refused too (WeChat codes are single-use)', async () => {
  const code = stack.wechat.issueCode('oReusedCode1234');
  const a = newClient(stack, { auth: 'wechat', loginCode: () => code });
  await a.client.start();
  a.client.destroy();
  const b = newClient(stack, { auth: 'wechat', loginCode: () => code });
  await assert.rejects(b.client.start(), (err) => err.code === 'unauthenticated');
  b.client.destroy();
});

test('a token the server refuses (4001) makes the SDK log in again by itself', async () => {
  const openid = 'oRelogin000000001';
  const a = newClient(stack, { auth: 'wechat', openid });
  await a.client.start();
  const conv = a.client.conversationId;
  a.client.destroy();
  // The stored token goes bad (a key rotation, say) while the app is closed.
  const saved = a.wx.getStorageSync('kefu:demo:auth');
  a.wx.setStorageSync('kefu:demo:auth', { ...saved, token: saved.token.slice(0, -4) + 'AAAA' });

  const b = newClient(stack, { auth: 'wechat', openid, storageFile: a.storageFile });
  const statuses = [];
  b.client.on('status', (e) => statuses.push(e));
  await b.client.start();
  assert.ok(statuses.some((s) => s.status === 'reconnecting' && s.code === 4001), JSON.stringify(statuses));
  assert.equal(b.client.me.id, 'wx-' + openid);
  assert.equal(b.client.conversationId, conv, 'the same WeChat user continues the conversation');
  assert.notEqual(b.wx.getStorageSync('kefu:demo:auth').token, saved.token.slice(0, -4) + 'AAAA');
  b.client.destroy();
});

test('an anonymous visitor gets a v- user and a conversation in state BOT', async () => {
  const { client } = newClient(stack, { auth: 'visitor' });
  const state = nextEvent(client, 'state');
  await client.start();
  assert.match(client.me.id, /^v-/);
  assert.equal((await state).state, 'BOT');
  assert.equal(client.status, 'open');
  client.destroy();
});

test('a merchant-signed identity signs in as m-<user_id>', async () => {
  const secret = 'merchant-identity-secret-0123456789';
  await api(stack.server, 'PUT', '/v1/tenant/credentials', { token: stack.admin.access_token, body: { identity_secret: secret } });
  // What the merchant's own server does: sign "<tenant>:<user_id>:<ts>".
  const getIdentity = async () => {
    const ts = Math.floor(Date.now() / 1000);
    const sig = createHmac('sha256', secret).update(`demo:member-42:${ts}`).digest('hex');
    return { user_id: 'member-42', ts, sig };
  };
  const { client } = newClient(stack, { auth: 'identity', getIdentity });
  await client.start();
  assert.equal(client.me.id, 'm-member-42');
  client.destroy();

  const forged = newClient(stack, { auth: 'identity', getIdentity: async () => ({ ...(await getIdentity()), user_id: 'member-43' }) });
  await assert.rejects(forged.client.start(), (err) => err.code === 'unauthenticated');
  forged.client.destroy();
});

test('a token supplied by the host app, asked for again when refused', async () => {
  let asked = 0;
  const getToken = async () => {
    asked++;
    const t = await api(stack.server, 'POST', '/v1/auth/visitor', { body: { tenant: 'demo' } });
    // The first token the host hands over is broken.
    return asked === 1 ? 'not-a-token' : t;
  };
  const { client } = newClient(stack, { auth: 'token', getToken });
  await client.start();
  assert.equal(asked, 2);
  assert.match(client.me.id, /^v-/);
  client.destroy();
});
