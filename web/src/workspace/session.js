// The signed-in member of staff. The access token lives only in memory;
// the refresh token is the HttpOnly kefu_refresh cookie, so a reload signs
// in again without any token in page storage. Refreshes are serialised
// across tabs with a Web Lock: two tabs spending the same refresh token
// would look like a stolen token and revoke the session.
import { reactive } from 'vue';
import { postJSON } from '../shared/api.js';

export const session = reactive({ token: '', expiresAt: 0, staff: null, tenant: '' });
let refreshing = null;
let timer = null;

function accept(res) {
  session.token = res.access_token;
  session.expiresAt = Date.now() + res.expires_in * 1000;
  session.staff = res.staff;
  session.tenant = res.tenant;
  clearTimeout(timer);
  // Refresh ahead of expiry so sockets and calls never meet an old token.
  timer = setTimeout(() => refresh().catch(() => {}), res.expires_in * 800);
}

export async function login(tenant, username, password) {
  accept(await postJSON('/v1/auth/login', { tenant, username, password }));
}

function withLock(fn) {
  if (navigator.locks?.request) return navigator.locks.request('kefu-refresh', fn);
  return fn();
}

// refresh trades the cookie for a new access token; it rejects when the
// session is gone (signed out elsewhere, revoked, expired).
export function refresh() {
  if (!refreshing) {
    refreshing = withLock(() => postJSON('/v1/auth/refresh', {}))
      .then(accept)
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

export async function getToken(force) {
  if (force || !session.token || session.expiresAt < Date.now() + 30_000) {
    try {
      await refresh();
    } catch (err) {
      if (err.status === 401) { signedOut(); throw Object.assign(err, { fatal: true }); }
      throw err;
    }
  }
  return session.token;
}

export async function logout() {
  try {
    await fetch('/v1/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${session.token}`, 'content-type': 'application/json' }, body: '{}' });
  } finally {
    signedOut();
  }
}

export function signedOut() {
  clearTimeout(timer);
  Object.assign(session, { token: '', expiresAt: 0, staff: null });
}
