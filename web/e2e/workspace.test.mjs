// The agent's tools in the workspace: the assignment alert, quick
// replies, knowledge-base answers, private notes, tags, hold, typing, and
// the English locale and phone layout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_PASSWORD, api, createAgent, staffLogin, startKefu } from '../../scripts/testkit/kefu-server.mjs';
import { launch, openInWorkspace, openWidget, say, screenshot, seqsOf, signIn, widgetConversation } from './browser.mjs';

let server, browser, carol, agent, customer, conv;

before(async () => {
  server = await startKefu();
  browser = await launch();
  carol = await createAgent(server, 'carol', { displayName: 'Carol' });
  agent = await signIn(browser, server, carol.username, carol.password);
  customer = await openWidget(browser, server);
  await say(customer, '付款后还能取消订单吗');
  await customer.locator('.row[data-role=bot]').first().waitFor();
  await customer.click('[data-test=human]');
  await customer.waitForSelector('.chat[data-state=ASSIGNED]');
  conv = await widgetConversation(customer);
});
after(async () => { await browser?.close(); await server?.close(); });

const bubble = (page, role, text) => page.locator(`[data-role=${role}] .bubble`, { hasText: text });

test('an assignment alerts the agent and lands in their list', async () => {
  await agent.locator('.el-notification', { hasText: '新会话分配给你' }).waitFor();
  await agent.locator(`[data-test=list-mine] .item[data-conv="${conv}"]`).waitFor();
  await openInWorkspace(agent, 'mine', conv);
  await agent.waitForSelector('[data-test=state][data-state=ASSIGNED]');
});

test('typing / and a shortcut picks a quick reply', async () => {
  await agent.fill('textarea[data-test=composer]', '/h');
  await agent.locator('[data-test=canned-pop] li', { hasText: '/hi' }).waitFor();
  await agent.press('textarea[data-test=composer]', 'Enter');
  assert.match(await agent.inputValue('textarea[data-test=composer]'), /请问有什么可以帮您/);
  await agent.click('[data-test=send]');
  await bubble(customer, 'agent', '请问有什么可以帮您').waitFor();
});

test('the knowledge base suggests an answer to the question, and search finds others', async () => {
  await agent.click('.side .el-tabs__item:has-text("知识库")');
  const suggestion = agent.locator('[data-test=assist-item]', { hasText: '未发货的订单可在' });
  await suggestion.waitFor();
  await suggestion.locator('[data-test=insert]').click();
  assert.match(await agent.inputValue('textarea[data-test=composer]'), /未发货的订单可在/);
  await agent.click('[data-test=send]');
  await bubble(customer, 'agent', '未发货的订单可在').waitFor();

  await agent.fill('input[data-test=kb-search]', '地址填错了');
  await agent.press('input[data-test=kb-search]', 'Enter');
  await agent.locator('[data-test=kb-result]', { hasText: '修改收货地址' }).first().waitFor();
  await screenshot(agent, 'workspace-knowledge');
});

test('a private note is seen by staff, never by the customer', async () => {
  await agent.click('.side .el-tabs__item:has-text("备注")');
  await agent.fill('textarea[data-test=note-input]', '老客户，注意语气');
  await agent.click('[data-test=note-add]');
  await agent.locator('[data-test=notes] .note', { hasText: '老客户，注意语气' }).waitFor();
  // The customer's page gets something later (this reply), never the note.
  await agent.fill('textarea[data-test=composer]', '已为您查询');
  await agent.click('[data-test=send]');
  await bubble(customer, 'agent', '已为您查询').waitFor();
  assert.ok(!(await customer.textContent('body')).includes('老客户'));
});

test('tags on the customer, typing, hold and resume', async () => {
  await agent.click('.side .el-tabs__item:has-text("客户")');
  await agent.fill('[data-test=customer] input', '回头客');
  await agent.press('[data-test=customer] input', 'Enter');
  await agent.locator('[data-test=customer] .el-tag', { hasText: '回头客' }).waitFor();
  const admin = await staffLogin(server, 'admin', ADMIN_PASSWORD);
  const user = (await api(server, 'GET', `/v1/conversations?state=ASSIGNED`, { token: admin.access_token })).conversations.find((c) => c.id === conv).user_id;
  const profile = await api(server, 'GET', `/v1/customers/${user}`, { token: admin.access_token });
  assert.deepEqual(profile.customer.tags, ['回头客']);

  await customer.type('[data-test=input]', '好的');
  await agent.locator('[data-test=typing]').waitFor();

  await agent.click('[data-test=hold]');
  await agent.waitForSelector('[data-test=state][data-state=ON_HOLD]');
  await agent.click('[data-test=tab-hold]');
  await agent.locator(`[data-test=list-hold] .item[data-conv="${conv}"]`).waitFor();
  await agent.click('[data-test=unhold]');
  await agent.waitForSelector('[data-test=state][data-state=ASSIGNED]');
  await agent.click('[data-test=tab-mine]');
  await agent.locator(`[data-test=list-mine] .item[data-conv="${conv}"]`).waitFor();
});

test('a long conversation opens at its newest messages, pages back, and counts unread', async () => {
  const second = await openWidget(browser, server);
  // 27 questions and 27 answers: more than the 50 messages a conversation opens at.
  for (let i = 1; i <= 27; i++) await say(second, `第${i}个问题：运费怎么算`);
  await second.waitForFunction(() => document.querySelectorAll('.messages [data-seq]').length >= 54, null, { timeout: 60000 });
  await second.click('[data-test=human]');
  await second.waitForSelector('.chat[data-state=ASSIGNED]');
  const long = await widgetConversation(second);

  // Carol still looks at the first conversation: the new one shows unread.
  await agent.click('[data-test=tab-mine]');
  const item = agent.locator(`[data-test=list-mine] .item[data-conv="${long}"]`);
  await item.locator('[data-test=unread]').waitFor();
  assert.ok(Number(await item.locator('[data-test=unread] sup').textContent()) > 0);

  await item.click();
  await agent.locator('[data-test=older]').waitFor();
  const first = await seqsOf(agent);
  assert.ok(first.length <= 51 && first[0] > 1, `opens at the newest messages, got ${first[0]}..${first.at(-1)}`);
  await agent.click('[data-test=older]');
  await agent.waitForFunction((n) => document.querySelectorAll('.chat-msgs [data-seq]').length > n, first.length);
  const paged = await seqsOf(agent);
  assert.ok(paged[0] < first[0]);
  assert.deepEqual(paged, paged.map((_, i) => paged[0] + i), 'older and newer pages join without a gap');
  await item.locator('[data-test=unread]').waitFor({ state: 'detached' });
  await second.context().close();
});

test('the widget speaks English on request, and the workspace fits a phone', async () => {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 780 }, isMobile: true });
  const en = await ctx.newPage();
  await en.goto(`${server.url}/chat/?tenant=demo&lang=en`);
  await en.locator('[data-test=human]', { hasText: 'Talk to a person' }).waitFor();
  assert.equal(await en.getAttribute('[data-test=input]', 'placeholder'), 'Type your question');
  await ctx.close();

  await agent.setViewportSize({ width: 390, height: 780 });
  await agent.click('.chat-head button:has-text("返回")');
  await agent.locator('.conv-list').waitFor();
  assert.equal(await agent.locator('.chat-pane').count(), 0, 'on a phone the list and the chat take turns');
  await agent.click(`[data-test=list-mine] .item[data-conv="${conv}"]`);
  await agent.locator('.chat-pane textarea[data-test=composer]').waitFor();
  await screenshot(agent, 'workspace-phone');
});
