import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, newClient, nextEvent, waitFor, history, createAgent, staffLogin, Agent } from './helpers.mjs';

let stack;
before(async () => { stack = await startStack(); });
after(async () => { await stack?.close(); });

test('exact resume after the server dies, while an agent keeps talking', { timeout: 120_000 }, async () => {
  const { server } = stack;
  const acct = await createAgent(server, 'resume-agent', { capacity: 5 });
  const agentToken = (await staffLogin(server, acct.username, acct.password)).access_token;
  let agent = await Agent.connect(server, agentToken);

  // Small pages: the SDK pages several times on each resume.
  const { client, wx, ui } = newClient(stack, { pageSize: 3 });
  const seen = [];
  client.on('messages', (e) => seen.push(...e.messages.map((m) => m.seq)));
  client.on('message', (m) => seen.push(m.seq));
  await client.start();
  const conv = client.conversationId;

  const bot = nextEvent(client, 'message', (m) => m.from.role === 'bot');
  client.send('你好，我的快递到哪了？');
  await bot;
  // The agent is online with free capacity: routing assigns it at once.
  const assigned = nextEvent(client, 'state', (e) => e.state === 'ASSIGNED');
  await client.escalate();
  assert.equal((await assigned).agent_id, acct.id);
  assert.equal(client.agentId, acct.id);
  await agent.follow(conv);
  for (let i = 1; i <= 3; i++) await agent.say(conv, `客服消息 ${i}`);
  await waitFor('the agent messages', () => client.messages.filter((m) => m.from.role === 'agent').length === 3);

  for (const signal of ['SIGKILL', 'SIGTERM']) {
    await server.stop(signal);
    await agent.closed;
    // The phone is offline too until the agent has talked for a while, so
    // the SDK has a backlog to page through when it comes back.
    wx.setOnline(false);
    await waitFor('the SDK to notice', () => client.status === 'reconnecting' || client.status === 'connecting');
    const offline = client.send(`掉线时发的 (${signal})`);

    server.url = '';
    await server.start();
    agent = await Agent.connect(server, agentToken);
    await agent.follow(conv);
    for (let i = 1; i <= 5; i++) await agent.say(conv, `${signal} 重启后 ${i}`);
    // Pushes that arrive while the SDK pages (the server holds them; the
    // SDK must not deliver them twice or before their turn).
    const during = [];
    const onPage = (e) => { if (e.more) during.push(agent.say(conv, `${signal} 翻页时 ${during.length + 1}`)); };
    client.on('messages', onPage);
    const open = nextEvent(client, 'status', (e) => e.status === 'open', 20_000);
    wx.setOnline(true); // no event: the SDK's own retry must find the way back
    await open;
    client.off('messages', onPage);
    await Promise.all(during);
    // And pushes once it is live.
    for (let i = 1; i <= 3; i++) await agent.say(conv, `${signal} 之后 ${i}`);

    const all = await waitFor('the SDK to catch up', async () => {
      const h = await history(server, wx.getStorageSync('kefu:demo:auth').token, conv);
      return client.pending().length === 0 && client.lastSeq === h.at(-1).seq && h;
    });
    assert.ok(during.length >= 1, 'some agent messages were sent while the SDK paged');
    assert.equal(all.filter((m) => m.client_msg_id === offline.client_msg_id).length, 1);
    assert.deepEqual(all.map((m) => m.seq), all.map((_, i) => i + 1), 'the server history is gapless');
    assert.deepEqual(client.messages, all, `the list is the server history after ${signal}`);
    assert.deepEqual(ui, all, 'and so is what the events showed');
    assert.deepEqual(seen, all.map((m) => m.seq), 'each seq delivered once, in order');
  }
  client.destroy();
  await agent.close();
});
