// The chat page: renders the SDK's message list plus its outbox, and turns
// taps into SDK calls. Everything shown comes from the client's state; the
// events only say when to render again.
const app = getApp();

const STATUS_TEXT = {
  idle: '',
  connecting: '连接中…',
  open: '',
  reconnecting: '网络不稳定，正在重连…',
  closed: '连接已断开',
};

const QUEUE_REASON = {
  no_agent_online: '当前没有客服在线，您可以先留言',
  outside_business_hours: '现在不是客服工作时间，您可以先留言',
};

// toItem turns a stored message into what the template shows.
function toItem(m, me, peerRead) {
  const mine = !!me && m.from.role === me.role && m.from.id === me.id;
  return {
    key: 'm' + m.seq,
    mine: mine,
    system: m.from.role === 'system',
    who: m.from.role === 'bot' ? '智能助手' : m.from.role === 'agent' ? '客服' : '',
    text: m.body.text || '[暂不支持的消息]',
    options: m.body.type === 'quick_reply' ? m.body.options : null,
    read: mine && m.seq <= peerRead,
  };
}

Page({
  data: {
    items: [],
    input: '',
    status: 'idle',
    statusText: '',
    state: '',
    queueText: '',
    typing: false,
    draft: '',
    scrollTo: '',
    rated: 0,
  },

  onLoad() {
    const kefu = (this.kefu = app.globalData.kefu);
    const render = () => this.render();
    this.handlers = {
      messages: render,
      message: (m) => {
        if (m.from.role === 'agent') this.setData({ typing: false });
        this.render();
      },
      pending: render,
      ack: render,
      read: render,
      conversation: () => {
        this.setData({ rated: 0 });
        this.render();
      },
      failed: (e) => {
        wx.showToast({ title: e.code === 'conversation_closed' ? '会话已结束，消息未发出' : '消息发送失败', icon: 'none' });
        this.render();
      },
      status: (e) => this.setData({ status: e.status, statusText: STATUS_TEXT[e.status] || '' }),
      state: render,
      queue: render,
      bot_delta: render,
      typing: (e) => {
        this.setData({ typing: e.on });
        // An "on" whose "off" never comes (the agent closed the app) fades.
        clearTimeout(this.typingTimer);
        if (e.on) this.typingTimer = setTimeout(() => this.setData({ typing: false }), 6000);
      },
      error: (e) => {
        if (e.op === 'login') wx.showToast({ title: '登录失败：' + e.message, icon: 'none' });
      },
    };
    Object.keys(this.handlers).forEach((name) => kefu.on(name, this.handlers[name]));
    this.render();
    kefu.start().catch((err) => this.setData({ status: 'closed', statusText: '无法连接客服：' + err.message }));
  },

  onShow() {
    this.visible = true;
    if (this.kefu) this.kefu.markRead();
  },

  onHide() {
    this.visible = false;
  },

  onUnload() {
    clearTimeout(this.typingTimer);
    Object.keys(this.handlers).forEach((name) => this.kefu.off(name, this.handlers[name]));
  },

  render() {
    const kefu = this.kefu;
    let peerRead = 0;
    Object.keys(kefu.reads).forEach((who) => {
      if (who.indexOf('user:') !== 0) peerRead = Math.max(peerRead, kefu.reads[who]);
    });
    const items = kefu.messages.map((m) => toItem(m, kefu.me, peerRead));
    kefu.pending().forEach((e) => {
      items.push({ key: e.client_msg_id, mine: true, pending: true, text: e.body.text });
    });
    const q = kefu.queue;
    let queueText = '';
    if (q) queueText = q.available ? '正在为您转接人工客服，前面还有 ' + (q.position - 1) + ' 位' : QUEUE_REASON[q.reason] || '排队中';
    this.setData({
      items: items,
      state: kefu.state || '',
      queueText: queueText,
      draft: kefu.botDraft,
      scrollTo: items.length ? items[items.length - 1].key : '',
    });
    if (this.visible !== false) kefu.markRead();
  },

  onInput(e) {
    this.setData({ input: e.detail.value });
    if (e.detail.value) this.kefu.typing(true);
  },

  onSend() {
    const text = this.data.input.trim();
    if (!text) return;
    this.kefu.send(text);
    this.setData({ input: '' });
  },

  // A "did you mean" chip: its text goes out as an ordinary message.
  onOption(e) {
    this.kefu.sendOption({ id: e.currentTarget.dataset.id, text: e.currentTarget.dataset.text });
  },

  onEscalate() {
    this.kefu.escalate().catch((err) => wx.showToast({ title: err.message, icon: 'none' }));
  },

  onCloseConversation() {
    this.kefu.close().catch((err) => wx.showToast({ title: err.message, icon: 'none' }));
  },

  onRate(e) {
    const score = Number(e.currentTarget.dataset.score);
    this.kefu.rate(score).then(
      () => this.setData({ rated: score }),
      (err) => wx.showToast({ title: err.code === 'unknown_type' ? '评价功能暂不可用' : '评价失败', icon: 'none' }),
    );
  },

  onNewConversation() {
    this.kefu.newConversation().catch((err) => wx.showToast({ title: err.message, icon: 'none' }));
  },
});
