// Shared helpers for the browser scenarios: launch Debian's Chromium through playwright-core,
// collect console errors, read the page's state, save screenshots.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const CHROMIUM = '/usr/bin/chromium';
export const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Bounded waits: every wait in these scenarios ends, with a message saying what was awaited. */
export const WAIT_MS = 15000;

export class Failure extends Error {}

export function check(cond, message) {
  if (!cond) throw new Failure(message);
}

export async function launch() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS, timeout: 30000 });
}

/** The scripted agent's reply to `text` with `n` deltas (see the agent's docs). */
export function expectedReply(text, n) {
  const words = ['Echo:', ...text.split(/\s+/).filter(Boolean)].slice(0, 65);
  let out = '';
  for (let i = 0; i < n; i++) out += `${words[i % words.length]} `;
  return out;
}

/**
 * Opens a page (desktop size unless given) that records console errors and page errors into
 * `errors`, each tagged with the page's label and the time, so the scenario can judge them.
 */
export async function openPage(browser, label, errors, { viewport, init } = {}) {
  const context = await browser.newContext({ viewport: viewport || { width: 1280, height: 800 } });
  const page = await context.newPage();
  if (init) await page.addInitScript(init);
  page.on('console', (msg) => {
    // `url`: for a failed request, the resource's address (the text does not name it).
    if (msg.type() === 'error') errors.push({ page: label, at: Date.now(), text: msg.text(), url: msg.location()?.url });
  });
  page.on('pageerror', (err) => errors.push({ page: label, at: Date.now(), text: `uncaught: ${err.message}` }));
  page.setDefaultTimeout(WAIT_MS);
  return page;
}

export async function waitConnected(page, transport) {
  const sel = transport ? `#conn[data-state="connected"][data-transport="${transport}"]` : '#conn[data-state="connected"]';
  await page.waitForSelector(sel, { timeout: WAIT_MS });
}

/** Clicks "New chat" and returns the new session id (from the URL). */
export async function newChat(page) {
  await page.click('#new-chat');
  await page.waitForFunction(() => /#s=/.test(location.hash), null, { timeout: WAIT_MS });
  return new URL(page.url()).hash.replace('#s=', '');
}

export async function sendMessage(page, text) {
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
}

/** The assistant items as the page's view holds them, plus the text the DOM shows for each. */
export async function assistantItems(page) {
  return page.evaluate(() => {
    const view = window.sessionhub.view;
    if (!view) return [];
    return view.items
      .filter((i) => i.role === 'assistant')
      .map((i) => {
        const node = document.querySelector(`article.msg[data-id="${CSS.escape(i.id)}"]`);
        return {
          id: i.id,
          run_id: i.run_id,
          status: i.status,
          text: i.text,
          domStatus: node?.dataset.status,
          domText: node ? node.querySelector('.msg-body').innerText : null,
        };
      });
  });
}

/** Waits until assistant reply number `index` (0-based) satisfies `pred` ({status, text}). */
export async function waitReply(page, index, what, pred) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const items = await assistantItems(page);
    const item = items[index];
    if (item && pred(item)) return item;
    if (Date.now() > deadline) {
      throw new Failure(`timed out waiting for reply ${index} to be ${what}; have ${JSON.stringify(item || null)}`);
    }
    await page.waitForTimeout(25); // polling the page; the event itself is what ends the wait
  }
}

/**
 * Records, inside the page, every text a reply shows, and flags any moment at which it is not
 * a prefix of one of `expected` (a duplicated or skipped delta would do that). Survives reloads.
 */
export async function watchPrefix(page, expected) {
  const install = (exp) => {
    window.__prefixViolations = [];
    window.__samples = 0;
    clearInterval(window.__prefixTimer);
    window.__prefixTimer = setInterval(() => {
      const view = window.sessionhub && window.sessionhub.view;
      for (const i of view ? view.items : []) {
        if (i.role !== 'assistant' || typeof i.text !== 'string') continue;
        window.__samples++;
        if (!exp.some((e) => e.startsWith(i.text))) window.__prefixViolations.push(i.text);
      }
    }, 10);
  };
  await page.addInitScript(install, expected);
  await page.evaluate(install, expected);
}

export async function prefixViolations(page) {
  return page.evaluate(() => {
    clearInterval(window.__prefixTimer);
    return { violations: window.__prefixViolations || [], samples: window.__samples || 0 };
  });
}

export async function screenshot(page, dir, name) {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.mouse.move(1, 1); // no hover highlight left over from the last click
  await page.screenshot({ path });
  return path;
}

/** Fails on any console or page error not explicitly excused by `allowed(entry)`; returns the excused texts. */
export function checkConsole(errors, allowed = () => false) {
  const bad = errors.filter((e) => !allowed(e));
  check(bad.length === 0, `console errors: ${JSON.stringify(bad, null, 1)}`);
  return errors.filter((e) => allowed(e)).map((e) => e.text);
}
