import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, newClient, nextEvent, waitFor, history } from './helpers.mjs';

let stack;
before(async () => { stack = await startStack(); });
after(async () => { await stack?.close(); });

const fromBot = (m) => m.from.role === 'bot';

test('a FAQ question: the ack, then the bot answer arrives as a message event', async () => {
  const { client, ui } = newClient(stack);
  await client.start();
  const pending = nextEvent(client, 'pending');
  const acked = nextEvent(client, 'ack');
  const answer = nextEvent(client, 'message', fromBot);
  const sent = client.send('支持7天无理由退货吗？');
  assert.equal((await pending).client_msg_id, sent.client_msg_id);
  assert.deepEqual(client.pending().map((e) => e.client_msg_id), [sent.client_msg_id]);
  const ack = await acked;
  assert.equal(ack.client_msg_id, sent.client_msg_id);
  assert.equal(ack.dup, false);
  const m = await answer;
  assert.equal(m.body.type, 'text');
  assert.match(m.body.text, /7天内/);
  assert.equal(m.seq, ack.seq + 1);
  assert.deepEqual(client.pending(), []);
  // The list (and what the events showed) is the server's history.
  const token = client.wx.getStorageSync('kefu:demo:auth').token;
  const server = await history(stack.server, token, client.conversationId);
  assert.deepEqual(client.messages, server);
  assert.deepEqual(ui, server);
  client.destroy();
});

test('"did you mean": quick_reply options; tapping one sends its text and gets the answer', async () => {
  const { client } = newClient(stack);
  await client.start();
  const offer = nextEvent(client, 'message', fromBot);
  client.send('怎么退货');
  const qr = await offer;
  assert.equal(qr.body.type, 'quick_reply');
  assert.ok(qr.body.options.length >= 2, JSON.stringify(qr.body));
  const option = qr.body.options.find((o) => o.text.includes('运费')) || qr.body.options[0];
  const answer = nextEvent(client, 'message', (m) => fromBot(m) && m.seq > qr.seq);
  const sent = client.sendOption(option);
  assert.deepEqual(sent.body, { type: 'text', text: option.text });
  const a = await answer;
  assert.equal(a.body.type, 'text');
  const mine = client.messages.find((m) => m.client_msg_id === sent.client_msg_id);
  assert.equal(mine.from.id, client.me.id);
  assert.equal(mine.body.text, option.text);
  client.destroy();
});

test('"转人工" from the bot: the hand-over message, state QUEUED and a queue position', async () => {
  const { client } = newClient(stack);
  await client.start();
  const queued = nextEvent(client, 'state', (e) => e.state === 'QUEUED');
  const queue = nextEvent(client, 'queue');
  client.send('转人工');
  await queued;
  const q = await queue;
  assert.equal(q.position, 1);
  assert.equal(client.queue.position, 1);
  // No agent is online in this stack: Kefu says so and offers to leave a message.
  assert.equal(q.available, false);
  await waitFor('the system message', () => client.messages.find((m) => m.body.type === 'system'));
  client.destroy();
});
