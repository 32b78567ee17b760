// Browser scenarios for the bundled page, run by tests/browser_*.rs against a real hub:
//   node scenarios.mjs <scenario> <base-url> <artifacts-dir> <scripted-deltas>
// Prints one `RESULT {json}` line with what was measured; exits 1 with the reason on failure.
// The restart scenario asks its parent to stop and start the hub: it prints `@@stop` or
// `@@start` and waits for a line on stdin saying it is done.

import { createInterface } from 'node:readline';
import {
  Failure, check, launch, expectedReply, openPage, waitConnected, newChat, sendMessage,
  assistantItems, waitReply, watchPrefix, prefixViolations, screenshot, checkConsole, WAIT_MS,
} from './harness.mjs';
import { thinkingScenarios } from './thinking-scenarios.mjs';
import { toolScenarios } from './tool-scenarios.mjs';
import { modelScenarios } from './model-scenarios.mjs';

const [scenario, base, artifacts, deltasArg] = process.argv.slice(2);
const DELTAS = Number(deltasArg);
const streaming = (r) => r.status === 'streaming' && r.text.length > 0;
const finished = (r) => r.status === 'complete';
const result = {};

/** A reply is right when the model text, the DOM text and the expected text all agree. */
function checkReply(r, expected, where) {
  check(r.text === expected, `${where}: reply text differs.\n have ${JSON.stringify(r.text)}\n want ${JSON.stringify(expected)}`);
  check(r.domText === expected.trim(), `${where}: shown text differs from the reply: ${JSON.stringify(r.domText)}`);
}

async function checkNoViolations(page, where) {
  const { violations, samples } = await prefixViolations(page);
  check(samples > 0, `${where}: the prefix watcher saw no reply`);
  check(violations.length === 0, `${where}: reply text was not a prefix of the expected text: ${JSON.stringify(violations.slice(0, 3))}`);
}

const scenarios = {
  // 1. Two pages on one session: a message sent in page one streams in both, same final text.
  async fanout(browser, errors) {
    const one = await openPage(browser, 'one', errors);
    await one.goto(base);
    await waitConnected(one, 'ws');
    await screenshot(one, artifacts, '1-fanout-empty');
    const id = await newChat(one);
    const two = await openPage(browser, 'two', errors);
    await two.goto(`${base}/#s=${id}`);
    await waitConnected(two, 'ws');
    const text = 'Please explain how the hub streams replies to every open tab';
    const expected = expectedReply(text, DELTAS);
    await watchPrefix(two, [expected]);
    await sendMessage(one, text);
    // Both pages must see the reply while it streams, not only at the end.
    const [a, b] = await Promise.all([waitReply(one, 0, 'streaming', streaming), waitReply(two, 0, 'streaming', streaming)]);
    result.streamingSeen = { one: a.text.length, two: b.text.length, total: expected.length };
    await screenshot(two, artifacts, '1-fanout-streaming-page-two');
    const [fa, fb] = await Promise.all([waitReply(one, 0, 'complete', finished), waitReply(two, 0, 'complete', finished)]);
    checkReply(fa, expected, 'page one');
    checkReply(fb, expected, 'page two');
    check(fa.id === fb.id && fa.run_id === fb.run_id, 'both pages show the same item');
    await checkNoViolations(two, 'page two');
    // Live title: the hub names the chat after its first message; both pages follow, sidebar too.
    for (const p of [one, two]) {
      await p.waitForFunction(() => {
        const t = document.getElementById('title').textContent;
        const row = document.querySelector('.session.active .session-title');
        return t.startsWith('Please explain') && row && row.textContent === t;
      });
    }
    await screenshot(one, artifacts, '1-fanout-page-one');
    await screenshot(two, artifacts, '1-fanout-page-two');

    // Rename in page one's sidebar: page two's header and sidebar follow live.
    await one.click(`.session[data-id="${id}"] .rename`);
    await one.fill(`.session[data-id="${id}"] input`, 'Streaming to every tab');
    await one.press(`.session[data-id="${id}"] input`, 'Enter');
    await two.waitForFunction(() => document.getElementById('title').textContent === 'Streaming to every tab'
      && document.querySelector('.session.active .session-title')?.textContent === 'Streaming to every tab');
    const phone = await openPage(browser, 'phone', errors, { viewport: { width: 390, height: 780 } });
    await phone.goto(`${base}/#s=${id}`);
    await waitReply(phone, 0, 'complete', finished);
    await screenshot(phone, artifacts, '1-fanout-phone');
    await phone.click('#open-sidebar');
    await phone.waitForTimeout(300); // the drawer's slide-in transition, for the picture only
    await screenshot(phone, artifacts, '1-fanout-phone-sessions');

    // Delete from page two: page one is told and goes back to the start screen.
    await two.click(`.session[data-id="${id}"] .delete`);
    await screenshot(two, artifacts, '1-delete-confirm');
    await two.click(`.session[data-id="${id}"] button.danger-text`);
    await one.waitForSelector('.toast >> text=This chat was deleted.');
    await one.waitForSelector('#empty:not([hidden])');
    await two.waitForSelector(`.session[data-id="${id}"]`, { state: 'detached' });

    // Replies render basic Markdown as DOM nodes, and markup in model output stays text.
    const md = await one.evaluate(async () => {
      const { renderMarkdown } = await import('/markdown.js');
      const box = document.createElement('div');
      box.append(renderMarkdown('Intro with `code` and **bold**.\n\n- one\n- two\n\n1. first\n2. second\n\n```js\nlet x = 1;\n```\n\n<img src=x onerror="window.__xss=1">'));
      return {
        p: box.querySelectorAll('p').length,
        ul: box.querySelectorAll('ul > li').length,
        ol: box.querySelectorAll('ol > li').length,
        pre: box.querySelector('pre code')?.textContent,
        strong: box.querySelector('strong')?.textContent,
        img: box.querySelectorAll('img').length,
        text: box.lastChild.textContent,
      };
    });
    check(md.p === 2 && md.ul === 2 && md.ol === 2 && md.pre === 'let x = 1;' && md.strong === 'bold', `markdown: ${JSON.stringify(md)}`);
    check(md.img === 0 && md.text.startsWith('<img'), `markup must stay text: ${JSON.stringify(md)}`);

    // A link to a chat that does not exist gets a clear message, and the page stays usable.
    await one.goto(`${base}/#s=ses_does_not_exist`);
    await one.waitForSelector('.toast >> text=This chat no longer exists.');
    await one.waitForSelector('#empty:not([hidden])');
    await screenshot(one, artifacts, '1-error-unknown-chat');
    checkConsole(errors);
  },

  // 2. Stop in page two while page one's run streams: both show the stopped partial reply.
  async stop(browser, errors) {
    const one = await openPage(browser, 'one', errors);
    await one.goto(base);
    await waitConnected(one, 'ws');
    const id = await newChat(one);
    const two = await openPage(browser, 'two', errors);
    await two.goto(`${base}/#s=${id}`);
    await waitConnected(two, 'ws');
    const text = 'write a long answer that someone will stop halfway through';
    const expected = expectedReply(text, DELTAS);
    await sendMessage(one, text);
    await waitReply(two, 0, 'streaming with a few words', (r) => r.status === 'streaming' && r.text.length > 20);
    // A second message waits in the queue, and both pages say so.
    const next = 'and then answer this one';
    await sendMessage(one, next);
    for (const p of [one, two]) await p.waitForSelector('article.msg[data-role="user"] .badge.queued');
    await screenshot(two, artifacts, '2-stop-queued-page-two');
    await two.waitForSelector('#stop:not([hidden])');
    const clicked = Date.now();
    await two.click('#stop');
    const [a, b] = await Promise.all([
      waitReply(one, 0, 'cancelled', (r) => r.status === 'cancelled'),
      waitReply(two, 0, 'cancelled', (r) => r.status === 'cancelled'),
    ]);
    result.stopToCancelledMs = Date.now() - clicked;
    check(a.text === b.text, `stopped texts differ: ${JSON.stringify([a.text, b.text])}`);
    check(a.text.length > 0 && a.text.length < expected.length, `the stopped reply should be partial: ${a.text.length} of ${expected.length}`);
    check(expected.startsWith(a.text), `the stopped text is not a prefix of the reply: ${JSON.stringify(a.text)}`);
    check(a.domText === a.text.trim() && b.domText === b.text.trim(), 'the pages show the stopped text');
    for (const p of [one, two]) await p.waitForSelector('article.msg[data-status="cancelled"] .badge.stopped');
    result.partialChars = a.text.length;
    // The queued message's run starts once the stopped one ended, and streams in full.
    const expectedNext = expectedReply(next, DELTAS);
    const [n1, n2] = await Promise.all([waitReply(one, 1, 'complete', finished), waitReply(two, 1, 'complete', finished)]);
    checkReply(n1, expectedNext, 'queued reply, page one');
    checkReply(n2, expectedNext, 'queued reply, page two');
    for (const p of [one, two]) await p.waitForSelector('.badge.queued', { state: 'detached' });
    await screenshot(one, artifacts, '2-stop-page-one');
    await screenshot(two, artifacts, '2-stop-page-two');
    checkConsole(errors);
  },

  // 3. Reload page one mid-stream: it catches up without duplicated or missing text.
  async reload(browser, errors) {
    const one = await openPage(browser, 'one', errors);
    await one.goto(base);
    await waitConnected(one, 'ws');
    await newChat(one);
    const text = 'reload me in the middle of this reply';
    const expected = expectedReply(text, DELTAS);
    await watchPrefix(one, [expected]);
    await sendMessage(one, text);
    const before = await waitReply(one, 0, 'a fifth streamed', (r) => r.status === 'streaming' && r.text.length > expected.length / 5);
    await one.reload();
    await waitConnected(one, 'ws');
    const after = await waitReply(one, 0, 'caught up', (r) => r.text.length > 0);
    result.charsBeforeReload = before.text.length;
    result.charsAtFirstRender = after.text.length;
    result.caughtUpMidStream = after.status === 'streaming';
    check(after.status === 'streaming', 'the reload should land while the reply still streams (make the run longer)');
    await screenshot(one, artifacts, '3-reload-caught-up');
    const done = await waitReply(one, 0, 'complete', finished);
    checkReply(done, expected, 'reloaded page');
    await checkNoViolations(one, 'reloaded page');
    const count = await one.locator('article.msg[data-role="assistant"]').count();
    check(count === 1, `one reply expected on the page, found ${count}`);
    await screenshot(one, artifacts, '3-reload-complete');
    checkConsole(errors);
  },

  // 4. Restart the hub mid-session: the page shows reconnecting, reconnects and continues.
  async restart(browser, errors) {
    const one = await openPage(browser, 'one', errors);
    await one.goto(base);
    await waitConnected(one, 'ws');
    await newChat(one);
    const first = 'first question before the restart';
    await sendMessage(one, first);
    checkReply(await waitReply(one, 0, 'complete', finished), expectedReply(first, DELTAS), 'first reply');
    const second = 'this reply is cut by the restart';
    await sendMessage(one, second);
    await waitReply(one, 1, 'streaming', streaming);
    const down = Date.now();
    await parent('stop');
    await one.waitForSelector('#conn[data-state="reconnecting"]');
    await one.waitForSelector('#banner:not([hidden])');
    const cut = await waitReply(one, 1, 'ended by the shutdown', (r) => r.status !== 'streaming');
    result.cutReply = { status: cut.status, chars: cut.text.length };
    check(['interrupted', 'complete', 'cancelled'].includes(cut.status), `unexpected status after shutdown: ${cut.status}`);
    // A message written while the hub is down waits, then goes out on reconnect.
    const third = 'sent while the hub was down';
    await sendMessage(one, third);
    await one.waitForSelector('article.msg.pending');
    await screenshot(one, artifacts, '4-restart-reconnecting');
    const up = Date.now();
    await parent('start');
    await waitConnected(one, 'ws');
    result.reconnectAfterStartMs = Date.now() - up;
    result.downMs = up - down;
    const last = await waitReply(one, 2, 'complete', finished);
    checkReply(last, expectedReply(third, DELTAS), 'reply after the restart');
    const users = await one.locator('article.msg[data-role="user"]').allInnerTexts();
    check(users.length === 3, `three user messages expected, found ${users.length}`);
    await one.waitForSelector('article.msg.pending', { state: 'detached' });
    await screenshot(one, artifacts, '4-restart-continued');
    // Chromium itself logs each refused connection while the hub is down; nothing else may appear.
    result.refusedWhileDown = checkConsole(errors, (e) => e.at >= down && e.at <= Date.now() && refused(e.text));
  },

  // 5. SSE mode, WebSockets disabled in the page: send, stream, stop and resume.
  async sse(browser, errors) {
    const init = () => {
      // What a proxy that blocks WebSockets looks like to the page: no usable constructor.
      Object.defineProperty(window, 'WebSocket', { value: undefined, configurable: true, writable: true });
    };
    const one = await openPage(browser, 'one', errors, { init });
    await one.goto(base);
    await waitConnected(one, 'sse');
    check((await one.getAttribute('#conn', 'data-fallback')) === 'true', 'the page should say it fell back to SSE');
    check(await one.isDisabled('#transport button[data-value="ws"]'), 'the WebSocket switch is disabled without WebSockets');
    await newChat(one);
    await one.evaluate(() => {
      window.__subscribed = [];
      window.sessionhub.hub.on('subscribed', (s) => window.__subscribed.push(s));
    });
    const t1 = 'hello over server sent events';
    const t2 = 'stop this one please while it streams';
    const t3 = 'resume this one after the stream drops';
    const [e1, e2, e3] = [t1, t2, t3].map((t) => expectedReply(t, DELTAS));
    await watchPrefix(one, [e1, e2, e3]);
    await sendMessage(one, t1);
    await waitReply(one, 0, 'streaming', streaming);
    checkReply(await waitReply(one, 0, 'complete', finished), e1, 'SSE reply');
    await screenshot(one, artifacts, '5-sse-streamed');

    await sendMessage(one, t2);
    await waitReply(one, 1, 'streaming', (r) => r.status === 'streaming' && r.text.length > 20);
    await one.click('#stop');
    const stopped = await waitReply(one, 1, 'cancelled', (r) => r.status === 'cancelled');
    check(stopped.text.length < e2.length && e2.startsWith(stopped.text), 'the SSE stop keeps a partial prefix');
    await one.waitForSelector('#stop', { state: 'hidden' });

    // Resume: switching to explicit SSE drops the stream and reopens it with Last-Event-ID.
    await sendMessage(one, t3);
    await waitReply(one, 2, 'streaming', (r) => r.status === 'streaming' && r.text.length > 20);
    const subsBefore = await one.evaluate(() => window.__subscribed.length);
    await one.click('#transport button[data-value="sse"]');
    await waitConnected(one, 'sse');
    checkReply(await waitReply(one, 2, 'complete', finished), e3, 'resumed SSE reply');
    const subs = await one.evaluate(() => window.__subscribed);
    check(subs.length > subsBefore, 'the stream reopened');
    result.resume = subs[subs.length - 1].resume;
    check(result.resume === 'replay', `the SSE resume should replay the missed events, got ${result.resume}`);
    await checkNoViolations(one, 'SSE page');
    await screenshot(one, artifacts, '5-sse-stopped-and-resumed');

    // A proxy that answers the WebSocket upgrade with a plain HTTP response while plain HTTP
    // works: 'auto' falls back too. (The upgrade is sent to /healthz, which never upgrades.)
    const blocked = () => {
      const Real = window.WebSocket;
      window.WebSocket = class extends Real {
        constructor(url) {
          super(String(url).replace('/v1/ws', '/healthz'));
        }
      };
    };
    const two = await openPage(browser, 'two', errors, { init: blocked });
    await two.goto(`${base}/${new URL(one.url()).hash}`);
    await waitConnected(two, 'sse');
    check((await two.getAttribute('#conn', 'data-fallback')) === 'true', 'a refused upgrade falls back to SSE');
    const shown = await waitReply(two, 2, 'shown from the snapshot', finished);
    checkReply(shown, e3, 'fallback page');
    result.blockedUpgradeErrors = checkConsole(errors, (e) => e.page === 'two' && /WebSocket connection to .*\/healthz' failed/.test(e.text));
  },

  // 6. Authentication on: the page trades its bearer token for a single-use WebSocket ticket,
  //    sends, streams and sees the reply; the token also rides on REST calls.
  async auth(browser, errors) {
    const token = process.env.SESSIONHUB_TEST_TOKEN;
    check(token, 'the test passes SESSIONHUB_TEST_TOKEN');
    const init = `localStorage.setItem('sessionhub.token', ${JSON.stringify(token)});`;
    const one = await openPage(browser, 'one', errors, { init });
    await one.goto(base);
    await waitConnected(one, 'ws');
    const id = await newChat(one);
    const text = 'Does the hub keep my chats private';
    const expected = expectedReply(text, DELTAS);
    await sendMessage(one, text);
    const reply = await waitReply(one, 0, 'complete', finished);
    checkReply(reply, expected, 'authenticated page');
    const two = await openPage(browser, 'two', errors, { init });
    await two.goto(`${base}/#s=${id}`);
    await waitConnected(two, 'ws');
    checkReply(await waitReply(two, 0, 'shown from the snapshot', finished), expected, 'second page');
    await screenshot(one, artifacts, '6-auth-page');
    result.authConsoleErrors = checkConsole(errors);
  },

  // 7. The page as a new user gets it: served by a binary copied alone into an empty folder
  //    (everything built in). Every request succeeds, the stylesheet applies, the page
  //    connects, a message streams its reply, and the console stays clean.
  async standalone(browser, errors) {
    const page = await openPage(browser, 'page', errors);
    const failed = [];
    page.on('requestfailed', (r) => failed.push(`${r.url()}: ${r.failure()?.errorText}`));
    page.on('response', (r) => {
      if (r.status() >= 400) failed.push(`${r.url()}: HTTP ${r.status()}`);
    });
    await page.goto(base);
    await waitConnected(page, 'ws');
    const sheets = await page.evaluate(() => [...document.styleSheets].map((s) => ({ href: s.href, rules: s.cssRules.length })));
    check(sheets.some((s) => s.href && s.href.endsWith('/style.css') && s.rules > 0), `style.css did not apply: ${JSON.stringify(sheets)}`);
    await newChat(page);
    const text = 'Is this page built into the binary';
    await sendMessage(page, text);
    checkReply(await waitReply(page, 0, 'complete', finished), expectedReply(text, DELTAS), 'standalone page');
    await screenshot(page, artifacts, '7-standalone-page');
    check(failed.length === 0, `failed requests: ${JSON.stringify(failed)}`);
    result.stylesheetRules = sheets.find((s) => s.href && s.href.endsWith('/style.css')).rules;
    result.consoleErrors = checkConsole(errors);
  },
};

Object.assign(scenarios, toolScenarios({ base, artifacts, result }));
Object.assign(scenarios, thinkingScenarios({ base, artifacts, result, deltas: DELTAS }));
Object.assign(scenarios, modelScenarios({ base, artifacts, result }));

function refused(text) {
  return /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|WebSocket connection to .* failed/.test(text);
}

let stdinLines;
/** Asks the parent test to stop or start the hub and waits for its answer. */
async function parent(what) {
  stdinLines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  process.stdout.write(`@@${what}\n`);
  const timer = setTimeout(() => fail(new Failure(`the parent did not ${what} the hub in time`)), WAIT_MS * 2);
  const { value, done } = await stdinLines.next();
  clearTimeout(timer);
  check(!done && value.trim() === 'ok', `the parent could not ${what} the hub: ${value}`);
}

function fail(err) {
  process.stderr.write(`browser scenario ${scenario} FAILED: ${err instanceof Failure ? err.message : err.stack}\n`);
  process.exit(1);
}

async function main() {
  check(scenarios[scenario], `unknown scenario ${scenario}; known: ${Object.keys(scenarios).join(', ')}`);
  check(base && artifacts && DELTAS > 0, 'usage: node scenarios.mjs <scenario> <base-url> <artifacts-dir> <deltas>');
  const browser = await launch();
  const errors = [];
  const started = Date.now();
  try {
    await scenarios[scenario](browser, errors);
  } finally {
    await browser.close();
  }
  result.ms = Date.now() - started;
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  process.exit(0);
}

main().catch(fail);
