import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, newClient, nextEvent, waitFor } from './helpers.mjs';

let stack;
before(async () => { stack = await startStack(); });
after(async () => { await stack?.close(); });

const socketOf = (wx) => [...wx.sockets].filter((t) => t.readyState === 1).at(-1);

test('backoff doubles with jitter up to the cap, and starts over after a healthy connection', async () => {
  const base = 40;
  const cap = 320;
  const { client, wx } = newClient(stack, { backoffBaseMs: base, backoffMaxMs: cap, healthyAfterMs: 200 });
  await client.start();
  const waits = [];
  client.on('status', (e) => { if (e.status === 'reconnecting') waits.push(e); });
  wx.setOnline(false);
  await waitFor('seven retries', () => waits.length >= 7);
  waits.forEach((w, i) => {
    const full = Math.min(cap, base * 2 ** i);
    assert.equal(w.attempt, i + 1);
    assert.ok(w.delay_ms >= full / 2 && w.delay_ms <= full, `retry ${i + 1} waits ${w.delay_ms} ms, want ${full / 2}-${full}`);
  });
  assert.ok(new Set(waits.slice(4).map((w) => w.delay_ms)).size > 1, 'capped retries are jittered');

  const open = nextEvent(client, 'status', (e) => e.status === 'open');
  wx.setOnline(true);
  await open;
  await waitFor('the healthy period', () => client._attempt === 0);
  waits.length = 0;
  socketOf(wx).drop();
  await waitFor('a retry', () => waits.length >= 1);
  assert.equal(waits[0].attempt, 1);
  assert.ok(waits[0].delay_ms <= base);
  await nextEvent(client, 'status', (e) => e.status === 'open');
  client.destroy();
});

test('the network coming back and the app coming to the front reconnect at once', async () => {
  // Retries so slow that only the wx events can explain a quick return.
  const { client, wx } = newClient(stack, { backoffBaseMs: 60_000, backoffMaxMs: 60_000 });
  await client.start();

  const waiting = nextEvent(client, 'status', (e) => e.status === 'reconnecting');
  socketOf(wx).drop();
  assert.ok((await waiting).delay_ms >= 30_000);
  let open = nextEvent(client, 'status', (e) => e.status === 'open', 5_000);
  wx.emitNetworkStatus(false); // going offline changes nothing
  wx.emitNetworkStatus(true);
  await open;

  const again = nextEvent(client, 'status', (e) => e.status === 'reconnecting');
  socketOf(wx).drop();
  await again;
  open = nextEvent(client, 'status', (e) => e.status === 'open', 5_000);
  wx.emitAppShow();
  await open;

  // Messages written meanwhile go out once the conversation is live again.
  const acked = nextEvent(client, 'ack');
  const sent = client.send('回到前台后');
  assert.equal((await acked).client_msg_id, sent.client_msg_id);
  client.destroy();
});

test('a socket that goes silent is noticed by the heartbeat and replaced', async () => {
  const { client, wx } = newClient(stack, { pingIntervalMs: 150, pongTimeoutMs: 300 });
  await client.start();
  const old = socketOf(wx);
  const gone = nextEvent(client, 'status', (e) => e.status === 'reconnecting');
  old.stall();
  const e = await gone;
  assert.match(e.reason, /ping/);
  await nextEvent(client, 'status', (s) => s.status === 'open');
  assert.notEqual(socketOf(wx), old);
  // The app shown while live just checks the connection: no reconnect.
  const statuses = [];
  client.on('status', (s) => statuses.push(s.status));
  wx.emitAppShow();
  const bot = nextEvent(client, 'message', (m) => m.from.role === 'bot');
  client.send('怎么修改收货地址？');
  await bot;
  assert.deepEqual(statuses, []);
  client.destroy();
});
