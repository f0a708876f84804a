/* The party room's composer (after party-room.js): refining a prompt, steering, sending a prompt
 * with the parameters that differ from the model's defaults, counting its characters and its
 * tokens, and the chosen model's notice. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const room = PH.room;
  if (!room) return; // the join form's page: party-room.js set no room up
  const { h, api } = PH;
  const { state, ui, el } = room;

  // --- Composer -------------------------------------------------------------------------------

  // "Best of" is on the page only where a CLIP model ranks the candidates (party.html).
  const PARAM_FIELDS = ["model", "sampler", "width", "height", "steps", "guidance", "seed", "count", "negative", "best_of"].filter(
    (name) => el.composer.elements[name],
  );
  const INT_FIELDS = new Set(["width", "height", "steps", "seed", "count", "best_of"]);
  // The most characters a prompt, a negative prompt or a walk's end prompt may have
  // (generation/params.py's MAX_PROMPT_CHARS, which the page carries).
  const MAX_CHARS = Number(el.room.dataset.maxPromptChars);
  // What the server uses when the request leaves these out (generation/params.py).
  const BUILTIN_DEFAULTS = { seed: "", negative: "", count: 1, best_of: "", weights: false };

  function refine(promptId) {
    const prompt = state.prompts.get(promptId);
    if (!prompt) return;
    ui.parent = promptId;
    el.text.value = prompt.text;
    el.refiningText.textContent = prompt.text;
    el.refiningText.title = prompt.text; // shown on one line, cut with an ellipsis
    el.refining.hidden = false;
    el.composer.scrollIntoView({ behavior: "smooth", block: "start" });
    el.text.focus();
    el.text.setSelectionRange(el.text.value.length, el.text.value.length);
    countTokensSoon();
  }

  /* In a steered party the others' prompts go to the Prompt Master as proposals. */
  function proposing() {
    return state.steered && !(state.me && state.me.role === "prompt_master");
  }

  function renderComposerMode() {
    const iAmMaster = !!state.me && state.me.role === "prompt_master";
    el.steer.hidden = !iAmMaster;
    el.steerToggle.checked = state.steered;
    el.steeredNote.hidden = !proposing();
    room.renderSweepControls(); // party-sweeps.js: whether the prompt may be swept now
    const render = ui.sweeping ? "Render the sweep" : "Render";
    el.submit.textContent = ui.waiting ? "Waiting for the connection…" : proposing() ? "Propose" : render;
  }

  /* A prompt sent while the socket is not open waits in the outbox (live.js): Render says so
   * until it is sent. Another click meanwhile is harmless: the same client_id replaces it. */
  function showWaiting(messages) {
    ui.waiting = messages.some((message) => ["prompt.submit", "prompt.propose", "sweep.submit"].includes(message.type));
    el.composer.classList.toggle("waiting", ui.waiting);
    renderComposerMode();
  }

  el.steerToggle.addEventListener("change", () => {
    const wanted = el.steerToggle.checked;
    el.steerToggle.checked = state.steered; // the party.steered event, not this box, is the truth
    room.live.send({ type: "party.steer", steered: wanted });
  });

  function clearRefine() {
    ui.parent = null;
    el.refining.hidden = true;
    el.refiningText.textContent = "";
  }

  /* The composer empties once the server accepted our prompt, so a refused one can be fixed. */
  function clearComposerIfSent(prompt) {
    if (el.text.value.trim() !== prompt.text) return;
    el.text.value = "";
    clearRefine();
    countTokensSoon();
  }

  document.getElementById("refining-clear").addEventListener("click", clearRefine);

  // One client_id per prompt meant, and the server queues a prompt once per id: a second click
  // on the same prompt (a double click, an impatient one) before the room has seen it accepted
  // sends the same id, or nothing while the first is still being prepared (a repaint uploads its
  // mask first). A changed prompt, or one the room has seen arrive, gets a fresh id.
  let submission = null; // {key, id, preparing}

  el.composer.addEventListener("submit", async (submit) => {
    submit.preventDefault();
    const text = el.text.value.trim();
    if (!text) return room.showToast({ code: "invalid_prompt", message: "Write a prompt first." });
    const params = collectParams();
    if (!params) return;
    if (ui.sweeping) return room.submitSweep(text, params); // party-sweeps.js: from text alone
    const key = JSON.stringify([text, ui.parent, ui.mode, ui.source && [ui.source.kind, ui.source.id], params]);
    const arrived = submission && [...state.prompts.values()].some((prompt) => prompt.client_id === submission.id);
    if (!submission || submission.key !== key || arrived) submission = { key, id: room.newClientId(), preparing: false };
    else if (submission.preparing) return;
    const mine = submission;
    mine.preparing = true;
    try {
      Object.assign(params, await room.modeParams());
    } catch (error) {
      return room.showToast({ code: error.code, message: error.message });
    } finally {
      mine.preparing = false;
    }
    const message = { type: proposing() ? "prompt.propose" : "prompt.submit", text, client_id: mine.id };
    if (ui.parent !== null) message.parent = ui.parent;
    if (Object.keys(params).length) message.params = params;
    room.live.send(message);
  });

  // Ctrl/Cmd+Enter renders from the textarea, as in most chat-like tools (not past a limit).
  el.text.addEventListener("keydown", (key) => {
    if (key.key === "Enter" && (key.ctrlKey || key.metaKey) && !el.submit.disabled) el.composer.requestSubmit();
  });

  function field(name) {
    return el.composer.elements[name];
  }

  function selectedModel() {
    return ui.models.get(field("model").value);
  }

  /* What the server would use for a parameter we leave out: the party's defaults over the preset's. */
  function defaultFor(name) {
    const model = selectedModel();
    if (name === "model") return state.defaults.model || el.room.dataset.defaultModel;
    if (name in state.defaults) return state.defaults[name];
    if (model && name in model.defaults) return model.defaults[name];
    return BUILTIN_DEFAULTS[name];
  }

  /* Only parameters the user touched or that differ from the defaults; null if one is invalid. */
  function collectParams() {
    const params = {};
    for (const name of PARAM_FIELDS) {
      const input = field(name);
      if (!input.checkValidity()) {
        el.params.open = true;
        input.focus();
        room.showToast({ code: "invalid_param", message: `${name}: ${input.validationMessage}` });
        return null;
      }
      const raw = input.value.trim();
      if (raw === "") continue; // an empty field means "the default" (for seed: a random one)
      const value = name === "model" || name === "sampler" || name === "negative" ? raw : Number(raw);
      if (INT_FIELDS.has(name) && !Number.isInteger(value)) {
        room.showToast({ code: "invalid_param", message: `${name} must be a whole number.` });
        return null;
      }
      if (ui.touched.has(name) || String(value) !== String(defaultFor(name))) params[name] = value;
    }
    // Prompt weights: a box, sent once touched or where it differs from the party's default.
    const weights = field("weights").checked;
    if (ui.touched.has("weights") || weights !== Boolean(defaultFor("weights"))) params.weights = weights;
    return params;
  }

  /* Fill the parameter panel from the chosen model: its samplers, defaults and limits. */
  /* keepTouched: the first fill, when the models arrive; what someone typed before that stays. */
  function applyModel({ keepTouched = false } = {}) {
    const model = selectedModel();
    if (!model) return;
    const kept = keepTouched ? ui.touched : new Set();
    const sampler = field("sampler");
    sampler.replaceChildren(...model.samplers.map((name) => h("option", { value: name }, name)));
    for (const name of ["sampler", "width", "height", "steps", "guidance", "count", "seed", "negative", "best_of"]) {
      if (!field(name)) continue; // best_of, without a CLIP model
      const limits = model.limits[name];
      if (limits) {
        field(name).min = limits[0];
        field(name).max = limits[1];
      }
      if (kept.has(name)) continue;
      const value = defaultFor(name);
      field(name).value = value === undefined || value === null ? "" : value;
    }
    if (!kept.has("weights")) field("weights").checked = Boolean(defaultFor("weights"));
    // A model that cannot weigh prompts refuses weights (the token counter says so at once).
    document.getElementById("weights-note").hidden = model.prompt_weights;
    ui.touched = new Set(field("model").value === defaultFor("model") ? kept : [...kept, "model"]);
    showModelNotice(model);
    countTokensSoon(); // another model, another limit
  }

  /* The offline model's notice: one line ("more" shows the rest), and gone for good on this
   * browser once dismissed, here and on the home page (the same key). */
  function showModelNotice(model) {
    el.modelNotice.hidden = true;
    if (!model.offline) return;
    PH.oneLineNotice(el.modelNotice, "partyhub:notice-dismissed:" + model.name, model.title, model.note + " The README explains how.");
  }

  async function loadModels() {
    try {
      const presets = await api("GET", "/api/models");
      for (const preset of presets) if (preset.available) ui.models.set(preset.name, preset);
    } catch (error) {
      room.showToast({ code: error.code, message: "Could not load the models: " + error.message });
      return;
    }
    const select = field("model");
    select.replaceChildren(
      ...[...ui.models.values()].map((preset) => h("option", { value: preset.name }, preset.title || preset.name)),
    );
    // The snapshot may not have arrived yet; the party's default model falls back to the server's.
    const wanted = (state.defaults && state.defaults.model) || el.room.dataset.defaultModel;
    if (ui.models.has(wanted)) select.value = wanted;
    applyModel({ keepTouched: true });
  }

  field("model").addEventListener("change", () => applyModel());
  field("weights").addEventListener("change", () => {
    ui.touched.add("weights");
    countTokensSoon(); // the syntax is no tokens with weights, and tokens without
  });
  for (const name of PARAM_FIELDS) {
    if (name !== "model") field(name).addEventListener("input", () => ui.touched.add(name));
  }
  document.getElementById("params-reset").addEventListener("click", () => {
    field("model").value = defaultFor("model");
    applyModel();
  });

  // --- Token counters -------------------------------------------------------------------------

  /* The model's text encoder reads at most `token_limit` tokens (from /api/models); the server
   * refuses longer text (prompt_too_long) rather than cut it. Counting needs the model's own
   * tokenizer, so the server counts: POST /api/models/<name>/tokens, 250 ms after the last change. */
  const TOKEN_FIELDS = [
    { input: el.text, output: document.getElementById("prompt-tokens"), always: true },
    { input: field("negative"), output: document.getElementById("negative-tokens") },
    { input: field("walk_to"), output: document.getElementById("walk-to-tokens") },
  ];
  for (const counter of TOKEN_FIELDS) counter.title = counter.output.title;
  let tokenTimer = null;
  let tokenRound = 0; // answers to an older round of counting are dropped

  /* Also counts the characters, at once: every change of a text, typed or not, comes here. */
  function countTokensSoon() {
    countChars();
    clearTimeout(tokenTimer);
    tokenTimer = setTimeout(countTokens, 250);
  }

  function countTokens() {
    const model = selectedModel();
    const limit = model ? model.token_limit : null;
    const round = ++tokenRound;
    const weights = field("weights").checked;
    for (const counter of TOKEN_FIELDS) {
      const text = counter.input.value.trim();
      const shown = `${model && model.name}\n${weights}\n${text}`;
      if (counter.shown === shown && !counter.output.hidden) continue; // counted already
      counter.shown = null;
      // Past the character limit the server counts nothing (invalid_prompt): the character
      // count says what is wrong.
      if (limit === null || limit === undefined || (!text && !counter.always) || [...text].length > MAX_CHARS) {
        counter.output.hidden = true; // nothing to count against: the model reads it all
        continue;
      }
      if (!text) {
        showTokens(counter, shown, { tokens: 0, limit, weighted: [] }, model, weights);
        continue;
      }
      const body = weights ? { text, weights } : { text };
      api("POST", `/api/models/${encodeURIComponent(model.name)}/tokens`, body).then(
        (answer) => round === tokenRound && showTokens(counter, shown, answer, model, weights, text),
        (error) => {
          if (round !== tokenRound) return;
          // Weights the model refuses, or syntax it cannot read: said now, as on submit.
          if (weights && (error.code === "invalid_prompt" || error.code === "invalid_param")) showRefusal(counter, shown, error.message);
          else counter.output.hidden = true; // the server still checks on submit
        },
      );
    }
  }

  // What A1111 would read as a weight, when the box is off: here those are plain characters.
  const LOOKS_WEIGHTED = /\([^()]*:\s*[\d.]+\s*\)/;

  function showTokens(counter, shown, { tokens, limit, weighted }, model, weights, text = "") {
    const over = tokens > limit;
    const output = counter.output;
    counter.shown = shown;
    output.hidden = false;
    output.dataset.over = String(over);
    output.style.color = over ? "var(--red)" : "";
    // "18 / 22 tokens · 2 weighted", each piece and its weight on hover.
    const pieces = (weighted || []).map((piece) => `${piece.text} ×${Number(piece.weight.toFixed(3))}`);
    output.title = pieces.length ? pieces.join(", ") : counter.title;
    const plain = !weights && model.prompt_weights && LOOKS_WEIGHTED.test(text);
    output.textContent =
      `${tokens} / ${limit} tokens` +
      (pieces.length ? ` · ${pieces.length} weighted` : "") +
      (plain ? " · brackets read as text: tick Prompt weights to weigh them" : "") +
      (over ? ` · too long for ${model.title || model.name}: shorten it by ${tokens - limit}` : "");
  }

  function showRefusal(counter, shown, message) {
    counter.shown = shown;
    counter.output.hidden = false;
    counter.output.dataset.over = "true";
    counter.output.style.color = "var(--red)";
    counter.output.title = counter.title;
    counter.output.textContent = message;
  }

  for (const counter of TOKEN_FIELDS) counter.input.addEventListener("input", countTokensSoon);

  // --- Character counters ---------------------------------------------------------------------

  /* The server takes at most MAX_CHARS characters (after trimming) in a prompt, a negative
   * prompt and a walk's end prompt, and refuses more (invalid_prompt). The fields have no
   * maxlength, which would cut a long paste silently: past the limit the count shows in red
   * ("5,000 / 1,000 characters") and Render waits until it is shortened. The count shows from
   * 90% of the limit on. */
  const CHAR_FIELDS = [
    { input: el.text, output: document.getElementById("prompt-chars") },
    { input: field("negative"), output: document.getElementById("negative-chars") },
    { input: field("walk_to"), output: document.getElementById("walk-to-chars") },
  ];
  const number = (n) => n.toLocaleString("en-US");

  function countChars() {
    for (const counter of CHAR_FIELDS) {
      // Characters as the server counts them (code points, not UTF-16 units), after trimming.
      const length = [...counter.input.value.trim()].length;
      const over = length > MAX_CHARS;
      counter.over = over && !(counter.input === field("walk_to") && ui.mode !== "walk");
      counter.output.hidden = length < 0.9 * MAX_CHARS;
      counter.output.dataset.over = String(over);
      counter.output.textContent =
        `${number(length)} / ${number(MAX_CHARS)} characters` + (over ? `: shorten it by ${number(length - MAX_CHARS)}` : "");
      counter.input.setAttribute("aria-invalid", String(over));
      // Its token count means nothing past the limit (the server counts no such text).
      const tokens = TOKEN_FIELDS.find((field) => field.input === counter.input);
      if (over && tokens) tokens.output.hidden = true;
    }
    updateSubmit();
  }

  /* Render waits while a text is over its limit, or while I may not render (muted, removed). */
  function updateSubmit() {
    const me = state.me;
    const locked = !!me && (me.muted || me.removed);
    el.submit.disabled = locked || CHAR_FIELDS.some((counter) => counter.over) || room.sweepBlocked();
  }

  for (const radio of el.composer.elements.mode) radio.addEventListener("change", countChars);

  Object.assign(room, { refine, renderComposerMode, showWaiting, clearComposerIfSent, field, countTokensSoon, countChars, updateSubmit, loadModels });
})();
