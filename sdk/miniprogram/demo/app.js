// The demo's one KefuClient, shared by its pages. libs/kefu.js is a copy
// of ../kefu/kefu.js (a mini-program may only require files inside its own
// folder): `npm run demo:sync` refreshes it, and a test checks it is fresh.
const { KefuClient } = require('./libs/kefu.js');

const config = {
  // Your Kefu server. Real devices need https and the domain listed in the
  // mini-program's "request" and "socket" domains; the developer tools
  // accept http://127.0.0.1 with "do not check domains" on (urlCheck off).
  baseUrl: 'http://127.0.0.1:8080',
  tenant: 'demo',
  // 'wechat' signs in with wx.login once the tenant has this
  // mini-program's appid and AppSecret (PUT /v1/tenant/credentials);
  // 'visitor' works anywhere, anonymously.
  auth: 'visitor',
};

App({
  globalData: { kefu: null },

  onLaunch() {
    this.globalData.kefu = new KefuClient(config);
  },
});
