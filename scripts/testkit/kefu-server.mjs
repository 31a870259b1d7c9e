// Starts a real kefu server process for the browser and SDK tests: its own
// data directory, a loopback port, a known admin password and sign-in
// limits raised so that a suite's many logins from 127.0.0.1 pass.
// KEFU_BIN names the binary (scripts/test builds it); without it the
// binary is built once into a temporary directory.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ADMIN_PASSWORD = 'admin-pass-e2e-1';

let builtBin;
function kefuBin() {
  if (process.env.KEFU_BIN) return process.env.KEFU_BIN;
  if (!builtBin) {
    builtBin = join(mkdtempSync(join(tmpdir(), 'kefu-bin-')), 'kefu');
    execFileSync('go', ['build', '-o', builtBin, './cmd/kefu'], { cwd: repo, stdio: 'inherit' });
  }
  return builtBin;
}

// startKefu runs kefu until stop() and resolves once it accepts
// connections. extraEnv adds or overrides KEFU_* settings.
export async function startKefu(extraEnv = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'kefu-e2e-'));
  const server = { dataDir, port: 0, url: '', logs: [], proc: null };
  const env = {
    ...process.env,
    KEFU_DATA_DIR: dataDir,
    KEFU_ADMIN_PASSWORD: ADMIN_PASSWORD,
    KEFU_LOG_LEVEL: 'info',
    KEFU_LIMITS_AUTH_PER_IP_PER_MINUTE: '100000',
    KEFU_LIMITS_LOGIN_PER_ACCOUNT_PER_MINUTE: '100000',
    KEFU_LIMITS_API_PER_IP_PER_SECOND: '100000',
    KEFU_LIMITS_API_PER_ACCOUNT_PER_SECOND: '100000',
    ...extraEnv,
  };

  server.start = () => new Promise((resolve, reject) => {
    server.url = '';
    env.KEFU_HTTP_ADDR = `127.0.0.1:${server.port}`;
    const proc = spawn(kefuBin(), ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    server.proc = proc;
    let buf = '';
    const timer = setTimeout(() => reject(new Error('kefu did not become ready in 60 s:\n' + server.logs.join(''))), 60_000);
    const onData = (chunk) => {
      const text = chunk.toString();
      server.logs.push(text);
      buf += text;
      const m = buf.match(/kefu is ready.*?http=(\S+)/);
      if (m && !server.url) {
        clearTimeout(timer);
        server.port = Number(m[1].split(':').pop());
        server.url = `http://127.0.0.1:${server.port}`;
        resolve(server);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!server.url) reject(new Error(`kefu exited (${code ?? signal}) before it was ready:\n` + server.logs.join('')));
    });
  });

  // start runs the process again after stop, on the same port and data.

  // stop ends the process (SIGTERM: a graceful shutdown; SIGKILL: a crash)
  // and waits for it to exit. The data directory stays for a restart.
  server.stop = async (signal = 'SIGTERM') => {
    const proc = server.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill(signal);
    await exited;
  };

  // restart stops the server and starts it again on the same port and data.
  server.restart = async () => {
    await server.stop();
    await server.start();
    return server;
  };

  // close stops the server and deletes its data.
  server.close = async () => {
    await server.stop();
    if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
  };

  await server.start();
  return server;
}

// api calls the REST API and returns the decoded JSON (or null for 204);
// a status other than 2xx throws an error carrying status and body.
export async function api(server, method, path, { token, body } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const err = new Error(`${method} ${path}: ${res.status} ${text}`);
    err.status = res.status;
    err.body = data;
    throw err;
  }
  return data;
}

// staffLogin signs a member of staff of tenant demo in and returns the
// token response.
export function staffLogin(server, username, password) {
  return api(server, 'POST', '/v1/auth/login', { body: { tenant: 'demo', username, password } });
}

// createAgent creates an agent account (as the demo admin) with the given
// capacity and returns { id, username, password }.
export async function createAgent(server, username, { role = 'agent', capacity = 5, displayName } = {}) {
  const admin = await staffLogin(server, 'admin', ADMIN_PASSWORD);
  const password = `${username}-password-1`;
  const staff = await api(server, 'POST', '/v1/staff', {
    token: admin.access_token,
    body: { username, password, display_name: displayName ?? username, role },
  });
  const id = staff.id ?? staff.staff?.id;
  await api(server, 'PUT', `/v1/agents/${id}`, { token: admin.access_token, body: { capacity } });
  return { id, username, password };
}
