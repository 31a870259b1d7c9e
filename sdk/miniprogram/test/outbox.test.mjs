import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, newClient, nextEvent, waitFor, history } from './helpers.mjs';

let stack;
before(async () => { stack = await startStack(); });
after(async () => { await stack?.close(); });

const outbox = (wx) => wx.getStorageSync('kefu:demo:outbox') || [];
const tokenOf = (wx) => wx.getStorageSync('kefu:demo:auth').token;

async function expectOnce(client, wx, cmid) {
  // The bot may answer after the ack: read the history until the list and
  // the store agree on the newest seq, then compare them whole.
  let all;
  await waitFor('the list and the history to reach the same seq', async () => {
    all = await history(stack.server, tokenOf(wx), client.conversationId);
    return client.lastSeq === all.at(-1).seq;
  });
  const copies = all.filter((m) => m.client_msg_id === cmid);
  assert.equal(copies.length, 1, `exactly one stored message ${cmid}: ${JSON.stringify(all)}`);
  assert.equal(client.messages.filter((m) => m.client_msg_id === cmid).length, 1, 'and once in the list');
  assert.deepEqual(client.messages, all, 'the list is the server history');
  return copies[0];
}

test('a message sent while the server is down survives an app restart and is stored once', async () => {
  const a = newClient(stack);
  await a.client.start();
  const conv = a.client.conversationId;

  await stack.server.stop();
  await nextEvent(a.client, 'status', (e) => e.status === 'reconnecting');
  const sent = a.client.send('断网时发的消息');
  assert.deepEqual(outbox(a.wx).map((e) => e.client_msg_id), [sent.client_msg_id], 'the outbox is in storage at once');
  a.client.destroy(); // the app is killed with the message unsent

  stack.server.url = '';
  await stack.server.start();
  const b = newClient(stack, { storageFile: a.storageFile });
  assert.deepEqual(b.client.pending().map((e) => e.client_msg_id), [sent.client_msg_id], 'the restarted app shows it pending');
  const acked = nextEvent(b.client, 'ack', (e) => e.client_msg_id === sent.client_msg_id);
  await b.client.start();
  assert.equal(b.client.conversationId, conv);
  const ack = await acked;
  assert.equal(ack.message.body.text, '断网时发的消息');
  await waitFor('an empty outbox', () => outbox(b.wx).length === 0);
  const stored = await expectOnce(b.client, b.wx, sent.client_msg_id);
  assert.equal(stored.seq, ack.seq);
  b.client.destroy();
});

test('killed right after sending (the ack never read): the restart stores it once, not twice', async () => {
  for (let round = 0; round < 3; round++) {
    const a = newClient(stack);
    await a.client.start();
    // Let the bot answer the first message, so the list has history.
    const answered = nextEvent(a.client, 'message', (m) => m.from.role === 'bot');
    a.client.send('发票怎么开？');
    await answered;
    const sent = a.client.send('第二条：马上被杀掉 ' + round);
    // The frame is on the wire; the app dies before the ack is read.
    await waitFor('the send frame written', () => a.client._inflight);
    a.client.destroy();
    assert.equal(outbox(a.wx).length, 1);

    const b = newClient(stack, { storageFile: a.storageFile });
    const acks = [];
    b.client.on('ack', (e) => acks.push(e));
    await b.client.start();
    await waitFor('an empty outbox', () => outbox(b.wx).length === 0);
    assert.equal(acks.length, 1, JSON.stringify(acks));
    assert.equal(acks[0].client_msg_id, sent.client_msg_id);
    const stored = await expectOnce(b.client, b.wx, sent.client_msg_id);
    assert.equal(acks[0].seq, stored.seq);
    b.client.destroy();
  }
});

test('permanent refusals are failed events and leave the outbox; later messages still go', async () => {
  const { client, wx } = newClient(stack);
  await client.start();
  const failed = nextEvent(client, 'failed');
  const tooLong = client.send('长'.repeat(5001));
  const next = client.send('这条正常');
  const f = await failed;
  assert.equal(f.client_msg_id, tooLong.client_msg_id);
  assert.equal(f.code, 'body_too_large');
  await nextEvent(client, 'ack', (e) => e.client_msg_id === next.client_msg_id);
  assert.deepEqual(outbox(wx), []);

  await client.close();
  const closedFail = nextEvent(client, 'failed');
  const late = client.send('关闭后再发');
  const cf = await closedFail;
  assert.equal(cf.client_msg_id, late.client_msg_id);
  assert.equal(cf.code, 'conversation_closed');
  assert.deepEqual(outbox(wx), []);
  const all = await history(stack.server, tokenOf(wx), client.conversationId);
  assert.ok(!all.some((m) => m.client_msg_id === tooLong.client_msg_id || m.client_msg_id === late.client_msg_id));
  client.destroy();
});

test('rate_limited sends are retried with the same client_msg_id until stored', async () => {
  const { client, wx } = newClient(stack);
  await client.start();
  // Flood the socket past its frame rate (20/s, bursts of 40) with raw
  // typing frames (typing() itself is throttled, hence the internal
  // _sendFrame), then send: the send is dropped as rate_limited and must be
  // retried.
  const errors = [];
  client.on('error', (e) => errors.push(e));
  const retried = [];
  const origSend = client._sendFrame.bind(client);
  client._sendFrame = (f) => {
    if (f.type === 'send') retried.push(f.client_msg_id);
    return origSend(f);
  };
  for (let i = 0; i < 45; i++) client._sendFrame({ type: 'typing', conv: client.conversationId, on: i % 2 === 0 });
  const sent = client.send('限流后的消息');
  await nextEvent(client, 'ack', (e) => e.client_msg_id === sent.client_msg_id, 20_000);
  assert.ok(retried.length >= 2, `sent ${retried.length} time(s)`);
  assert.ok(retried.every((id) => id === sent.client_msg_id));
  assert.deepEqual(outbox(wx), []);
  await expectOnce(client, wx, sent.client_msg_id);
  client.destroy();
});

test('unsent messages follow the user to a new conversation when their sign-in changes', async () => {
  const a = newClient(stack);
  await a.client.start();
  const lost = a.client.conversationId;
  a.client.destroy();
  // The visitor token goes bad: the next sign-in is a new visitor, who
  // cannot reach the old conversation.
  const saved = a.wx.getStorageSync('kefu:demo:auth');
  a.wx.setStorageSync('kefu:demo:auth', { ...saved, token: saved.token.slice(0, -4) + 'AAAA' });

  const b = newClient(stack, { storageFile: a.storageFile });
  const sent = b.client.send('换了身份也要送达');
  assert.equal(sent.conv, lost);
  const failed = [];
  b.client.on('failed', (e) => failed.push(e));
  const acked = nextEvent(b.client, 'ack', (e) => e.client_msg_id === sent.client_msg_id);
  await b.client.start();
  const ack = await acked;
  assert.notEqual(b.client.conversationId, lost);
  assert.equal(ack.conv, b.client.conversationId);
  assert.notEqual(b.client.me.id, saved.user_id);
  assert.deepEqual(failed, []);
  await expectOnce(b.client, b.wx, sent.client_msg_id);
  b.client.destroy();
});
