// AG-UI conformance driver: runs the official `@ag-ui/client` HttpAgent against the hub's
// POST /agui and fails on any client verification error or warning.
//
// Usage: node driver.mjs --url http://127.0.0.1:PORT --client 1.0.0|0.0.59
//                        [--deltas 12] [--scenario NAME]...
// Scenarios: normal, failure, abort, cancelled, multi (the default set), reasoning (a `/think`
// message: REASONING_* events before the reply, then a second turn), and tools (a frontend
// tool's round trip) and approval (an interrupt answered by `resume`: needs the test MCP server
// as `py` with `--tool-approval py__echo`), and state (shared state: the client's initial state
// adopted, STATE_SNAPSHOT after RUN_STARTED, the `state__patch` tool's STATE_DELTA applied by
// the client itself). The hub must run the scripted agent with
// `--scripted-deltas` equal to --deltas, so the driver can predict every reply.
// Prints one `ok`/`not ok` line per scenario, then `VERDICT ACCEPTED` (exit 0) or
// `VERDICT REJECTED` (exit 1).

import { randomUUID } from "node:crypto";
import { isDeepStrictEqual, parseArgs } from "node:util";

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

/** The scripted agent's reasoning for a `/think` message (see `scripted.rs`). */
function expectedReasoning(text) {
  const rest = text.trim().replace(/^\/think/, "");
  const words = ["Thinking", "about", ...rest.split(/\s+/).filter(Boolean).slice(0, 64)];
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
async function turn(agent, text, opts = {}) {
  const messageId = randomUUID();
  agent.addMessage({ id: messageId, role: "user", content: text });
  const seen = await run(agent, opts);
  return { ...seen, messageId, text };
}

/**
 * One runAgent call on the agent's messages as they are (`params`: tools, resume); records
 * what the client saw, `finished` being what onRunFinishedEvent was told.
 */
async function run(agent, { abortOnFirstContent = false, onFirstContent = null, params = {} } = {}) {
  const runId = randomUUID();
  const seen = { runId, events: [], failed: null, rejected: null, aborted: false, finished: null };
  const subscriber = {
    onRunFinishedEvent({ outcome, pendingToolCallIds, interrupts }) {
      seen.finished = { outcome, pendingToolCallIds, interrupts };
    },
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
    await agent.runAgent({ runId, ...params }, subscriber);
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

/** The client tool the `tools` scenario declares. */
const PAGE_TOOL = {
  name: "get_page",
  description: "The page the user is looking at",
  parameters: { type: "object", properties: { detail: { type: "boolean" } } },
};
/** The test MCP server's echo tool, gated by `--tool-approval`. */
const GATED_TOOL = "py__echo";

/**
 * Checks for a run that ends with one tool call waiting: an (empty) assistant message, the call
 * parented to it with the arguments the scripted agent wrote, and no result. Returns the call as
 * the client holds it.
 */
function checkCallEnded(f, agent, seen, name, args) {
  f.check(!seen.rejected, `runAgent rejected: ${seen.rejected}`);
  f.check(!seen.failed, `onRunFailed: ${seen.failed}`);
  f.check(
    /^RUN_STARTED TEXT_MESSAGE_START TEXT_MESSAGE_END TOOL_CALL_START( TOOL_CALL_ARGS)+ TOOL_CALL_END RUN_FINISHED$/.test(types(seen)),
    `event sequence: ${types(seen)}`,
  );
  checkRunIdentity(f, agent, seen);
  const message = seen.events.find((e) => e.type === "TEXT_MESSAGE_START");
  const start = seen.events.find((e) => e.type === "TOOL_CALL_START");
  f.equal(start?.toolCallName, name, "TOOL_CALL_START.toolCallName");
  f.equal(start?.parentMessageId, message?.messageId, "TOOL_CALL_START.parentMessageId");
  const streamedArgs = seen.events.filter((e) => e.type === "TOOL_CALL_ARGS").map((e) => e.delta).join("");
  f.equal(streamedArgs, args, "TOOL_CALL_ARGS deltas");
  const local = agent.messages.find((m) => m.id === message?.messageId);
  f.equal(local?.role, "assistant", "client-side call message role");
  const call = local?.toolCalls?.[0];
  f.equal(local?.toolCalls?.length, 1, "client-side tool calls");
  f.equal(call?.id, start?.toolCallId, "client-side call id");
  f.equal(call?.function?.name, name, "client-side call name");
  f.equal(call?.function?.arguments, args, "client-side call arguments");
  return call;
}

/** Checks for a run that streams one reply containing `quote` and finishes with nothing waiting. */
function checkReply(f, agent, seen, quote) {
  f.check(!seen.rejected, `runAgent rejected: ${seen.rejected}`);
  f.check(!seen.failed, `onRunFailed: ${seen.failed}`);
  f.check(
    /TEXT_MESSAGE_START( TEXT_MESSAGE_CONTENT)+ TEXT_MESSAGE_END RUN_FINISHED$/.test(types(seen)),
    `event sequence: ${types(seen)}`,
  );
  checkRunIdentity(f, agent, seen);
  f.equal(seen.events.at(-1)?.outcome, undefined, "RUN_FINISHED.outcome");
  const text = streamedText(seen);
  f.check(text.includes(quote), `the continuation ${JSON.stringify(text)} does not quote ${JSON.stringify(quote)}`);
  const start = seen.events.find((e) => e.type === "TEXT_MESSAGE_START");
  const local = agent.messages.find((m) => m.id === start?.messageId);
  f.equal(local?.content, text, "client-side reply text");
}

/** The state the `state` scenario starts with, the tool call's patch, and the result. */
const INITIAL_STATE = { title: "List", todo: ["milk"] };
const STATE_PATCH = [
  { op: "add", path: "/todo/-", value: "eggs" },
  { op: "replace", path: "/title", value: "Shopping" },
];
const PATCHED_STATE = { title: "Shopping", todo: ["milk", "eggs"] };

async function hubState(threadId) {
  const res = await fetch(`${base}/v1/sessions/${encodeURIComponent(threadId)}/state`);
  if (!res.ok) throw new Error(`GET state: HTTP ${res.status}: ${await res.text()}`);
  return res.json();
}

const scenarios = {
  async state(f) {
    const agent = new HttpAgent({ url: `${base}/agui`, initialState: structuredClone(INITIAL_STATE) });
    const first = await turn(agent, `/tool state__patch ${JSON.stringify({ patch: STATE_PATCH })}`);
    f.check(!first.rejected, `runAgent rejected: ${first.rejected}`);
    f.check(!first.failed, `onRunFailed: ${first.failed}`);
    f.check(
      /^RUN_STARTED STATE_SNAPSHOT TEXT_MESSAGE_START TEXT_MESSAGE_END TOOL_CALL_START( TOOL_CALL_ARGS)+ TOOL_CALL_END STATE_DELTA TOOL_CALL_RESULT TEXT_MESSAGE_START( TEXT_MESSAGE_CONTENT)+ TEXT_MESSAGE_END RUN_FINISHED$/.test(types(first)),
      `event sequence: ${types(first)}`,
    );
    checkRunIdentity(f, agent, first);
    const snapshot = first.events.find((e) => e.type === "STATE_SNAPSHOT");
    f.check(isDeepStrictEqual(snapshot?.snapshot, INITIAL_STATE), `STATE_SNAPSHOT.snapshot: ${JSON.stringify(snapshot?.snapshot)}`);
    const delta = first.events.find((e) => e.type === "STATE_DELTA");
    f.check(isDeepStrictEqual(delta?.delta, STATE_PATCH), `STATE_DELTA.delta: ${JSON.stringify(delta?.delta)}`);
    // The client's own state, which it computed by applying the events.
    f.check(isDeepStrictEqual(agent.state, PATCHED_STATE), `client state after the run: ${JSON.stringify(agent.state)}`);
    const stored = await hubState(agent.threadId);
    f.check(isDeepStrictEqual(stored, { state: PATCHED_STATE, version: 2 }), `hub state: ${JSON.stringify(stored)}`);
    // The next run sends the client's state, equal to the hub's: nothing changes, the run opens
    // with the same snapshot.
    const second = await turn(agent, "and now?");
    f.check(!second.rejected && !second.failed, `second run: ${second.rejected ?? second.failed}`);
    f.check(/^RUN_STARTED STATE_SNAPSHOT TEXT_MESSAGE_START/.test(types(second)), `second sequence: ${types(second)}`);
    f.check(isDeepStrictEqual(agent.state, PATCHED_STATE), `client state after the second run: ${JSON.stringify(agent.state)}`);
    const again = await hubState(agent.threadId);
    f.equal(again.version, 2, "hub state version after an equal state");
  },

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

  // A reasoning model's turn: the reasoning span and message close before the reply's text
  // starts; the client keeps a `reasoning` message beside the reply, the hub stores both (ids
  // included), and the next turn (whose messages carry the reasoning back) is a plain reply.
  async reasoning(f) {
    const agent = new HttpAgent({ url: `${base}/agui` });
    const seen = await turn(agent, "/think about the hub's reasoning");
    f.check(!seen.rejected, `runAgent rejected: ${seen.rejected}`);
    f.check(!seen.failed, `onRunFailed: ${seen.failed}`);
    f.check(
      /^RUN_STARTED TEXT_MESSAGE_START REASONING_START REASONING_MESSAGE_START( REASONING_MESSAGE_CONTENT)+ REASONING_MESSAGE_END REASONING_END( TEXT_MESSAGE_CONTENT)+ TEXT_MESSAGE_END RUN_FINISHED$/.test(types(seen)),
      `event sequence: ${types(seen)}`,
    );
    checkRunIdentity(f, agent, seen);
    const thought = expectedReasoning(seen.text);
    const streamed = seen.events.filter((e) => e.type === "REASONING_MESSAGE_CONTENT").map((e) => e.delta).join("");
    f.equal(streamed, thought, "streamed reasoning");
    const start = seen.events.find((e) => e.type === "REASONING_MESSAGE_START");
    f.equal(start?.role, "reasoning", "REASONING_MESSAGE_START.role");
    for (const e of seen.events.filter((e) => e.type.startsWith("REASONING_"))) {
      f.equal(e.messageId, start?.messageId, `${e.type}.messageId`);
    }
    const local = agent.messages.find((m) => m.id === start?.messageId);
    f.equal(local?.role, "reasoning", "client-side reasoning role");
    f.equal(local?.content, thought, "client-side reasoning text");
    f.equal(streamedText(seen), expectedReply(seen.text), "streamed reply (no reasoning in it)");
    await checkStored(f, agent, {});
    const next = await turn(agent, "and a plain second turn");
    checkFinished(f, agent, next);
    await checkStored(f, agent, {});
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

  // A frontend tool: the run ends with the call, the application runs it and sends its result
  // as a tool message, and the next run (no new user message) is the continuation quoting it.
  async tools(f) {
    const agent = new HttpAgent({ url: `${base}/agui` });
    const tools = [PAGE_TOOL];
    const first = await turn(agent, `/tool ${PAGE_TOOL.name} {"detail": true}`, { params: { tools } });
    const call = checkCallEnded(f, agent, first, PAGE_TOOL.name, '{"detail": true}');
    if (opts.client === "1.0.0") {
      f.equal(JSON.stringify(first.events.at(-1)?.outcome), JSON.stringify({ type: "success", pendingToolCallIds: [call?.id] }), "RUN_FINISHED.outcome");
      f.equal(JSON.stringify(first.finished?.pendingToolCallIds), JSON.stringify([call?.id]), "onRunFinishedEvent pendingToolCallIds");
    } else {
      f.equal(first.events.at(-1)?.outcome, undefined, "RUN_FINISHED.outcome (0.0.59 knows no pendingToolCallIds)");
    }
    // What an application answers: the calls in its messages that have no tool message yet.
    const answered = new Set(agent.messages.filter((m) => m.role === "tool").map((m) => m.toolCallId));
    const unanswered = agent.messages.flatMap((m) => m.toolCalls ?? []).filter((c) => !answered.has(c.id));
    f.equal(unanswered.map((c) => c.id).join(), call?.id, "calls left to the application");

    const output = JSON.stringify({ title: "Pricing", url: "/pricing" });
    agent.addMessage({ id: randomUUID(), role: "tool", toolCallId: call?.id, content: output });
    const second = await run(agent, { params: { tools } });
    checkReply(f, agent, second, `Tool ${PAGE_TOOL.name} returned: ${output}`);
    const stored = await items(agent.threadId);
    f.equal(stored.map((i) => `${i.role}:${i.status}`).join(" "), "user:complete assistant:complete tool:complete assistant:complete", "stored items");
    f.equal(stored[2]?.call_id, call?.id, "stored call id");
    f.equal(stored[2]?.output, output, "stored tool output");
    f.equal(stored[2]?.parent_id, stored[1]?.id, "the call's assistant item");
    f.equal(stored[3]?.text, streamedText(second), "stored continuation text");
  },

  // A server tool that waits for approval: the run ends with an interrupt naming the call, and
  // the next run answers it with `resume`: the approved call runs with the approver's arguments,
  // its result streams as TOOL_CALL_RESULT, and the continuation quotes it.
  async approval(f) {
    const agent = new HttpAgent({ url: `${base}/agui` });
    const first = await turn(agent, `/tool ${GATED_TOOL} {"text": "ship it"}`);
    const call = checkCallEnded(f, agent, first, GATED_TOOL, '{"text": "ship it"}');
    const outcome = first.events.at(-1)?.outcome;
    f.equal(outcome?.type, "interrupt", "RUN_FINISHED.outcome.type");
    const interrupt = outcome?.interrupts?.[0];
    f.equal(outcome?.interrupts?.length, 1, "interrupt count");
    f.equal(interrupt?.reason, "tool_call", "interrupt reason");
    f.equal(interrupt?.toolCallId, call?.id, "interrupt toolCallId");
    f.equal(agent.pendingInterrupts.map((i) => i.id).join(), interrupt?.id, "the client's pending interrupts");

    // The client refuses, by itself, a next run that leaves the interrupt unanswered.
    const unanswered = await turn(agent, "ignore the question");
    f.check(/pending interrupt/.test(String(unanswered.rejected)), `unanswered interrupt: ${unanswered.rejected}`);
    agent.setMessages(agent.messages.slice(0, -1));

    const resume = [{ interruptId: interrupt?.id, status: "resolved", payload: { approved: true, arguments: { text: "shipped" } } }];
    const second = await run(agent, { params: { resume } });
    f.check(/^RUN_STARTED TOOL_CALL_RESULT TEXT_MESSAGE_START/.test(types(second)), `event sequence: ${types(second)}`);
    const result = second.events.find((e) => e.type === "TOOL_CALL_RESULT");
    f.equal(result?.toolCallId, call?.id, "TOOL_CALL_RESULT.toolCallId");
    f.equal(result?.content, "shipped", "the approver's arguments ran");
    checkReply(f, agent, second, `Tool ${GATED_TOOL} returned: shipped`);
    f.equal(agent.pendingInterrupts.length, 0, "pending interrupts after the resume");
    const local = agent.messages.find((m) => m.role === "tool" && m.toolCallId === call?.id);
    f.equal(local?.content, "shipped", "client-side tool message");
    const stored = await items(agent.threadId);
    f.equal(stored.map((i) => `${i.role}:${i.status}`).join(" "), "user:complete assistant:complete tool:complete assistant:complete", "stored items");
    f.equal(stored[2]?.arguments, '{"text":"shipped"}', "stored arguments");
  },
};

// Context and model choice (PROTOCOL 1.2): the client's own `context` and `forwardedProps`
// parameters reach the hub in the shapes it accepts; `forwardedProps.model` picks the model
// (`scripted`, the scripted agent's one id), the rest is stored as the message's context; an
// unknown model is refused before anything is stored.
scenarios.context = async (f) => {
  const agent = new HttpAgent({ url: `${base}/agui` });
  const context = [{ description: "current page", value: "/pricing" }];
  const seen = await turn(agent, "where am I?", {
    params: { context, forwardedProps: { model: "scripted", locale: "fr" } },
  });
  checkFinished(f, agent, seen);
  const stored = await checkStored(f, agent, {});
  f.equal(JSON.stringify(stored[0]?.context_sources?.agui_context), JSON.stringify(context), "stored context entries");
  f.equal(JSON.stringify(stored[0]?.context_sources?.forwarded_props), '{"locale":"fr"}', "stored forwardedProps");
  f.equal(stored[1]?.model, "scripted", "the reply's model");
  f.equal(stored[1]?.text?.includes("/pricing"), false, "the context is not text");

  const before = stored.length;
  const mark = consoleLines.length;
  const refused = await turn(agent, "and now?", { params: { forwardedProps: { model: "no-such-model" } } });
  f.check(refused.rejected || refused.failed, "an unknown model is refused");
  f.check(!refused.events.some((e) => e.type === "RUN_STARTED"), `no run started: ${types(refused)}`);
  f.equal((await items(agent.threadId)).length, before, "nothing stored for the unknown model");
  // The client library reports the refused request on the console; that is expected here.
  consoleLines = consoleLines
    .slice(0, mark)
    .concat(consoleLines.slice(mark).filter((l) => !/400|no-such-model|bad_request|HTTP/i.test(l)));
};

const wanted = opts.scenario ?? ["normal", "failure", "abort", "cancelled", "multi"];
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
