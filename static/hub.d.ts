// TypeScript declarations for hub.js, the sessionhub browser client (copy this file next to
// the six hub*.js files; `import { HubClient } from './hub.js'` then picks it up).
// The wire objects follow PROTOCOL.md; `/openapi.json` describes the REST side.
// Kept true by tests/typescript_decls.rs: an example app that uses every export type-checks
// against this file (tsc --strict), and every export, method and field of the running module
// is declared here, and nothing more (members hub.js uses only inside are declared `private`).

/** How `HubClient` reaches the hub once connected. */
export type Transport = 'ws' | 'sse';
/** `auto`: WebSocket, and SSE when a WebSocket cannot open. */
export type TransportChoice = 'auto' | Transport;
export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';
/** What the hub does with a message sent while a run is active. */
export type BusyPolicy = 'queue' | 'reject' | 'interrupt';

/**
 * The hub's stable error codes, plus the client's own: `network` (the hub could not be
 * reached), `timeout` (no reply in time), `closed` (the client was closed).
 */
export type ErrorCode =
  | 'bad_request'
  | 'unknown_type'
  | 'too_large'
  | 'not_found'
  | 'forbidden'
  | 'unauthorized'
  | 'not_subscribed'
  | 'busy'
  | 'no_active_run'
  | 'rate_limited'
  | 'unavailable'
  | 'internal'
  | 'network'
  | 'timeout'
  | 'closed'
  | (string & {});

/** A place in a session's event stream: resume from it with `subscribe(session, since)`. */
export interface Position {
  epoch: string;
  seq: number;
}

/**
 * `running`, `pending`, `awaiting_approval` and `denied` are tool call statuses (PROTOCOL 1.1):
 * a server tool executing, a client call waiting for a front end's result, a server call
 * waiting for a person, and a call a person denied.
 */
export type ItemStatus =
  | 'complete'
  | 'streaming'
  | 'cancelled'
  | 'failed'
  | 'interrupted'
  | 'running'
  | 'pending'
  | 'awaiting_approval'
  | 'denied';

/** Who runs a tool: the hub (an MCP tool) or a front end. */
export type ToolExecutor = 'server' | 'client';

/** A client tool as offered with `send` (`send.tools`). */
export interface ToolSpec {
  /** `[A-Za-z0-9_-]{1,64}`. */
  name: string;
  description?: string;
  /** A JSON Schema object for the arguments. */
  parameters: Record<string, unknown>;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface RunError {
  code: string;
  message: string;
  retryable: boolean;
}

/** `GET /v1/models`: the ids a message may pick, and the one it runs with when it picks none. */
export interface ModelList {
  models: { id: string }[];
  default: string;
}

/**
 * A user or assistant message, a tool call (`role: 'tool'`) or a model's reasoning
 * (`role: 'reasoning'`, PROTOCOL 1.2), as listed and as carried by events.
 */
export interface Item {
  id: string;
  role: 'user' | 'assistant' | 'tool' | 'reasoning' | (string & {});
  text: string;
  status: ItemStatus | (string & {});
  /** RFC 3339 UTC. */
  created_at: string;
  client_msg_id?: string;
  run_id?: string;
  reply_to?: string;
  finish_reason?: 'stop' | 'length';
  usage?: Usage;
  error_code?: string;
  /** A user item's context (a JSON object given to the model, never shown as text). */
  context?: Record<string, unknown>;
  /**
   * A user item's context from other sources (PROTOCOL 1.2): `chatkit_metadata`,
   * `quoted_text`, `tags`, `agui_context`, `forwarded_props`, `session_metadata`, `identity`.
   */
  context_sources?: Record<string, unknown>;
  /** The model id a user item's runs use, or that wrote an assistant item (PROTOCOL 1.2). */
  model?: string;
  /** A user item's client tools: what its run and continuations may call. */
  tools?: ToolSpec[];
  /** Tool items: the assistant item of the model turn that made the call. */
  parent_id?: string;
  /** Tool items: the id `sendToolResult` and `approveTool` name. */
  call_id?: string;
  /** Tool items: the tool's name. */
  name?: string;
  /** Tool items: the JSON text of the arguments. */
  arguments?: string;
  executor?: ToolExecutor;
  /** Tool items: the result, absent until there is one. */
  output?: string;
  /** Reasoning items: the assistant item (the reply) the reasoning preceded. */
  answer_id?: string;
}

/** A tool call: an `Item` whose tool fields are all there. */
export interface ToolItem extends Item {
  role: 'tool';
  parent_id: string;
  call_id: string;
  name: string;
  arguments: string;
  executor: ToolExecutor;
}

export interface SessionInfo {
  id: string;
  title: string | null;
  created_at: string;
  updated_at: string;
  metadata?: Record<string, unknown>;
}

export interface SessionList {
  sessions: SessionInfo[];
  has_more: boolean;
}

export interface ItemsPage {
  items: Item[];
  has_more: boolean;
}

/** A stored message: `send` resolves with it once the message is durable. */
export interface Ack {
  type: 'ack';
  session: string;
  client_msg_id: string;
  item_id: string;
  epoch: string;
  seq: number;
  /** True when this `client_msg_id` was stored before: the message exists once. */
  duplicate: boolean;
  run_id?: string;
}

/** A tool result or approval stored: the position of the call's `tool.result` event. */
export interface ToolAck {
  type: 'ack';
  session: string;
  call_id: string;
  epoch: string;
  seq: number;
  /** True when this call was already resolved the same way: the first answer stands. */
  duplicate: boolean;
}

export interface ActiveRun {
  run_id: string;
  item_id: string;
  reply_to: string;
  text: string;
  /** The run's reasoning item while it streams, with its text so far (PROTOCOL 1.2). */
  reasoning?: Item;
}

export interface QueuedRun {
  run_id: string;
  reply_to: string;
}

/** A session's state as of `seq`; live events with a higher `seq` follow. */
export interface Snapshot {
  type: 'snapshot';
  session: string;
  epoch: string;
  seq: number;
  title: string | null;
  items: Item[];
  has_more: boolean;
  active_run: ActiveRun | null;
  queued: QueuedRun[];
  /** Tool calls waiting for a client's result or an approval (not among `items`). */
  pending_tool_calls?: ToolItem[];
  /** The shared state document (PROTOCOL 1.2), null while the session has none. */
  state?: Record<string, unknown> | null;
  /** The document's version: 0 before any, one more per change. */
  state_version?: number;
}

/** What every sequenced event carries. */
export interface EventBase {
  session: string;
  epoch: string;
  seq: number;
  /** Server time, Unix milliseconds. */
  ts: number;
}

export interface MessageEvent extends EventBase {
  type: 'message';
  item: Item;
}
export interface RunQueuedEvent extends EventBase {
  type: 'run.queued';
  run_id: string;
  reply_to: string;
}
export interface RunStartedEvent extends EventBase {
  type: 'run.started';
  run_id: string;
  item_id: string;
  reply_to: string;
  /** A continuation run: the run whose tool calls were resolved. */
  continues?: string;
}
export interface RunDeltaEvent extends EventBase {
  type: 'run.delta';
  run_id: string;
  item_id: string;
  text: string;
}
export interface RunCompletedEvent extends EventBase {
  type: 'run.completed';
  run_id: string;
  item: Item;
  /** Call ids of this run still waiting for a client or an approval. */
  pending_tool_calls?: string[];
}
export interface RunCancelledEvent extends EventBase {
  type: 'run.cancelled';
  run_id: string;
  /** Set when a queued run was cancelled before it started (then `item` is null). */
  reply_to?: string;
  item: Item | null;
}
export interface RunFailedEvent extends EventBase {
  type: 'run.failed';
  run_id: string;
  item: Item;
  error: RunError;
}
export interface SessionUpdatedEvent extends EventBase {
  type: 'session.updated';
  title: string | null;
}
export interface ItemsRemovedEvent extends EventBase {
  type: 'items.removed';
  /** Oldest first. */
  item_ids: string[];
}
export interface SessionDeletedEvent extends EventBase {
  type: 'session.deleted';
}
/** A later model turn's assistant item (the first is announced by `run.started`). */
export interface ItemStartedEvent extends EventBase {
  type: 'item.started';
  run_id: string;
  item: Item;
}
/** An assistant item that is not its run's last one ended. */
export interface ItemCompletedEvent extends EventBase {
  type: 'item.completed';
  run_id: string;
  item: Item;
}
/** The model started a tool call; its arguments follow as `tool.delta`. */
export interface ToolStartedEvent extends EventBase {
  type: 'tool.started';
  run_id: string;
  item: ToolItem;
}
export interface ToolDeltaEvent extends EventBase {
  type: 'tool.delta';
  run_id: string;
  item_id: string;
  /** The fragments concatenate to the call's `arguments`. */
  arguments: string;
}
/** The call's arguments are complete; its status says what happens next. */
export interface ToolCalledEvent extends EventBase {
  type: 'tool.called';
  run_id: string;
  item: ToolItem;
}
/** The call's result, or its end (denied, cancelled, interrupted). */
export interface ToolResultEvent extends EventBase {
  type: 'tool.result';
  run_id: string;
  item: ToolItem;
}

/** The next piece of a streaming reasoning item's text (PROTOCOL 1.2); never part of a reply. */
export interface ReasoningDeltaEvent extends EventBase {
  type: 'reasoning.delta';
  run_id: string;
  item_id: string;
  text: string;
}

/** The sequenced events of PROTOCOL.md versions 1, 1.1 and 1.2 (a newer hub may send more types). */
export type HubEvent =
  | MessageEvent
  | RunQueuedEvent
  | RunStartedEvent
  | RunDeltaEvent
  | RunCompletedEvent
  | RunCancelledEvent
  | RunFailedEvent
  | SessionUpdatedEvent
  | ItemsRemovedEvent
  | SessionDeletedEvent
  | ItemStartedEvent
  | ItemCompletedEvent
  | ToolStartedEvent
  | ToolDeltaEvent
  | ToolCalledEvent
  | ToolResultEvent
  | SharedStateSnapshotEvent
  | SharedStateDeltaEvent
  | ReasoningDeltaEvent;

/** The shared state document was replaced (PROTOCOL 1.2). */
export interface SharedStateSnapshotEvent extends EventBase {
  type: 'state.snapshot';
  state: Record<string, unknown>;
  version: number;
}
/** The shared state document changed by an RFC 6902 JSON Patch (PROTOCOL 1.2). */
export interface SharedStateDeltaEvent extends EventBase {
  type: 'state.delta';
  patch: Array<{ op: string; path: string; from?: string; value?: unknown }>;
  version: number;
}

/** `state` listeners get this on every change. */
export interface StateChange {
  state: ConnectionState;
  transport: Transport | null;
  /** True when `auto` had to fall back to SSE. */
  fallback: boolean;
  /** While reconnecting: why the last connection ended. */
  reason?: string;
  retryInMs?: number;
  attempt?: number;
}

/** A subscription is live (over SSE the fields come from the stream's headers). */
export interface Subscribed {
  session: string;
  resume?: 'replay' | 'snapshot' | (string & {});
  epoch?: string;
  head_seq?: number;
}

/** What a registered tool's handler is told about the call it runs. */
export interface ToolCallInfo {
  session: string;
  callId: string;
  name: string;
  /** The arguments' JSON text, as the model wrote it. */
  arguments: string;
}

/**
 * Runs a registered client tool: `args` are the parsed arguments. A string is sent as the
 * output as it is, anything else as JSON; a throw (or rejection) is sent as an error result.
 */
export type ToolHandler = (args: Record<string, unknown>, call: ToolCallInfo) => unknown;

/** A registered tool ran for a call; `outcome` says what became of its result. */
export interface ToolRun {
  session: string;
  callId: string;
  name: string;
  output: string;
  isError: boolean;
  /**
   * `sent`: the hub took it; `duplicate`: it had this very result already; `superseded`: the
   * call was resolved otherwise first (another tab's result won, or it was cancelled).
   */
  outcome: 'sent' | 'duplicate' | 'superseded';
  ack?: ToolAck;
  error?: HubError;
}

/** What each `on(type, listener)` listener receives. */
export interface HubClientEvents {
  state: StateChange;
  event: HubEvent;
  snapshot: Snapshot;
  subscribed: Subscribed;
  ack: Ack;
  tool: ToolRun;
  error: HubError;
}

export interface HubClientOptions {
  /** The hub's base URL (default: the page's origin). */
  url?: string;
  transport?: TransportChoice;
  /** Ping interval on the WebSocket (default 15000). */
  heartbeatMs?: number;
  /** A ping unanswered this long is a dead link (default 10000). */
  heartbeatTimeoutMs?: number;
  /** Silence on an SSE stream longer than this is a dead link (default 45000). */
  sseIdleMs?: number;
  connectTimeoutMs?: number;
  cancelTimeoutMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Extra HTTP headers for REST and SSE. */
  headers?: Record<string, string>;
  /** Bearer token (with authentication on): sent on REST and SSE, traded for a WebSocket ticket. */
  token?: string | null;
}

/** An error answered by the hub (`code` is its stable code) or by the network. */
export class HubError extends Error {
  constructor(code: ErrorCode, message?: string, extra?: Record<string, unknown>);
  code: ErrorCode;
  /** The HTTP status, for errors of REST calls. */
  status?: number;
  /** The session the error concerns, when there is one. */
  session?: string;
  /** The hub's `error` frame, for errors that arrived on the WebSocket. */
  frame?: unknown;
}

/** Sessions and items over REST; `HubClient` inherits these. */
declare class HubRest {
  constructor(base: string, headers?: Record<string, string>, token?: string | null);
  /** The hub's base URL, without a trailing slash. */
  readonly base: string;
  headers: Record<string, string>;
  token: string | null;
  /** Replaces the bearer token (for example after a refresh); new requests use it. */
  setToken(token: string | null): void;
  /** The configured headers, plus `Authorization` when a token is set. */
  authHeaders(): Record<string, string>;
  /** JSON in, JSON out; a non-2xx answer rejects with a `HubError` carrying the hub's code. */
  http<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  createSession(fields?: { title?: string | null; metadata?: Record<string, unknown> }): Promise<SessionInfo>;
  listSessions(options?: { limit?: number; before?: string }): Promise<SessionList>;
  /** The model ids a message may pick, and the default (`GET /v1/models`). */
  listModels(): Promise<ModelList>;
  getSession(id: string): Promise<SessionInfo>;
  renameSession(id: string, title: string | null): Promise<SessionInfo>;
  /** Resolves with `null` (204). */
  deleteSession(id: string): Promise<null>;
  listItems(id: string, options?: { limit?: number; before?: string; after?: string }): Promise<ItemsPage>;
}

/** One logical connection to the hub (WebSocket or SSE), resuming every subscribed session. */
export class HubClient extends HubRest {
  constructor(options?: HubClientOptions);
  readonly state: ConnectionState;
  /** Set once a connection is attempted. */
  readonly transport: Transport | null;
  /** True when `auto` had to use SSE. */
  readonly fallback: boolean;
  /** Listens; returns a function that stops listening. */
  on<K extends keyof HubClientEvents>(type: K, listener: (detail: HubClientEvents[K]) => void): () => void;
  /** Opens the connection (idempotent). Subscriptions and sends may be made before it opens. */
  connect(): void;
  /** Closes everything; pending sends reject with code `closed`. */
  close(): void;
  /** Skips the backoff wait (the browser came back online, or the user asked). */
  reconnectNow(): void;
  /** Switches transport; subscriptions and pending sends carry over. */
  setTransport(transport: TransportChoice): void;
  /** Follows a session: a `snapshot` (or the replayed events), then every live `event`. */
  subscribe(session: string, since?: Position | null): void;
  unsubscribe(session: string): void;
  /** The last position applied for a session, to resume from later. */
  position(session: string): Position | null;
  /**
   * Resolves with the `ack` once the hub stored the message durably; retried over reconnects.
   * The registered client tools go with it; `context` is given to the model, never shown;
   * `model` picks one of the ids `listModels()` gives (unknown: `bad_request`).
   */
  send(
    session: string,
    text: string,
    options?: { onBusy?: BusyPolicy; clientMsgId?: string; context?: Record<string, unknown>; model?: string },
  ): Promise<Ack>;
  /**
   * Registers a client tool, offered with every later `send`; its calls waiting for a client
   * run `handler` and the result is sent by itself. Returns a function that unregisters it.
   */
  registerTool(spec: { name: string; description?: string; parameters?: Record<string, unknown> }, handler: ToolHandler): () => void;
  /** Resolves a `pending` client call; resolves with the ack once the result is durable. */
  sendToolResult(session: string, callId: string, output: string, options?: { isError?: boolean }): Promise<ToolAck>;
  /**
   * Approves or denies an `awaiting_approval` call (`arguments` replaces the model's). An
   * approved call runs at the hub first: the ack comes once its result is durable.
   */
  approveTool(
    session: string,
    callId: string,
    approved: boolean,
    options?: { arguments?: string | Record<string, unknown> },
  ): Promise<ToolAck>;
  /** Sends not acknowledged yet, for a UI that shows them as "sending". */
  pending(session: string): Array<{ clientMsgId: string; text: string }>;
  /** Cancels `runId` (or the active run); resolves once the hub accepted it. */
  cancel(session: string, runId?: string | null): Promise<void>;

  private opts;
  private listeners;
  private subs;
  private pendingSends;
  private toolbox;
  private attempt;
  private wsEverOpened;
  private closed;
  private link;
  private retryTimer;
  private generation;
  private onOnline;
  private emit;
  private setState;
  private teardown;
  private scheduleReconnect;
  private cancelRetry;
  private openWs;
  private openWsLink;
  private wsFailed;
  private wsSubscribe;
  private openSse;
  private connectedSse;
  private sseSubscribe;
  private onFrame;
  private onSequenced;
  private resubscribe;
  private subscribeFailed;
  private flushSends;
  private trySend;
  private onAck;
}

/** An item as `SessionView` holds it: a streaming reply has no `created_at` yet. */
export interface ViewItem extends Omit<Item, 'created_at'> {
  created_at?: string;
  /** The error of a failed run. */
  error?: RunError;
}

/** What `SessionView.apply` changed, so a UI repaints only that. */
export type ViewChange =
  | { kind: 'reset' }
  | { kind: 'item'; item: ViewItem }
  | { kind: 'delta'; item: ViewItem }
  | { kind: 'meta' };

/** A session's state rebuilt from a snapshot plus the events that follow. */
export class SessionView {
  constructor(id: string);
  readonly id: string;
  title: string;
  /** In creation order. */
  items: ViewItem[];
  byId: Map<string, ViewItem>;
  /** Runs waiting for the active one, in start order. */
  queued: QueuedRun[];
  activeRun: string | null;
  hasMore: boolean;
  deleted: boolean;
  /** Messages sent from this tab and not yet seen as a `message` event: client_msg_id -> text. */
  pending: Map<string, string>;
  /** Bumped by every change. */
  version: number;
  /** True while a run streams: the UI shows Stop. */
  readonly streaming: boolean;
  /** The streaming assistant item, if any. */
  readonly activeItem: ViewItem | null;
  /** Tool calls waiting for a client's result or a person's approval. */
  readonly waitingCalls: ViewItem[];
  isQueued(itemId: string): boolean;
  queuedRunFor(itemId: string): string | null;
  addPending(clientMsgId: string, text: string): void;
  dropPending(clientMsgId: string): void;
  /** Applies a snapshot or a sequenced event (unknown event types change nothing). */
  apply(frame: Snapshot | HubEvent | (EventBase & { type: string })): ViewChange;
  /** Older items fetched with `listItems` go before the current ones. */
  prepend(older: Item[], hasMore: boolean): void;

  private applySnapshot;
  private applyEnd;
  private upsert;
  private insertAfterTurn;
}

/** A fresh id for `send`; the hub treats a repeat of it as the same message. */
export function newClientMsgId(): string;

/** Exponential backoff with jitter: a random wait between half and all of the current step. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number;

export {};
