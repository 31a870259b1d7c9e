// The whole life of a conversation through the two UIs: the bot, the
// queue, an agent, a transfer, the close and the rating, and a server
// restart under open pages.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_PASSWORD, api, createAgent, staffLogin, startKefu } from '../../scripts/testkit/kefu-server.mjs';
import { launch, openInWorkspace, openWidget, reply, say, screenshot, seqsOf, signIn, widgetConversation } from './browser.mjs';

let server, browser, alice, bob, customer, conv;

before(async () => {
  server = await startKefu();
  browser = await launch();
  alice = await createAgent(server, 'alice', { displayName: 'Alice' });
  bob = await createAgent(server, 'bob', { displayName: 'Bob' });
});
after(async () => { await browser?.close(); await server?.close(); });

const gone = (locator) => locator.waitFor({ state: 'detached' });

test('the customer asks for a person; an away agent sees it queued, accepts and replies', async () => {
  alice.page = await signIn(browser, server, alice.username, alice.password);
  // Away: routing gives her nothing, so the conversation waits in the queue.
  await alice.page.click('[data-test=presence]');
  await alice.page.waitForFunction(() => !document.querySelector('[data-test=presence]').classList.contains('is-checked'));

  customer = await openWidget(browser, server);
  await say(customer, '我的快递到哪了');
  await customer.locator('.row[data-role=bot]').first().waitFor();
  await customer.click('[data-test=human]');
  await customer.waitForSelector('.chat[data-state=QUEUED]');
  await customer.locator('[data-test=queue]').waitFor();
  conv = await widgetConversation(customer);
  assert.ok(conv);

  await alice.page.click('[data-test=tab-queued]');
  await alice.page.locator(`[data-test=list-queued] .item[data-conv="${conv}"]`).waitFor({ timeout: 15000 });
  await openInWorkspace(alice.page, 'queued', conv);
  // The bot's part is visible to the agent, with its hand-over summary.
  await alice.page.locator('.chat-msgs .msg[data-role=user] .bubble', { hasText: '我的快递到哪了' }).waitFor();
  await alice.page.locator('.chat-msgs .msg[data-role=bot]').first().waitFor();
  await alice.page.locator('[data-test=summary]').waitFor();
  await screenshot(alice.page, 'workspace-queued');
  await alice.page.click('[data-test=accept]');
  await alice.page.waitForSelector('[data-test=state][data-state=ASSIGNED]');

  await reply(alice.page, '您好，我是 Alice，我来帮您查一下快递');
  await customer.locator('.row[data-role=agent] .bubble', { hasText: '我是 Alice' }).waitFor();
  await customer.waitForSelector('.chat[data-state=ASSIGNED]');
  // The customer read it, and the agent sees that.
  await alice.page.locator('.chat-msgs .msg.mine .meta', { hasText: '已读' }).waitFor();
  await screenshot(customer, 'widget-agent-reply');
  await screenshot(alice.page, 'workspace-assigned');
});

test('the agent transfers the conversation to a colleague, who answers', async () => {
  bob.page = await signIn(browser, server, bob.username, bob.password);
  await alice.page.click('[data-test=transfer]');
  await alice.page.click('[data-test=pick-agent]');
  await alice.page.click(`.el-select-dropdown__item:has-text("Bob")`);
  await alice.page.click('[data-test=confirm]');

  await bob.page.locator(`[data-test=list-mine] .item[data-conv="${conv}"]`).waitFor();
  await gone(alice.page.locator(`[data-test=list-mine] .item[data-conv="${conv}"]`));
  await openInWorkspace(bob.page, 'mine', conv);
  // Bob sees everything said before he joined.
  await bob.page.locator('.chat-msgs .msg .bubble', { hasText: '我是 Alice' }).waitFor();
  await reply(bob.page, '您好，我是 Bob，包裹明天送达');
  await customer.locator('.row[data-role=agent] .bubble', { hasText: '我是 Bob' }).waitFor();
  await screenshot(bob.page, 'workspace-transferred');
});

test('the agent closes the conversation and the customer rates it', async () => {
  await bob.page.click('[data-test=close]');
  await bob.page.click('[data-test=confirm]');
  await bob.page.waitForSelector('[data-test=state][data-state=CLOSED]');

  await customer.locator('[data-test=rating]').waitFor();
  await customer.click('.star[data-score="4"]');
  await customer.fill('[data-test=rating] textarea', '很快就解决了');
  await customer.click('[data-test=rate-submit]');
  await customer.locator('[data-test=rated]').waitFor();
  await screenshot(customer, 'widget-rated');

  const admin = await staffLogin(server, 'admin', ADMIN_PASSWORD);
  const { conversations } = await api(server, 'GET', '/v1/conversations?state=CLOSED', { token: admin.access_token });
  const closed = conversations.find((c) => c.id === conv);
  assert.equal(closed?.rating?.score, 4);
  assert.equal(closed?.rating?.comment, '很快就解决了');
});

test('after a server restart the pages reconnect by themselves and resume exactly', async () => {
  // A new conversation, served by Bob.
  await customer.click('[data-test=new-chat]');
  await customer.waitForSelector('.chat[data-state=BOT]');
  await say(customer, '人工客服');
  // Bob is online with free capacity: routing assigns it to him at once.
  await customer.waitForSelector('.chat[data-state=ASSIGNED]');
  conv = await widgetConversation(customer);
  await bob.page.locator(`[data-test=list-mine] .item[data-conv="${conv}"]`).waitFor();
  await openInWorkspace(bob.page, 'mine', conv);
  await reply(bob.page, '重启前的回复');
  await customer.locator('.row[data-role=agent] .bubble', { hasText: '重启前的回复' }).waitFor();

  await server.stop();
  await bob.page.locator('[data-test=connection]').waitFor();
  await customer.locator('[data-test=connection]').waitFor();
  // Sent while the server is down: it waits in the outbox.
  await reply(bob.page, '断线时发出的回复');
  await bob.page.locator('[data-test=pending]').waitFor();
  await server.start();

  await bob.page.waitForSelector('.ws[data-status=open]', { timeout: 30000 });
  await customer.waitForSelector('.chat[data-status=open]', { timeout: 30000 });
  await gone(bob.page.locator('[data-test=pending]'));
  await say(customer, '重启后的问题');
  await bob.page.locator('.chat-msgs .msg[data-role=user] .bubble', { hasText: '重启后的问题' }).waitFor();
  await customer.locator('.row[data-role=agent] .bubble', { hasText: '断线时发出的回复' }).waitFor();
  await gone(customer.locator('[data-test=pending]'));

  // Both pages show exactly the stored history: every seq once, in order.
  const admin = await staffLogin(server, 'admin', ADMIN_PASSWORD);
  const history = await api(server, 'GET', `/v1/conversations/${conv}/messages?after_seq=0&limit=200`, { token: admin.access_token });
  const stored = history.messages.map((m) => m.seq);
  assert.equal(history.messages.filter((m) => m.body.text === '断线时发出的回复').length, 1, 'the outbox message is stored once');
  await bob.page.waitForFunction((n) => document.querySelectorAll('.chat-msgs [data-seq]').length === n, stored.length);
  assert.deepEqual(await seqsOf(bob.page), stored);
  await customer.waitForFunction((n) => document.querySelectorAll('.messages [data-seq]').length === n, stored.length);
  assert.deepEqual(await seqsOf(customer), stored);
  await screenshot(bob.page, 'workspace-after-restart');
});
