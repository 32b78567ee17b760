// Browser scenarios for tool calls on the bundled page (PROTOCOL 1.1), run by
// tests/browser_tools.rs through scenarios.mjs:
// - tool-page, tool-page-sse: the page's own client tool `page_info` runs when the scripted
//   agent calls it, the reply quotes its output, and a call made while no page was open is
//   answered from the snapshot of the page that opens next (WebSocket, then SSE);
// - tool-approval: a server tool that needs approval (an MCP tool, `--tool-approval`) is
//   approved in one page (on SSE) and the other (on the WebSocket) sees the result and the
//   reply; then a denial from the WebSocket page; then both pages run one page_info call and
//   the hub keeps one result, with no error shown.

import { check, openPage, waitConnected, newChat, sendMessage, screenshot, checkConsole, WAIT_MS } from './harness.mjs';

/** The scripted agent's answer after a call: one sentence quoting the output, word by word. */
function toolReply(name, output) {
  return `Tool ${name} returned: ${output} `;
}

/** Runs inside the page: the view's first item `pred(item, arg)` holds for, with what the DOM shows. */
function findItem(pred, arg) {
  const view = window.sessionhub?.view;
  const found = view?.items.find((i) => pred(i, arg));
  if (!found) return null;
  const node = document.querySelector(`article.msg[data-id="${CSS.escape(found.id)}"]`);
  const body = node?.querySelector('.msg-body') || node;
  return { ...found, domText: body ? body.innerText : null, domStatus: node?.dataset.status };
}

/** The view's item that `pred` (run inside the page: it may use only its arguments) picks, once there is one. */
async function waitItem(page, what, pred, arg) {
  const expression = `(${findItem})(${pred}, ${JSON.stringify(arg ?? null)})`;
  try {
    const handle = await page.waitForFunction(expression, null, { timeout: WAIT_MS, polling: 'raf' });
    return handle.jsonValue();
  } catch (err) {
    const items = await page.evaluate(() => window.sessionhub?.view?.items || []);
    throw new Error(`timed out waiting for ${what}; the page holds ${JSON.stringify(items)}\n${err.message}`);
  }
}

const toolCall = (i, a) => i.role === 'tool' && i.name === a.name && i.status === a.status;
const replyQuoting = (i, a) => i.role === 'assistant' && i.status === 'complete' && i.text === a;

/** The scripted agent's reply to a call, in the view and on screen. */
async function checkReply(page, where, expected) {
  const reply = await waitItem(page, `${where}: the reply ${JSON.stringify(expected)}`, replyQuoting, expected);
  check(reply.domText === expected.trim(), `${where}: the page shows ${JSON.stringify(reply.domText)}, not the reply`);
  return reply;
}

export function toolScenarios({ base, artifacts, result }) {
  async function pageTool(browser, errors, transport) {
    const query = transport === 'sse' ? '/?transport=sse' : '/';
    const one = await openPage(browser, 'one', errors);
    await one.goto(`${base}${query}`);
    await waitConnected(one, transport);
    const id = await newChat(one);
    await one.evaluate(() => {
      window.__toolRuns = [];
      window.sessionhub.hub.on('tool', (run) => window.__toolRuns.push(run));
    });
    await sendMessage(one, '/tool page_info {}');
    const done = await waitItem(one, 'page_info to complete', toolCall, { name: 'page_info', status: 'complete' });
    check(done.executor === 'client' && done.arguments === '{}', `a client call with no arguments: ${JSON.stringify(done)}`);
    const info = JSON.parse(done.output);
    check(info.url === one.url(), `page_info gives the page's URL: ${info.url} vs ${one.url()}`);
    check(typeof info.title === 'string' && info.title.endsWith('sessionhub'), `page_info gives the title: ${info.title}`);
    check(info.time && info.timezone, `page_info gives the local time: ${done.output}`);
    const card = `article.msg.tool[data-call-id="${done.call_id}"]`;
    await one.waitForSelector(`${card}[data-status="complete"] .tool-output pre`);
    const shown = await one.innerText(`${card} .tool-status`);
    check(shown === 'Done', `the card's status says ${shown}`);
    const runs = await one.evaluate(() => window.__toolRuns);
    check(runs.length === 1 && runs[0].outcome === 'sent' && runs[0].output === done.output, `one run, sent: ${JSON.stringify(runs)}`);
    // The message offered the tool: the user item keeps the tools it was sent with.
    const offered = await one.evaluate(() => window.sessionhub.view.items.find((i) => i.role === 'user')?.tools?.map((t) => t.name));
    check(JSON.stringify(offered) === '["page_info"]', `the message offered page_info: ${JSON.stringify(offered)}`);
    await checkReply(one, 'page one', toolReply('page_info', done.output));
    await screenshot(one, artifacts, `8-tool-page-${transport}`);

    // A call made while no page is open waits; the page that opens next answers it from its
    // snapshot (pending_tool_calls), and the continuation quotes that page's answer.
    await one.goto('about:blank');
    const spec = { name: 'page_info', description: 'the page', parameters: { type: 'object' } };
    const posted = await fetch(`${base}/v1/sessions/${id}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_msg_id: `c-${transport}-late`, text: '/tool page_info {"late": true}', tools: [spec] }),
    });
    check(posted.ok, `POST messages: HTTP ${posted.status}`);
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const { items } = await (await fetch(`${base}/v1/sessions/${id}/items?limit=200`)).json();
      if (items.some((i) => i.role === 'tool' && i.status === 'pending')) break;
      check(Date.now() < deadline, `the late call never waited: ${JSON.stringify(items)}`);
      await new Promise((r) => setTimeout(r, 25)); // polling the hub's state, not waiting for time
    }
    const two = await openPage(browser, 'two', errors);
    await two.goto(`${base}${query}#s=${id}`);
    await waitConnected(two, transport);
    const late = await waitItem(two, 'the late call answered', (i) => i.role === 'tool' && i.arguments === '{"late": true}' && i.status === 'complete');
    check(JSON.parse(late.output).url === two.url(), `the page that opened answered: ${late.output}`);
    await checkReply(two, 'page two', toolReply('page_info', late.output));
    const cards = await two.locator('article.msg.tool[data-status="complete"]').count();
    check(cards === 2, `page two shows both calls, found ${cards}`);
    await screenshot(two, artifacts, `8-tool-page-${transport}-from-snapshot`);
    result[transport] = { output: done.output.length, lateOutput: late.output.length };
    checkConsole(errors);
  }

  return {
    'tool-page': (browser, errors) => pageTool(browser, errors, 'ws'),
    'tool-page-sse': (browser, errors) => pageTool(browser, errors, 'sse'),

    async 'tool-approval'(browser, errors) {
      const one = await openPage(browser, 'one', errors);
      await one.goto(base);
      await waitConnected(one, 'ws');
      const id = await newChat(one);
      const two = await openPage(browser, 'two', errors);
      await two.goto(`${base}/?transport=sse#s=${id}`);
      await waitConnected(two, 'sse');

      // Approved in page two (over SSE), the call page one made runs and both pages see its result.
      const text = 'approved in the other tab';
      await sendMessage(one, `/tool py__echo {"text": "${text}"}`);
      const waiting = { name: 'py__echo', status: 'awaiting_approval' };
      const [a, b] = await Promise.all([
        waitItem(one, 'the call to await approval in page one', toolCall, waiting),
        waitItem(two, 'the call to await approval in page two', toolCall, waiting),
      ]);
      check(a.call_id === b.call_id && a.executor === 'server', `one server call in both pages: ${JSON.stringify([a, b])}`);
      const card = `article.msg.tool[data-call-id="${a.call_id}"]`;
      for (const p of [one, two]) await p.waitForSelector(`${card}[data-status="awaiting_approval"] button.tool-approve:not([disabled])`);
      await screenshot(one, artifacts, '9-tool-awaiting-approval');
      const clicked = Date.now();
      await two.click(`${card} button.tool-approve`);
      const done = await waitItem(one, 'the approved call to complete in page one', toolCall, { name: 'py__echo', status: 'complete' });
      result.approveToResultMs = Date.now() - clicked;
      check(done.output === text, `the tool ran with the model's arguments: ${JSON.stringify(done.output)}`);
      for (const p of [one, two]) {
        await p.waitForSelector(`${card}[data-status="complete"]`);
        check((await p.locator(`${card} button.tool-approve`).count()) === 0, 'no approve button once decided');
        await checkReply(p, 'after the approval', toolReply('py__echo', text));
      }
      await screenshot(one, artifacts, '9-tool-approved-elsewhere');

      // Denied in page one: the call never runs, and both pages say so.
      await sendMessage(two, '/tool py__echo {"text": "never echoed"}');
      const second = await waitItem(one, 'the second call to await approval', (i, n) => i.role === 'tool' && i.status === 'awaiting_approval' && i.call_id !== n, a.call_id);
      const card2 = `article.msg.tool[data-call-id="${second.call_id}"]`;
      await one.click(`${card2} button.tool-deny`);
      for (const p of [one, two]) {
        await p.waitForSelector(`${card2}[data-status="denied"]`);
        await checkReply(p, 'after the denial', 'Tool py__echo was denied. ');
      }
      const denied = await waitItem(two, 'the denied call', (i, c) => i.call_id === c, second.call_id);
      check(denied.output === undefined, `a denied call has no output: ${JSON.stringify(denied)}`);
      await screenshot(two, artifacts, '9-tool-denied');

      // Both pages offer page_info and both run the call: the first result wins, the other
      // page's answer is a duplicate or superseded, and neither shows an error.
      for (const p of [one, two]) {
        await p.evaluate(() => {
          window.__toolRuns = [];
          window.sessionhub.hub.on('tool', (run) => window.__toolRuns.push(run));
        });
      }
      await sendMessage(one, '/tool page_info {}');
      const info = await waitItem(two, 'page_info to complete', toolCall, { name: 'page_info', status: 'complete' });
      for (const p of [one, two]) await checkReply(p, 'after both pages ran page_info', toolReply('page_info', info.output));
      const runs = [];
      for (const [label, p] of [['one', one], ['two', two]]) {
        await p.waitForFunction(() => window.__toolRuns.length === 1);
        runs.push(...(await p.evaluate(() => window.__toolRuns)).map((r) => ({ ...r, label })));
      }
      const outcomes = runs.map((r) => r.outcome).sort();
      check(
        outcomes.includes('sent') && (outcomes.includes('duplicate') || outcomes.includes('superseded')),
        `one page's result was taken, the other's was not: ${JSON.stringify(runs)}`,
      );
      check(runs.find((r) => r.outcome === 'sent').output === info.output, 'the stored output is the sent one');
      for (const p of [one, two]) check((await p.locator('.toast').count()) === 0, 'no page shows an error');
      result.bothRan = outcomes;
      // A page whose different result lost gets `bad_request` (PROTOCOL 1.1); over SSE that is
      // an HTTP 400, which Chromium logs whatever the page does with it. Only that is excused.
      const lost = runs.find((r) => r.outcome === 'superseded');
      result.excused = checkConsole(errors, (e) =>
        lost !== undefined && e.page === lost.label && /status of 400/.test(e.text) && /\/tool-results$/.test(e.url || ''));
    },
  };
}
