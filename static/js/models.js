// The model picker in the header: the models the operator allows (list_models), the active conversation's
// choice (set_model), and a nudge towards it when a model has gone away.

/** The header's model <select>, fed by the server's list. */
export class ModelPicker {
  /** Bind to #model-picker; `choose(model)` asks the server to set the active conversation's model (null: default). */
  constructor(choose) {
    this.select = document.getElementById("model-picker");
    this.label = document.getElementById("model-name");
    this.models = [];
    this.defaultId = null;
    this.current = null;
    this.select.addEventListener("change", () => {
      const value = this.select.value;
      choose(value === this.defaultId ? null : value);
    });
  }

  /** Fill the list from the list_models ack ({models, default}). */
  setModels({ models = [], default: defaultId = null } = {}) {
    this.models = models;
    this.defaultId = defaultId;
    const options = models.map((model) => {
      const option = document.createElement("option");
      option.value = model.id;
      const name = (model.label || model.id) + (model.vision ? " · sees pictures" : "");
      option.textContent = model.id === defaultId ? `${name} (default)` : name;
      if (model.reasoning) option.dataset.reasoning = "1";
      if (model.vision) option.dataset.vision = "1";
      return option;
    });
    this.select.replaceChildren(...options);
    this.select.disabled = models.length < 2;
    this.select.hidden = models.length === 0;
    // Beside the picker the label names the provider only; without one, provider and model (see showProvider).
    this.label.textContent = (models.length > 0 ? this.label.dataset.provider : this.label.dataset.full)
      ?? this.label.textContent;
    this.show(this.current);
  }

  /** Show the model a conversation uses (null/undefined: the default). */
  show(model) {
    this.current = model || null;
    const wanted = this.current || this.defaultId;
    if (wanted && ![...this.select.options].some((o) => o.value === wanted)) {
      const option = document.createElement("option");
      option.value = wanted;
      option.textContent = `${wanted} (not offered any more)`;
      this.select.append(option);
    }
    if (wanted) this.select.value = wanted;
  }

  /** Draw the eye to the picker (a model the provider retired). */
  nudge() {
    this.select.classList.add("is-nudged");
    this.select.focus();
    setTimeout(() => this.select.classList.remove("is-nudged"), 2400);
  }
}
