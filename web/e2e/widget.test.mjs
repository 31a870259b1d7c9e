import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startKefu } from '../../scripts/testkit/kefu-server.mjs';
import { launch, openWidget, say, screenshot } from './browser.mjs';

let server, browser;
before(async () => { server = await startKefu(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.close(); });

test('a customer asks the widget a question and gets the FAQ answer', async () => {
  const page = await openWidget(browser, server);
  await say(page, '付款后还能取消订单吗');
  const answer = page.locator('.row[data-role=bot] .bubble').filter({ hasText: '未发货的订单可在' });
  await answer.waitFor();
  // The question is stored (it has a seq) and shown once, before the answer.
  const mine = page.locator('.row[data-role=user] .bubble', { hasText: '付款后还能取消订单吗' });
  assert.equal(await mine.count(), 1);
  await page.locator('[data-test=pending]').waitFor({ state: 'detached' });
  const seqs = await page.locator('[data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'messages are shown in seq order without gaps');
  await screenshot(page, 'widget-faq-answer');
});
