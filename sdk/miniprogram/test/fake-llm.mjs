// A stand-in for an OpenAI-compatible chat-completions endpoint, enough
// for Kefu's bot: streamed answers (server-sent events ending with
// [DONE]) that cite, on their first line, the first FAQ entry the request
// offered, as Kefu's grounding protocol asks; non-streamed requests (the
// escalation classifier) answer that nothing needs a person.
import { createServer } from 'node:http';

export async function startFakeLLM(pieces) {
  const server = createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const body = JSON.parse(raw || '{}');
    if (req.url !== '/v1/chat/completions') {
      res.writeHead(404).end();
      return;
    }
    const model = body.model;
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model,
        choices: [{ index: 0, message: { role: 'assistant', content: '{"human":false,"angry":false}' }, finish_reason: 'stop' }] }));
      return;
    }
    const cited = (body.messages || []).map((m) => /\[(faq-\d+)\] 问/.exec(m.content || '')).find(Boolean);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const send = (delta, finish = null) => res.write(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model,
      choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`);
    send({ content: `[[refs:${cited ? cited[1] : 'none'}]]\n` });
    for (const p of pieces) send({ content: p });
    send({}, 'stop');
    res.end('data: [DONE]\n\n');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/v1`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
