// The SDK and the demo as the mini-program runtime gets them: ES2017
// scripts, a fresh copy of the SDK inside the demo, pages whose templates
// call handlers that exist, and the chat page driven against a real kefu.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import * as acorn from 'acorn';
import { startStack, newClient, waitFor } from './helpers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const demo = join(root, 'demo');
const read = (p) => readFileSync(p, 'utf8');

function scripts(dir) {
  return readdirSync(dir, { recursive: true }).filter((f) => f.endsWith('.js')).map((f) => join(dir, f));
}

test('the SDK and the demo scripts are ES2017', () => {
  for (const file of [join(root, 'kefu', 'kefu.js'), ...scripts(demo)]) {
    assert.doesNotThrow(() => acorn.parse(read(file), { ecmaVersion: 2017, sourceType: 'script' }), file);
  }
});

test('demo/libs/kefu.js is the SDK as it is (npm run demo:sync)', () => {
  assert.equal(read(join(demo, 'libs', 'kefu.js')), read(join(root, 'kefu', 'kefu.js')));
});

test('every page of app.json has its four files and its template calls handlers that exist', () => {
  JSON.parse(read(join(demo, 'project.config.json')));
  const app = JSON.parse(read(join(demo, 'app.json')));
  for (const page of app.pages) {
    for (const ext of ['js', 'json', 'wxml', 'wxss']) assert.ok(existsSync(join(demo, `${page}.${ext}`)), `${page}.${ext}`);
    JSON.parse(read(join(demo, `${page}.json`)));
    const def = loadPage(join(demo, `${page}.js`), {});
    const handlers = [...read(join(demo, `${page}.wxml`)).matchAll(/\b(?:bind|catch)\w+="(\w+)"/g)].map((m) => m[1]);
    assert.ok(handlers.length > 0);
    for (const h of handlers) assert.equal(typeof def[h], 'function', `${page}: ${h}`);
  }
});

// loadPage runs a page script as the runtime would and returns the object
// it passed to Page().
function loadPage(file, { kefu, wx = {} }) {
  let def;
  vm.runInNewContext(read(file), {
    Page: (d) => { def = d; },
    getApp: () => ({ globalData: { kefu } }),
    wx,
    require: createRequire(file),
    console,
    setTimeout,
    clearTimeout,
  }, { filename: file });
  return def;
}

// mount makes a page instance with setData, as the runtime does.
function mount(def) {
  const page = { ...def, data: structuredClone(def.data) };
  page.setData = (patch) => Object.assign(page.data, structuredClone(patch));
  return page;
}

let stack;
before(async () => { stack = await startStack(); });
after(async () => { await stack?.close(); });

test('the chat page against a real kefu: ask, tap a chip, ask for a person, close, rate, start again', async () => {
  const { client, wx } = newClient(stack);
  const toasts = [];
  wx.showToast = (o) => toasts.push(o.title);
  const page = mount(loadPage(join(demo, 'pages', 'chat', 'chat.js'), { kefu: client, wx }));
  page.onLoad({});
  page.onShow();
  await waitFor('the page to connect', () => page.data.status === 'open' && page.data.state === 'BOT');

  page.onInput({ detail: { value: '怎么退货' } });
  page.onSend();
  assert.equal(page.data.input, '');
  assert.deepEqual(page.data.items.at(-1), { key: page.data.items.at(-1).key, mine: true, pending: true, text: '怎么退货' });
  const offer = await waitFor('the chips', () => page.data.items.find((i) => i.options));
  assert.equal(offer.who, '智能助手');
  assert.ok(page.data.items.every((i) => !i.pending));
  const chip = offer.options[0];
  page.onOption({ currentTarget: { dataset: { id: chip.id, text: chip.text } } });
  await waitFor('the answer to the chip', () => page.data.items.length >= 4 && page.data.items.at(-1).who === '智能助手' && !page.data.items.at(-1).options);
  assert.equal(page.data.items.at(-2).text, chip.text);
  assert.equal(page.data.scrollTo, page.data.items.at(-1).key);

  page.onEscalate();
  await waitFor('the queue banner', () => page.data.state === 'QUEUED' && page.data.queueText);
  assert.match(page.data.queueText, /没有客服在线/);

  page.onCloseConversation();
  await waitFor('the rating', () => page.data.state === 'CLOSED');
  assert.equal(page.data.queueText, '');
  page.onRate({ currentTarget: { dataset: { score: '5' } } });
  await waitFor('the rating answer', () => page.data.rated === 5 || toasts.includes('评价功能暂不可用'));

  const first = client.conversationId;
  page.onNewConversation();
  await waitFor('a new conversation', () => client.conversationId !== first && page.data.state === 'BOT');
  assert.deepEqual(page.data.items, []);

  page.onUnload();
  assert.equal(client._handlers.message?.length ?? 0, 1, 'only the test helper still listens');
  client.destroy();
});
