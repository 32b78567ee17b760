// AG-UI conformance driver: runs the official `@ag-ui/client` HttpAgent against the hub's
// POST /agui and fails on any client verification error or warning.
//
// Usage: node driver.mjs --url http://127.0.0.1:PORT --client 1.0.0|0.0.59
//                        [--deltas 12] [--scenario NAME]...
// Scenarios: normal, failure, abort, cancelled, multi (default: all). The hub must run the
// scripted agent with `--scripted-deltas` equal to --deltas, so the driver can predict every reply.
// Prints one `ok`/`not ok` line per scenario, then `VERDICT ACCEPTED` (exit 0) or
// `VERDICT REJECTED` (exit 1).

import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";

const CLIENTS = { "1.0.0": "agui-client-v1", "0.0.59": "agui-client-v0" };
const SCENARIO_TIMEOUT_MS = 20_000;

const { values: opts } = parseArgs({
  options: {
    url: { type: "string" },
    client: { type: "string" },
    deltas: { type: "string", default: "12" },
    scenario: { type: "string", multiple: true },
  },
});
if (!opts.url || !CLIENTS[opts.client]) {
  process.stderr.write("usage: node driver.mjs --url BASE --client 1.0.0|0.0.59 [--deltas N]\n");
  process.exit(64);
}
const base = opts.url.replace(/\/+$/, "");
const deltas = Number(opts.deltas);

// Everything the client library says on the console is a finding: its warnings are how it
// reports events it had to drop, strip or translate. Captured per scenario.
let consoleLines = [];
for (const level of ["warn", "error"]) {
  console[level] = (...parts) => {
    consoleLines.push(`console.${level}: ${parts.map(String).join(" ")}`);
  };
}

const { HttpAgent } = await import(CLIENTS[opts.client]);

/** The scripted agent's reply (see the lead's scripted agent): deterministic echo. */
function expectedReply(text) {
  const words = ["Echo:", ...text.split(/\s+/).filter(Boolean).slice(0, 64)];
  let out = "";
  for (let i = 0; i < deltas; i++) out += `${words[i % words.length]} `;
  return out;
}

class Findings {
  constructor() {
    this.list = [];
  }
  check(ok, what) {
    if (!ok) this.list.push(what);
    return ok;
  }
  equal(actual, expected, what) {
    return this.check(
      actual === expected,
      `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`,
    );
  }
}

/** One runAgent call with a fresh user message; records what the client saw. */
async function turn(agent, text, { abortOnFirstContent = false, onFirstContent = null } = {}) {
  const messageId = randomUUID();
  const runId = randomUUID();
  agent.addMessage({ id: messageId, role: "user", content: text });
  const seen = { messageId, runId, text, events: [], failed: null, rejected: null, aborted: false };
  const subscriber = {
    onEvent({ event }) {
      seen.events.push(event);
    },
    onRunFailed({ error }) {
      seen.failed = error;
    },
    onTextMessageContentEvent() {
      if (abortOnFirstContent && !seen.aborted) {
        seen.aborted = true;
        agent.abortRun();
      }
      if (onFirstContent && !seen.firstContent) {
        seen.firstContent = onFirstContent();
      }
    },
  };
  try {
    await agent.runAgent({ runId }, subscriber);
  } catch (err) {
    seen.rejected = err;
  }
  return seen;
}

function types(seen) {
  return seen.events.map((e) => e.type).join(" ");
}

function streamedText(seen) {
  return seen.events
    .filter((e) => e.type === "TEXT_MESSAGE_CONTENT")
    .map((e) => e.delta)
    .join("");
}

/** Checks shared by every run the hub must finish normally. */
function checkFinished(f, agent, seen) {
  f.check(!seen.rejected, `runAgent rejected: ${seen.rejected}`);
  f.check(!seen.failed, `onRunFailed: ${seen.failed}`);
  f.check(
    /^RUN_STARTED TEXT_MESSAGE_START( TEXT_MESSAGE_CONTENT)+ TEXT_MESSAGE_END RUN_FINISHED$/.test(
      types(seen),
    ),
    `event sequence: ${types(seen)}`,
  );
  checkRunIdentity(f, agent, seen);
  const start = seen.events.find((e) => e.type === "TEXT_MESSAGE_START");
  const reply = expectedReply(seen.text);
  f.equal(streamedText(seen), reply, "streamed reply");
  const local = agent.messages.find((m) => m.id === start?.messageId);
  f.equal(local?.role, "assistant", "client-side reply role");
  f.equal(local?.content, reply, "client-side reply text");
  return start?.messageId;
}

function checkRunIdentity(f, agent, seen) {
  for (const e of seen.events) {
    if (e.type === "RUN_STARTED" || e.type === "RUN_FINISHED") {
      f.equal(e.threadId, agent.threadId, `${e.type}.threadId`);
      f.equal(e.runId, seen.runId, `${e.type}.runId`);
    }
    if (e.timestamp !== undefined) {
      f.check(Number.isInteger(e.timestamp), `${e.type}.timestamp not an integer: ${e.timestamp}`);
    }
  }
}

async function items(threadId) {
  const res = await fetch(`${base}/v1/sessions/${encodeURIComponent(threadId)}/items?limit=200`);
  if (!res.ok) throw new Error(`GET items: HTTP ${res.status}: ${await res.text()}`);
  return (await res.json()).items;
}

/** The hub's stored history must mirror the client's messages one to one, ids included. */
async function checkStored(f, agent, expectStatus) {
  const stored = await items(agent.threadId);
  f.equal(stored.length, agent.messages.length, "stored item count");
  agent.messages.forEach((m, i) => {
    const item = stored[i] ?? {};
    f.equal(item.role, m.role, `item ${i} role`);
    f.equal(item.text, m.content, `item ${i} text`);
    f.equal(m.role === "user" ? item.client_msg_id : item.id, m.id, `item ${i} id`);
    const want = expectStatus[i] ?? "complete";
    f.equal(item.status, want, `item ${i} status`);
  });
  return stored;
}

const scenarios = {
  async normal(f) {
    const agent = new HttpAgent({ url: `${base}/agui` });
    const seen = await turn(agent, "hello from the conformance driver");
    checkFinished(f, agent, seen);
    await checkStored(f, agent, {});
  },

  async failure(f) {
    const agent = new HttpAgent({ url: `${base}/agui` });
    const seen = await turn(agent, "please [[fail]] upstream now");
    f.check(!seen.rejected, `runAgent rejected: ${seen.rejected}`);
    f.check(!seen.failed, `onRunFailed: ${seen.failed}`);
    f.check(
      /^RUN_STARTED( TEXT_MESSAGE_START( TEXT_MESSAGE_CONTENT)* TEXT_MESSAGE_END)? RUN_ERROR$/.test(
        types(seen),
      ),
      `event sequence: ${types(seen)}`,
    );
    checkRunIdentity(f, agent, seen);
    const err = seen.events.at(-1);
    f.equal(err?.code, "upstream_unavailable", "RUN_ERROR.code");
    f.check(typeof err?.message === "string" && err.message.length > 0, "RUN_ERROR.message");
    await checkStored(f, agent, { 1: "failed" });
  },

  // Abort mid-stream, then continue the thread: the follow-up run starts only after the
  // aborted one ended, so the stored status of the first reply is settled when it finishes.
  async abort(f) {
    const agent = new HttpAgent({ url: `${base}/agui` });
    const first = await turn(agent, "abort this reply in the middle please", {
      abortOnFirstContent: true,
    });
    f.check(first.aborted, "never saw TEXT_MESSAGE_CONTENT to abort on");
    f.check(!first.rejected, `runAgent rejected after abort: ${first.rejected}`);
    if (first.failed) {
      f.check(first.failed.name === "AbortError", `onRunFailed: ${first.failed}`);
    }
    f.check(!types(first).includes("RUN_FINISHED"), `aborted run finished: ${types(first)}`);
    const second = await turn(agent, "and now a whole reply");
    checkFinished(f, agent, second);
    const stored = await items(agent.threadId);
    f.equal(stored.length, 4, "stored item count");
    const partial = stored[1] ?? {};
    const full = expectedReply(first.text);
    f.equal(partial.status, "cancelled", "aborted reply status");
    f.check(
      typeof partial.text === "string" &&
        partial.text.length > 0 &&
        partial.text.length < full.length &&
        full.startsWith(partial.text) &&
        partial.text.startsWith(streamedText(first)),
      `aborted reply text ${JSON.stringify(partial.text)} is not a partial of ${JSON.stringify(full)} covering ${JSON.stringify(streamedText(first))}`,
    );
    f.equal(stored[3]?.status, "complete", "follow-up reply status");
    f.equal(stored[3]?.text, expectedReply(second.text), "follow-up reply text");
  },

  // Stopped by someone else (another tab): the stream must end in a shape this client
  // version accepts; 1.0 knows a cancelled outcome, 0.0.59 gets RUN_ERROR `cancelled`.
  async cancelled(f) {
    const agent = new HttpAgent({ url: `${base}/agui` });
    const cancel = () =>
      fetch(`${base}/v1/sessions/${encodeURIComponent(agent.threadId)}/cancel`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      }).then((r) => r.status);
    const seen = await turn(agent, "cancel this reply from elsewhere", { onFirstContent: cancel });
    f.equal(await seen.firstContent, 204, "cancel status");
    f.check(!seen.rejected, `runAgent rejected: ${seen.rejected}`);
    f.check(!seen.failed, `onRunFailed: ${seen.failed}`);
    checkRunIdentity(f, agent, seen);
    const closing = opts.client === "1.0.0" ? "RUN_FINISHED" : "RUN_ERROR";
    f.check(
      new RegExp(`^RUN_STARTED TEXT_MESSAGE_START( TEXT_MESSAGE_CONTENT)+ TEXT_MESSAGE_END ${closing}$`).test(types(seen)),
      `event sequence: ${types(seen)}`,
    );
    const last = seen.events.at(-1);
    if (closing === "RUN_FINISHED") f.equal(last?.outcome?.type, "cancelled", "RUN_FINISHED.outcome.type");
    else f.equal(last?.code, "cancelled", "RUN_ERROR.code");
    const stored = await checkStored(f, agent, { 1: "cancelled" });
    f.check(stored[1]?.text.length < expectedReply(seen.text).length, "cancelled reply is partial");
  },

  async multi(f) {
    const agent = new HttpAgent({ url: `${base}/agui` });
    for (const text of ["first turn", "second turn of the thread", "third and last"]) {
      const seen = await turn(agent, text);
      checkFinished(f, agent, seen);
    }
    f.equal(agent.messages.length, 6, "client-side message count");
    await checkStored(f, agent, {});
  },
};

const wanted = opts.scenario ?? Object.keys(scenarios);
let failures = 0;
for (const name of wanted) {
  const scenario = scenarios[name];
  const f = new Findings();
  consoleLines = [];
  if (!scenario) {
    f.check(false, "unknown scenario");
  } else {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("scenario timed out")), SCENARIO_TIMEOUT_MS);
    });
    try {
      await Promise.race([scenario(f), timeout]);
    } catch (err) {
      f.check(false, `threw: ${err?.stack ?? err}`);
    } finally {
      clearTimeout(timer);
    }
  }
  for (const line of consoleLines) f.check(false, line);
  if (f.list.length === 0) {
    process.stdout.write(`ok - ${opts.client} ${name}\n`);
  } else {
    failures += 1;
    process.stdout.write(`not ok - ${opts.client} ${name}\n`);
    for (const what of f.list) process.stdout.write(`    ${what}\n`);
  }
}
process.stdout.write(`VERDICT ${failures === 0 ? "ACCEPTED" : "REJECTED"}\n`);
process.exit(failures === 0 ? 0 : 1);
