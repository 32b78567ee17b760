// A reasoning item (PROTOCOL 1.2) drawn as a collapsible "thinking" block above the reply it
// preceded: open while the model thinks, collapsed once the thinking ends (the reply started,
// or the run finished, stopped or failed). The reader may open or close it at any time; the
// page only changes it when the thinking starts or ends.

const LABEL = {
  streaming: 'Thinking…',
  complete: 'Thought',
  cancelled: 'Thinking stopped',
  failed: 'Thinking stopped',
  interrupted: 'Thinking interrupted',
};

/** What a repaint depends on. */
export function thinkingSignature(item) {
  return `${item.status}|${item.text.length}`;
}

export function thinkingShell(item) {
  const node = document.createElement('article');
  node.className = 'msg thinking';
  node.dataset.id = item.id;
  node.dataset.role = 'reasoning';
  const details = document.createElement('details');
  details.className = 'thinking-block';
  const summary = document.createElement('summary');
  const body = document.createElement('div');
  body.className = 'thinking-body';
  details.append(summary, body);
  node.append(details);
  return node;
}

/** Paints `item` into `node`; opens or collapses the block only when its streaming state flips. */
export function paintThinking(node, item) {
  const streaming = item.status === 'streaming';
  node.dataset.status = item.status;
  const details = node.querySelector('details');
  if (details.dataset.streaming !== String(streaming)) {
    details.dataset.streaming = String(streaming);
    details.open = streaming;
  }
  node.querySelector('summary').textContent = LABEL[item.status] || 'Thought';
  node.querySelector('.thinking-body').textContent = item.text;
}
