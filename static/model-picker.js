// The composer's model picker (PROTOCOL 1.2, "Model choice"): filled from GET /v1/models,
// the default selected unless this browser picked another listed id before; the choice goes
// with every message as `send.model`. Hidden while the hub lists a single model.

const MODEL_KEY = 'sessionhub.model';

export class ModelPicker {
  constructor(select, hub) {
    this.select = select;
    this.hub = hub;
    this.select.addEventListener('change', () => localStorage.setItem(MODEL_KEY, this.select.value));
  }

  /** Fetches the list and fills the picker; failures leave it empty (the hub's default applies). */
  async load() {
    const { models, default: fallback } = await this.hub.listModels();
    const saved = localStorage.getItem(MODEL_KEY);
    const ids = models.map((m) => m.id);
    this.select.replaceChildren(
      ...ids.map((id) => {
        const o = document.createElement('option');
        o.value = id;
        o.textContent = id === fallback ? `${id} (default)` : id;
        return o;
      }),
    );
    this.select.value = ids.includes(saved) ? saved : fallback;
    this.select.hidden = ids.length < 2;
    this.select.dataset.ready = 'true';
  }

  /** The id to send with a message, or undefined before the list arrived. */
  value() {
    return this.select.value || undefined;
  }
}
