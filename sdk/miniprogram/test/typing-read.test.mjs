import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, newClient, nextEvent, waitFor, createAgent, staffLogin, Agent } from './helpers.mjs';

let stack;
before(async () => { stack = await startStack(); });
after(async () => { await stack?.close(); });

test('typing and read receipts reach the other side, both ways', async () => {
  const acct = await createAgent(stack.server, 'typing-agent');
  const agent = await Agent.connect(stack.server, (await staffLogin(stack.server, acct.username, acct.password)).access_token);
  const { client } = newClient(stack, { typingIntervalMs: 400 });
  await client.start();
  const conv = client.conversationId;
  const queued = nextEvent(client, 'state', (e) => e.state === 'QUEUED');
  await client.escalate();
  await queued;
  await agent.op({ type: 'accept', conv });
  await agent.follow(conv);

  // The user types: throttled to one "on", then "off" when they stop.
  const mark = agent.frames.length;
  client.typing(true);
  client.typing(true);
  client.typing(true);
  client.typing(false);
  const off = await agent.next((f) => f.type === 'typing' && f.on === false, 'typing off', { from: mark });
  assert.deepEqual(off.from, client.me);
  const typing = agent.frames.slice(mark).filter((f) => f.type === 'typing');
  assert.deepEqual(typing.map((f) => f.on), [true, false]);

  // Typing that is never ended stops by itself after typingIntervalMs.
  const mark2 = agent.frames.length;
  client.typing();
  await agent.next((f) => f.type === 'typing' && f.on === false, 'typing off by itself', { from: mark2 });

  // The agent types: the SDK tells the UI.
  const seen = nextEvent(client, 'typing');
  agent.send({ type: 'typing', conv, on: true });
  const t = await seen;
  assert.equal(t.on, true);
  assert.equal(t.from.id, acct.id);

  // The agent writes; the user reads: the agent learns how far.
  const arrived = nextEvent(client, 'message', (m) => m.from.role === 'agent');
  const ack = await agent.say(conv, '您好，请问有什么可以帮您？');
  assert.equal((await arrived).seq, ack.seq);
  const mark3 = agent.frames.length;
  client.markRead();
  const read = await agent.next((f) => f.type === 'read' && f.by.id === client.me.id, 'the user read receipt', { from: mark3 });
  assert.equal(read.seq, ack.seq);
  await waitFor('the SDK own pointer', () => client.reads['user:' + client.me.id] === ack.seq);
  client.markRead(ack.seq - 1); // never backwards, and not sent again

  // The agent reads the user's message: the SDK reports it as not mine.
  const sent = client.send('我的订单一直没发货');
  const mine = await nextEvent(client, 'ack', (e) => e.client_msg_id === sent.client_msg_id);
  const theirs = nextEvent(client, 'read', (e) => !e.mine);
  agent.send({ type: 'read', conv, seq: mine.seq });
  const r = await theirs;
  assert.equal(r.seq, mine.seq);
  assert.equal(r.by.id, acct.id);
  assert.equal(client.reads['agent:' + acct.id], mine.seq);
  assert.equal(agent.frames.slice(mark3).filter((f) => f.type === 'read' && f.by.id === client.me.id).length, 1);
  client.destroy();
  await agent.close();
});

test('read pointers come with the history after a restart', async () => {
  const acct = await createAgent(stack.server, 'reader-agent');
  const agent = await Agent.connect(stack.server, (await staffLogin(stack.server, acct.username, acct.password)).access_token);
  const a = newClient(stack);
  await a.client.start();
  const conv = a.client.conversationId;
  const sent = a.client.send('在吗');
  const ack = await nextEvent(a.client, 'ack');
  assert.equal(ack.client_msg_id, sent.client_msg_id);
  await agent.follow(conv);
  const told = nextEvent(a.client, 'read', (e) => !e.mine);
  agent.send({ type: 'read', conv, seq: ack.seq });
  await told;
  a.client.destroy();

  const b = newClient(stack, { storageFile: a.storageFile });
  const reads = [];
  b.client.on('read', (e) => reads.push(e));
  await b.client.start();
  assert.ok(reads.some((e) => !e.mine && e.by.id === acct.id && e.seq === ack.seq), JSON.stringify(reads));
  b.client.destroy();
  await agent.close();
});
