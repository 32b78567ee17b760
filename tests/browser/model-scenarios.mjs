// Browser scenario for model choice (PROTOCOL 1.2) on the bundled page, run by
// tests/browser_models.rs through scenarios.mjs:
// - model-picker: the hub serves two models (a models file pointing at the recording upstream);
//   the composer's picker lists both from GET /v1/models with the default selected; a message
//   sent with the default, then one after picking the other id, each get a reply whose item
//   names the model that wrote it; the choice survives a reload.

import { check, openPage, waitConnected, newChat, sendMessage, waitReply, screenshot, checkConsole } from './harness.mjs';

export function modelScenarios({ base, artifacts, result }) {
  async function pickedModel(page, index) {
    return page.evaluate((i) => window.sessionhub.view.items.filter((x) => x.role === 'assistant')[i]?.model, index);
  }

  return {
    'model-picker': async (browser, errors) => {
      const page = await openPage(browser, 'models', errors);
      await page.goto(`${base}/`);
      await waitConnected(page, 'ws');
      await page.waitForSelector('#model[data-ready="true"]', { state: 'attached' });
      await newChat(page);
      const options = await page.$$eval('#model option', (os) => os.map((o) => ({ value: o.value, label: o.textContent })));
      result.options = options;
      check(await page.isVisible('#model'), 'the picker shows when the hub has two models');
      const selected = await page.inputValue('#model');
      check(selected === 'fast', `the default is selected: ${selected}`);
      await sendMessage(page, 'first');
      await waitReply(page, 0, 'complete', (r) => r.status === 'complete');
      result.first = await pickedModel(page, 0);

      await page.selectOption('#model', 'big');
      await sendMessage(page, 'second');
      await waitReply(page, 1, 'complete', (r) => r.status === 'complete');
      result.second = await pickedModel(page, 1);
      await screenshot(page, artifacts, '9-model-picker');

      await page.reload();
      await page.waitForSelector('#model[data-ready="true"]', { state: 'attached' });
      result.afterReload = await page.inputValue('#model');
      result.consoleErrors = checkConsole(errors);
    },
  };
}
