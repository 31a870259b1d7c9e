// A stand-in for WeChat's server API, only the part Kefu calls:
// GET /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code.
// It answers as WeChat documents: HTTP 200 and a JSON body served as
// text/plain, either {"openid","session_key"[,"unionid"]} or
// {"errcode","errmsg"}. A code is good once and for five minutes, and only
// for the app it was issued to.
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';

export async function startFakeWeChat({ appid = 'demo', secret = randomBytes(16).toString('hex') } = {}) {
  const codes = new Map(); // js_code -> { openid, issuedAt, used }
  const calls = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://wechat');
    const answer = (body) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' || url.pathname !== '/sns/jscode2session') {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    const q = Object.fromEntries(url.searchParams);
    calls.push(q);
    if (q.grant_type !== 'authorization_code') return answer({ errcode: 40002, errmsg: 'invalid grant_type' });
    if (q.appid !== appid) return answer({ errcode: 40013, errmsg: 'invalid appid' });
    if (q.secret !== secret) return answer({ errcode: 40125, errmsg: 'invalid appsecret' });
    const c = codes.get(q.js_code);
    if (!c || Date.now() - c.issuedAt > 5 * 60_000) return answer({ errcode: 40029, errmsg: 'invalid code' });
    if (c.used) return answer({ errcode: 40163, errmsg: 'code been used' });
    c.used = true;
    const body = { openid: c.openid, session_key: randomBytes(16).toString('base64') };
    if (c.unionid) body.unionid = c.unionid;
    answer(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    appid,
    secret,
    calls,
    url: `http://127.0.0.1:${server.address().port}`,
    // issueCode is what wx.login does on the phone: a fresh code that
    // stands for this user of this app.
    issueCode(openid, unionid) {
      const code = '0' + randomBytes(15).toString('hex');
      codes.set(code, { openid, unionid, issuedAt: Date.now(), used: false });
      return code;
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
