// Browser scenario for reasoning on the bundled page (PROTOCOL 1.2), run by
// tests/browser_thinking.rs through scenarios.mjs:
// - thinking: a `/think` message sent in one page (WebSocket) shows, in it and in a second page
//   (SSE), a "thinking" block above the reply that streams open while the model thinks and is
//   collapsed once the reply starts; the reply holds none of the reasoning; the reader can open
//   the block; after a reload the block is still there, collapsed, above the reply.

import { check, checkConsole, expectedReply, newChat, openPage, screenshot, sendMessage, waitConnected, WAIT_MS } from './harness.mjs';

/** The scripted agent's reasoning for a `/think` message (see `scripted.rs`). */
function expectedThought(text, n) {
  const rest = text.trim().replace(/^\/think/, '');
  const words = ['Thinking', 'about', ...rest.split(/\s+/).filter(Boolean).slice(0, 64)];
  let out = '';
  for (let i = 0; i < n; i++) out += `${words[i % words.length]} `;
  return out;
}

/** Runs inside the page: the thinking block and the reply after it, as the DOM shows them. */
function shown() {
  const block = document.querySelector('article.msg[data-role="reasoning"]');
  const reply = document.querySelector('article.msg[data-role="assistant"]');
  if (!block) return null;
  const view = window.sessionhub?.view;
  const item = view?.byId.get(block.dataset.id);
  return {
    id: block.dataset.id,
    status: block.dataset.status,
    open: block.querySelector('details').open,
    label: block.querySelector('summary').textContent,
    text: block.querySelector('.thinking-body').textContent,
    answerId: item?.answer_id,
    replyId: reply?.dataset.id,
    replyStatus: reply?.dataset.status,
    replyText: reply ? reply.querySelector('.msg-body').innerText : null,
    above: Boolean(reply && block.compareDocumentPosition(reply) & Node.DOCUMENT_POSITION_FOLLOWING),
  };
}

async function waitShown(page, what, pred) {
  const expression = `(() => { const s = (${shown})(); return s && (${pred})(s) ? s : null; })()`;
  try {
    const handle = await page.waitForFunction(expression, null, { timeout: WAIT_MS, polling: 'raf' });
    return handle.jsonValue();
  } catch (err) {
    const now = await page.evaluate(`(${shown})()`);
    throw new Error(`timed out waiting for ${what}; the page shows ${JSON.stringify(now)}\n${err.message}`);
  }
}

export function thinkingScenarios({ base, artifacts, result, deltas }) {
  return {
    async thinking(browser, errors) {
      const one = await openPage(browser, 'one', errors);
      await one.goto(base);
      await waitConnected(one, 'ws');
      const id = await newChat(one);
      const two = await openPage(browser, 'two', errors);
      await two.goto(`${base}/?transport=sse#s=${id}`);
      await waitConnected(two, 'sse');
      const text = '/think about the thinking block';
      const thought = expectedThought(text, deltas);
      const reply = expectedReply(text, deltas);
      await sendMessage(one, text);

      // While the model thinks: open, streaming, above the (still empty) reply, in both pages.
      const thinking = (s) => s.status === 'streaming' && s.open && s.text.length > 0 && s.label === 'Thinking…';
      const [a, b] = await Promise.all([
        waitShown(one, 'page one thinking', thinking),
        waitShown(two, 'page two thinking', thinking),
      ]);
      for (const [s, where] of [[a, 'page one'], [b, 'page two']]) {
        check(thought.startsWith(s.text), `${where}: the streaming thought ${JSON.stringify(s.text)} is not a prefix of ${JSON.stringify(thought)}`);
        check(s.above && s.answerId === s.replyId, `${where}: the thinking block is not above its reply: ${JSON.stringify(s)}`);
      }
      result.thoughtSeenStreaming = { one: a.text.length, two: b.text.length, total: thought.length };
      await screenshot(one, artifacts, '7-thinking-streaming');

      // Once the reply starts the block collapses; the reply has no reasoning in it.
      const replying = (s) => s.status === 'complete' && !s.open && s.replyText && s.replyText.length > 0;
      await Promise.all([
        waitShown(one, 'page one collapsed once the reply started', replying),
        waitShown(two, 'page two collapsed once the reply started', replying),
      ]);
      const finished = (s) => s.replyStatus === 'complete';
      for (const [page, where] of [[one, 'page one'], [two, 'page two']]) {
        const s = await waitShown(page, `${where} reply complete`, finished);
        check(s.text === thought, `${where}: thought ${JSON.stringify(s.text)}, want ${JSON.stringify(thought)}`);
        check(!s.open && s.label === 'Thought', `${where}: the finished block should be collapsed: ${JSON.stringify(s)}`);
        check(s.replyText === reply.trim(), `${where}: reply ${JSON.stringify(s.replyText)}, want ${JSON.stringify(reply.trim())}`);
        check(s.above, `${where}: the thinking block is not above the reply`);
      }
      await screenshot(one, artifacts, '7-thinking-collapsed');

      // The reader opens it; a reload shows it again, collapsed, above the reply.
      await one.click('article.msg[data-role="reasoning"] summary');
      await waitShown(one, 'opened by the reader', (s) => s.open);
      await screenshot(one, artifacts, '7-thinking-opened');
      await one.reload();
      await waitConnected(one, 'ws');
      const again = await waitShown(one, 'after a reload', (s) => s.replyStatus === 'complete');
      check(again.text === thought && !again.open && again.above, `after a reload: ${JSON.stringify(again)}`);
      checkConsole(errors);
    },
  };
}
