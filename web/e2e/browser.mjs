// Real Chromium for the UI tests: Debian's chromium driven by
// playwright-core, with the flags a sandboxless, offline machine needs.
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const artifacts = process.env.KEFU_ARTIFACTS || join(dirname(fileURLToPath(import.meta.url)), 'artifacts');

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', // CI runs as root, where Chromium's sandbox cannot start
      '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-extensions',
      '--disable-domain-reliability', '--no-proxy-server', '--metrics-recording-only',
      '--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,CertificateTransparencyComponentUpdater',
    ],
  });
}

// screenshot keeps a picture of the page as a test artifact.
export async function screenshot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

// signIn opens the workspace in a fresh context and signs a member of
// staff in; it resolves once their socket is connected.
export async function signIn(browser, server, username, password) {
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
  const page = await context.newPage();
  await page.goto(`${server.url}/workspace/`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await page.click('[data-test=login]');
  await page.waitForSelector('.ws[data-status=open]');
  return page;
}

// openWidget opens the chat widget as a new visitor on a phone-sized screen.
export async function openWidget(browser, server) {
  const context = await browser.newContext({ viewport: { width: 390, height: 780 }, isMobile: true, hasTouch: true, locale: 'zh-CN' });
  const page = await context.newPage();
  await page.goto(`${server.url}/chat/?tenant=demo`);
  await page.waitForSelector('.chat[data-status=open][data-state=BOT]');
  return page;
}

// say types a message into the widget and sends it.
export async function say(page, text) {
  await page.fill('[data-test=input]', text);
  await page.click('[data-test=send]');
}

// widgetConversation is the id of the conversation the widget shows.
export function widgetConversation(page) {
  return page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith('kefu.conv.'));
    return key ? localStorage.getItem(key) : null;
  });
}

// seqsOf lists the seqs a page shows, in order.
export function seqsOf(page) {
  return page.locator('[data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
}

// openInWorkspace shows a conversation from one of the workspace's lists.
export async function openInWorkspace(page, tab, conv) {
  await page.click(`[data-test=tab-${tab}]`);
  await page.click(`[data-test=list-${tab}] .item[data-conv="${conv}"]`);
  await page.waitForSelector('.chat-pane [data-test=composer], .chat-pane [data-test=accept]');
}

// reply sends a message from the workspace's composer.
export async function reply(page, text) {
  await page.fill('textarea[data-test=composer]', text);
  await page.click('[data-test=send]');
}
