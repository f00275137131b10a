// The settings panel of the chat shown: its instructions, temperature, reply length cap, reasoning effort and
// project (sent as one `update_conversation`), and named presets (save these settings; start a new chat from one).

/** Read a number field: "" is the server's default (null), anything else a number (the server checks ranges). */
function numberOrNull(input, parse) {
  const value = input.value.trim();
  return value === "" ? null : parse(value);
}

/** The settings dialog. */
export class SettingsPanel {
  /** `actions`: request(event, payload, options), current() (the shown conversation), projects(),
   * onStarted(ack) (a chat made from a preset). */
  constructor(actions) {
    this.actions = actions;
    this.dialog = document.getElementById("settings-dialog");
    this.fields = {
      instructions: document.getElementById("settings-instructions"),
      temperature: document.getElementById("settings-temperature"),
      maxTokens: document.getElementById("settings-max-tokens"),
      effort: document.getElementById("settings-effort"),
      project: document.getElementById("settings-project"),
    };
    this.error = document.getElementById("settings-error");
    document.getElementById("settings-open").addEventListener("click", () => this.open());
    document.getElementById("settings-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    document.getElementById("preset-save").addEventListener("click", () => this.savePreset());
    document.getElementById("preset-start").addEventListener("click", () => this.startFromPreset());
  }

  /** Fill the panel from the shown conversation and open it. */
  open() {
    const conversation = this.actions.current();
    if (!conversation) return;
    const { instructions, temperature, maxTokens, effort, project } = this.fields;
    instructions.value = conversation.instructions || "";
    temperature.value = conversation.temperature ?? "";
    maxTokens.value = conversation.max_tokens ?? "";
    effort.value = conversation.reasoning_effort || "";
    project.replaceChildren(new Option("none", ""));
    for (const each of this.actions.projects()) project.append(new Option(each.name, String(each.id)));
    project.value = conversation.project_id ? String(conversation.project_id) : "";
    this.showError("");
    this.loadPresets();
    this.dialog.showModal();
    instructions.focus();
  }

  /** The settings as the fields hold them (null: the default). */
  values() {
    const { instructions, temperature, maxTokens, effort } = this.fields;
    return {
      instructions: instructions.value.trim() || null,
      temperature: numberOrNull(temperature, Number),
      max_tokens: numberOrNull(maxTokens, Number),
      reasoning_effort: effort.value || null,
    };
  }

  /** Send the settings; a refusal is shown in the panel, which stays open. */
  save() {
    const conversation = this.actions.current();
    if (!conversation) return;
    const payload = { conversation_id: conversation.id, ...this.values(),
      project_id: this.fields.project.value || null };
    this.actions.request("update_conversation", payload, { quiet: true }).then((resp) => {
      if (resp && resp.ok) this.dialog.close();
      else this.showError(resp?.error?.message || "The settings could not be saved.");
    });
  }

  /** Show (or clear) the panel's error line. */
  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  /** Fill the preset picker. */
  loadPresets() {
    this.actions.request("list_presets", {}).then((resp) => {
      const pick = document.getElementById("preset-pick");
      pick.replaceChildren(new Option("choose…", ""));
      for (const preset of resp?.presets || []) pick.append(new Option(preset.name, String(preset.id)));
    });
  }

  /** Keep the fields' settings under the typed name (replacing a preset of that name). */
  savePreset() {
    const name = document.getElementById("preset-name").value.trim();
    if (!name) return;
    this.actions.request("save_preset", { name, settings: this.values(), replace: true }, { quiet: true })
      .then((resp) => {
        if (resp && resp.ok) this.loadPresets();
        else this.showError(resp?.error?.message || "The preset could not be saved.");
      });
  }

  /** Start a new chat with the picked preset's settings. */
  startFromPreset() {
    const presetId = document.getElementById("preset-pick").value;
    if (!presetId) return;
    this.actions.request("new_conversation", { preset_id: presetId }).then((resp) => {
      if (!resp) return;
      this.dialog.close();
      this.actions.onStarted(resp);
    });
  }
}
