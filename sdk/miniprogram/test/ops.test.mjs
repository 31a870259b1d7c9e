import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, newClient, nextEvent, KefuError } from './helpers.mjs';
import { startFakeLLM } from './fake-llm.mjs';

let stack;
let llm;
before(async () => {
  llm = await startFakeLLM(['您好，', '本店蜂蜜', '产自云南。']);
  stack = await startStack({ KEFU_BOT_LLM_BASE_URL: llm.url, KEFU_BOT_LLM_MODEL: 'test-model' });
});
after(async () => {
  await stack?.close();
  await llm?.close();
});

test('an LLM answer streams as bot_delta events, then arrives whole as a message', async () => {
  const { client } = newClient(stack);
  await client.start();
  const deltas = [];
  client.on('bot_delta', (e) => deltas.push(e));
  const answer = nextEvent(client, 'message', (m) => m.from.role === 'bot');
  client.send('你们卖的蜂蜜是哪里产的');
  const m = await answer;
  assert.match(m.body.text, /产自云南/);
  assert.ok(deltas.length >= 2, JSON.stringify(deltas));
  assert.match(deltas.at(-1).draft, /产自云南/, 'draft accumulates the pieces');
  assert.equal(client.botDraft, '', 'the stored answer replaces the draft');
  client.destroy();
});

test('escalate, close, rate, reopen and a new conversation', async (t) => {
  const { client, ui, storageFile } = newClient(stack);
  await client.start();
  const first = client.conversationId;

  const queued = nextEvent(client, 'state', (e) => e.state === 'QUEUED');
  const queue = nextEvent(client, 'queue');
  await client.escalate();
  assert.equal((await queued).reason, 'user_request');
  assert.equal((await queue).position, 1);
  assert.equal(client.state, 'QUEUED');

  const closedState = nextEvent(client, 'state', (e) => e.state === 'CLOSED');
  const done = await client.close();
  assert.equal(done.op, 'close');
  assert.equal(done.state, 'CLOSED');
  assert.equal((await closedState).reason, 'user_closed');
  assert.equal(client.queue, null, 'no queue position once closed');

  const rated = await client.rate(5, '很满意');
  assert.equal(rated.op, 'rate');
  assert.equal(rated.rating.score, 5);
  // One rating per closure.
  await assert.rejects(client.rate(4), (err) => err instanceof KefuError && err.code === 'invalid_state');

  const reopened = await client.reopen();
  assert.equal(reopened.op, 'reopen');
  assert.ok(['BOT', 'QUEUED'].includes(reopened.state), reopened.state);

  // A refused op rejects with the server's code.
  await assert.rejects(client.reopen(), (err) => err instanceof KefuError && err.code === 'invalid_state');

  const switched = nextEvent(client, 'conversation');
  const second = await client.newConversation();
  assert.notEqual(second, first);
  assert.equal((await switched).id, second);
  assert.equal(client.conversationId, second);
  assert.deepEqual(client.messages, []);
  const answer = nextEvent(client, 'message', (m) => m.from.role === 'bot' && m.conv === second);
  client.send('发票怎么开？');
  await answer;
  assert.ok(client.messages.every((m) => m.conv === second));
  assert.ok(ui.some((m) => m.conv === first) && ui.some((m) => m.conv === second));

  // A restart continues the newest conversation.
  client.destroy();
  const again = newClient(stack, { storageFile });
  await again.client.start();
  assert.equal(again.client.conversationId, second);
  assert.deepEqual(again.client.messages, client.messages);
  again.client.destroy();
});
