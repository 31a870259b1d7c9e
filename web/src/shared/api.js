// Api calls Kefu's REST API with a bearer token. A 401 asks getToken for
// a fresh token once and retries; other failures throw an ApiError with
// the server's error code.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(getToken) { this.getToken = getToken; }

  async call(method, path, body, { retry = true } = {}) {
    const token = await this.getToken(false);
    const res = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 401 && retry) {
      await this.getToken(true);
      return this.call(method, path, body, { retry: false });
    }
    return decode(res);
  }

  get(path) { return this.call('GET', path); }
  post(path, body = {}) { return this.call('POST', path, body); }
  put(path, body) { return this.call('PUT', path, body); }
  del(path) { return this.call('DELETE', path); }
}

export async function decode(res) {
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) throw new ApiError(res.status, data?.error?.code, data?.error?.message || text);
  return data;
}

// postJSON is a request without a token (sign-in endpoints).
export async function postJSON(path, body) {
  const res = await fetch(path, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return decode(res);
}
