/* The party room's sweeps (after party-modes.js; sweeps.js has the parts the stage shares): the
 * composer's Sweep, which draws the prompt across palette entries (chips of the chosen kind, or
 * one's own words) or across seeds, guidance or steps, one cell per value or pair of values; and
 * each sweep as ONE card among the renders, a table labelled by its values whose every cell shows
 * its render forming and then its image with the actions of any image (party-cards.js's
 * imageFigure). The card is keyed by sweep id, so replays and reconnects never duplicate it; it
 * sorts by its newest cell (or its best cell's score), and shows under a filter while any of
 * its cells passes, the others dimmed. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const room = PH.room;
  if (!room) return; // the join form's page: party-room.js set no room up
  const { h } = PH;
  const { state, ui, el } = room;
  const S = PH.sweeps;

  // partyhub/models/sweep.py's rules, carried by the page (sweep-rules): said here before
  // sending; the server checks them again and refuses (sweep_too_large, invalid_sweep).
  const RULES = JSON.parse(document.getElementById("sweep-rules").textContent);
  const MAX_CELLS = RULES.max_cells;
  const MAX_VALUE_CHARS = RULES.max_value_chars;
  const MAX_SEED = RULES.max_seed;
  // Each axis's values, as a sentence counts them ("pick at least 2 artists").
  const AXES = Object.fromEntries(RULES.axes.map((axis) => [axis, RULES.plurals[axis]]));
  const EXAMPLES = { seed: "1, 2, 3", guidance: "3, 7.5, 12", steps: "10, 20, 30" };
  const ACTIVE = new Set(["queued", "running"]);

  // --- The composer's Sweep -----------------------------------------------------------------------

  const box = document.getElementById("sweep");
  const toggle = document.getElementById("sweep-toggle");
  const hint = document.getElementById("sweep-hint");
  const body = document.getElementById("sweep-body");
  const toggleLabel = document.getElementById("sweep-toggle-label");
  const TITLE = toggleLabel.title;
  // What was picked per axis kind, kept while another is chosen: {x: {artist: [...]}, y: {...}}.
  const picked = { x: new Map(), y: new Map() };
  const axes = { x: axisBlock("x"), y: axisBlock("y") };
  const count = h("p", { id: "sweep-count", class: "sweep-count", role: "status" });
  body.append(axes.x.node, axes.y.node, count);
  axes.x.select.value = "artist";
  ui.sweeping = false; // the composer's Render sends a sweep

  /* One axis's block: its kind, its values as chips (the palette's of that kind to pick, and
   * one's own), and a field to add one's own (or numbers). */
  function axisBlock(which) {
    const select = h(
      "select",
      { name: `sweep_${which}`, "aria-label": which === "x" ? "Sweep across (columns)" : "Sweep down (rows)" },
      which === "y" ? h("option", { value: "" }, "nothing: one row") : null,
      Object.keys(AXES).map((axis) => h("option", { value: axis }, axis)),
    );
    const chips = h("div", { class: "chips sweep-values", role: "group", "aria-label": which === "x" ? "Values across" : "Values down" });
    const input = h("input", {
      name: `sweep_${which}_value`,
      "aria-label": which === "x" ? "Add a value across" : "Add a value down",
      autocomplete: "off",
      enterkeyhint: "done",
    });
    const add = h("button", { type: "button", class: "small" }, "Add");
    const note = h("p", { class: "hint sweep-note", role: "status", hidden: true });
    const more = h("div", { class: "sweep-more" }, chips, h("div", { class: "inline-form sweep-add" }, input, add), note);
    const node = h(
      "fieldset",
      { class: "sweep-axis", dataset: { axis: which } },
      h("legend", { class: "visually-hidden" }, which === "x" ? "Across" : "Down"),
      h("label", { class: "sweep-axis-head" }, h("span", {}, which === "x" ? "Across" : "Down"), select),
      more,
    );
    select.addEventListener("change", () => {
      if (which === "x" && select.value === axes.y.select.value) axes.y.select.value = "";
      renderSweepControls();
    });
    // Enter adds the value; in the composer's form it would render instead.
    input.addEventListener("keydown", (key) => {
      if (key.key !== "Enter") return;
      key.preventDefault();
      commitTyped(which);
    });
    input.addEventListener("change", () => commitTyped(which));
    add.addEventListener("click", () => commitTyped(which));
    return { node, select, chips, input, note, more };
  }

  function axisOf(which) {
    return axes[which].select.value;
  }

  function valuesOf(which) {
    const axis = axisOf(which);
    if (!axis) return [];
    if (!picked[which].has(axis)) picked[which].set(axis, []);
    return picked[which].get(axis);
  }

  function setValues(which, values) {
    picked[which].set(axisOf(which), values);
    renderSweepControls();
  }

  function isText(axis) {
    return S.TEXT_AXES.has(axis);
  }

  /* The same value, as the server compares them: text without regard to case, numbers as numbers. */
  function same(axis, a, b) {
    return isText(axis) ? String(a).toLowerCase() === String(b).toLowerCase() : Number(a) === Number(b);
  }

  function toggleValue(which, value) {
    const axis = axisOf(which);
    const values = valuesOf(which);
    const at = values.findIndex((known) => same(axis, known, value));
    setValues(which, at >= 0 ? values.filter((_, index) => index !== at) : [...values, value]);
  }

  /* What was typed into an axis's field goes in as values: a palette entry's own spelling when it
   * is one; for a parameter, numbers separated by commas or spaces, each checked as the server
   * will. False when something could not be taken (the note says what). */
  function commitTyped(which) {
    const block = axes[which];
    const axis = axisOf(which);
    const raw = block.input.value.trim();
    if (!raw || !axis) return true;
    const values = [...valuesOf(which)];
    const notes = [];
    const refused = []; // left in the field, to be put right
    const words = isText(axis) ? [raw] : raw.split(/[\s,;]+/).filter(Boolean);
    for (const word of words) {
      const value = isText(axis) ? paletteSpelling(axis, word) : Number(word);
      const problem = isText(axis) ? textProblem(word) : numberProblem(axis, word, value);
      if (problem) {
        notes.push(problem);
        refused.push(word);
      } else if (values.some((known) => same(axis, known, value))) notes.push(`${S.label(axis, value)} is in already`);
      else values.push(value);
    }
    block.input.value = refused.join(", ");
    picked[which].set(axis, values);
    renderSweepControls();
    showNote(which, notes.join("; "));
    return !refused.length;
  }

  function paletteSpelling(axis, word) {
    const entry = state.palette.find((e) => e.kind === axis && e.text.toLowerCase() === word.toLowerCase());
    return entry ? entry.text : word;
  }

  function textProblem(word) {
    if ([...word].length > MAX_VALUE_CHARS) return `“${word.slice(0, 20)}…” is longer than ${MAX_VALUE_CHARS} characters`;
    return null;
  }

  /* A number for a parameter axis, checked against the chosen model's limits (from /api/models). */
  function numberProblem(axis, word, value) {
    if (!Number.isFinite(value)) return `“${word}” is not a number`;
    if (axis !== "guidance" && !Number.isInteger(value)) return `${axis} takes whole numbers, not ${word}`;
    const model = ui.models.get(room.field("model").value);
    const limits = axis === "seed" ? [0, MAX_SEED] : model && model.limits[axis];
    if (limits && (value < limits[0] || value > limits[1])) return `${axis} is ${limits[0]} to ${limits[1]}, not ${word}`;
    return null;
  }

  function showNote(which, text) {
    axes[which].note.textContent = text;
    axes[which].note.hidden = !text;
  }

  /* Why the composer may not sweep now, or null. */
  function unavailable() {
    const me = state.me;
    if (me && (me.muted || me.removed)) return "You cannot render now.";
    if (ui.mode !== "txt2img") return "A sweep draws from text alone: choose Text to image to sweep.";
    if (state.steered && !(me && me.role === "prompt_master")) return "The Prompt Master steers this party: only they sweep.";
    return null;
  }

  /* What keeps the sweep from being sent, or null: it says so under the axes, and Render waits. */
  function sweepProblem() {
    const xs = valuesOf("x").length;
    const ys = axisOf("y") ? valuesOf("y").length : 1;
    if (xs < 2) return `pick at least 2 ${AXES[axisOf("x")]} across`;
    if (axisOf("y") && ys < 2) return `pick at least 2 ${AXES[axisOf("y")]} down, or sweep across only`;
    if (xs * ys > MAX_CELLS) return `a sweep has at most ${MAX_CELLS} cells; take some values away`;
    return null;
  }

  /* Whether Render waits: a sweep that cannot be sent (party-composer.js's updateSubmit asks). */
  function sweepBlocked() {
    return ui.sweeping && !!sweepProblem();
  }

  /* The Sweep section as the room is now: whether it may be used (mode, steering, muting), its
   * axes' chips and the cell count. Called again by the composer whenever its mode or the
   * party's steering changes; the fields typed in are kept. */
  function renderSweepControls() {
    const why = unavailable();
    toggle.disabled = !!why;
    if (why) toggle.checked = false;
    ui.sweeping = toggle.checked;
    toggleLabel.classList.toggle("on", ui.sweeping);
    toggleLabel.title = why || TITLE;
    // Why not, said under the modes where the mode is why; a steered party's composer says
    // already that the Prompt Master renders (the toggle's title says the rest).
    hint.textContent = why || "";
    hint.hidden = !why || ui.mode === "txt2img";
    body.hidden = !ui.sweeping;
    box.hidden = hint.hidden && body.hidden; // no empty row in the composer
    // A value left half typed in a hidden field must not hold up a plain render (lengths.js).
    for (const block of Object.values(axes)) if (!ui.sweeping) delete block.input.dataset.maxChars;
    if (ui.sweeping) {
      for (const option of axes.y.select.options) option.disabled = option.value !== "" && option.value === axisOf("x");
      renderAxis("x");
      renderAxis("y");
      renderCount();
    }
    room.updateSubmit();
  }

  function renderAxis(which) {
    const block = axes[which];
    const axis = axisOf(which);
    block.more.hidden = !axis;
    if (!axis) return showNote(which, "");
    const values = valuesOf(which);
    const focused = block.chips.contains(document.activeElement) ? document.activeElement.dataset.value : null;
    const chips = [];
    const offered = isText(axis) ? state.palette.filter((entry) => entry.kind === axis).map((entry) => entry.text) : [];
    for (const value of offered) chips.push(chip(which, axis, value, values));
    for (const value of values) {
      if (!offered.some((text) => same(axis, text, value))) chips.push(chip(which, axis, value, values, true));
    }
    block.chips.replaceChildren(...chips);
    block.chips.hidden = !chips.length;
    block.input.placeholder = isText(axis) ? `your own ${axis}` : `${AXES[axis]}, e.g. ${EXAMPLES[axis]}`;
    block.input.inputMode = isText(axis) ? "text" : "decimal";
    block.input.dataset.maxChars = isText(axis) ? String(MAX_VALUE_CHARS) : "200";
    if (focused !== null) {
      const again = [...block.chips.children].find((node) => node.dataset.value === focused);
      if (again) again.focus();
    }
  }

  /* A value's chip: pressed when picked, with its place in the grid's order. */
  function chip(which, axis, value, values, own = false) {
    const at = values.findIndex((known) => same(axis, known, value));
    const on = at >= 0;
    return h(
      "button",
      {
        type: "button",
        class: "chip" + (on ? " on" : "") + (own ? " own" : ""),
        "aria-pressed": String(on),
        title: on ? "Take it out of the sweep" : "Put it in the sweep",
        dataset: { value: String(value) },
        onclick: () => toggleValue(which, value),
      },
      on ? h("span", { class: "chip-order", "aria-hidden": "true" }, String(at + 1)) : null,
      S.label(axis, value),
    );
  }

  function renderCount() {
    const xs = valuesOf("x").length;
    const ys = axisOf("y") ? valuesOf("y").length : null;
    const cells = ys === null ? xs : xs * ys; // a second axis with no values yet: no cells
    const sum = ys === null ? `${cells} ${cells === 1 ? "cell" : "cells"}` : `${xs} × ${ys} = ${cells} cells`;
    const problem = sweepProblem();
    count.dataset.over = String(cells > MAX_CELLS);
    count.dataset.ready = String(!problem);
    count.textContent = problem ? `${sum}: ${problem}` : `${sum}, one render each${axisOf("x") === "seed" || axisOf("y") === "seed" ? "" : " with the same seed"}`;
  }

  toggle.addEventListener("change", () => {
    room.renderComposerMode(); // Render says it sweeps, and calls renderSweepControls
    if (ui.sweeping && room.hasHover()) axes.x.select.focus();
  });

  // One client_id per sweep meant, as for a prompt (party-composer.js): a second click before
  // the room has seen it arrive sends the same id, and the server makes it once.
  let submission = null; // {key, id}

  /* Render with Sweep on: the composer's text and parameters, drawn across the axes. */
  function submitSweep(text, params) {
    if (!commitTyped("x") || (axisOf("y") && !commitTyped("y"))) return;
    const problem = sweepProblem();
    if (problem) return room.showToast({ code: "invalid_sweep", message: problem[0].toUpperCase() + problem.slice(1) + "." });
    const message = { type: "sweep.submit", text, x: { axis: axisOf("x"), values: [...valuesOf("x")] } };
    if (axisOf("y")) message.y = { axis: axisOf("y"), values: [...valuesOf("y")] };
    if (ui.parent !== null) message.parent = ui.parent;
    if (Object.keys(params).length) message.params = params;
    const key = JSON.stringify(message);
    const arrived = submission && [...state.sweeps.values()].some((sweep) => sweep.client_id === submission.id);
    if (!submission || submission.key !== key || arrived) submission = { key, id: room.newClientId() };
    message.client_id = submission.id;
    room.live.send(message);
  }

  /* sweep.added: mine empties the composer, as a prompt of mine does; the axes stay, to sweep
   * the next prompt the same way. Its card comes with its cells' render.queued. */
  function sweepAdded(sweep) {
    if (state.me && sweep.author === state.me.id) room.clearComposerIfSent(sweep);
  }

  // --- The grid card ----------------------------------------------------------------------------

  const cards = new Map(); // sweep id -> its card

  /* party-cards.js's updateCard for a render: a sweep's cell redraws its cell of the sweep's
   * card (and true is returned); any other render has a card of its own. */
  function updateSweepCell(render) {
    const sweep = S.of(state, render);
    if (!sweep) return false;
    drawSweepCard(sweep, render.prompt);
    return true;
  }

  /* Create, redraw or remove the grid card of a sweep, in its place in the grid's order. With
   * `promptId`, only that cell (and the card's status) is redrawn when the card is up: progress
   * frames come many times a second, and a click on another cell must not fall between two
   * redraws of it. */
  function drawSweepCard(sweep, promptId) {
    const layout = S.grid(state, sweep);
    const old = cards.get(sweep.id);
    const images = S.images(state, layout.cells);
    const shown = layout.cells.some((cell) => cell.render) && (ui.filter === "all" || images.some((image) => image[ui.filter]));
    let card = null;
    if (shown) {
      const cell = promptId !== undefined && layout.cells.find((c) => c.prompt === promptId);
      const node = cell && old && old.isConnected && old.querySelector(`.sweep-cell[data-prompt="${promptId}"]`);
      if (node) {
        card = old;
        fillCell(node, cell);
      } else {
        card = buildCard(sweep, layout);
        if (old && old.isConnected) old.replaceWith(card);
        room.fitClamps(card);
      }
      showStatus(card, sweep, layout);
      place(card, layout);
    } else if (old) {
      old.remove();
    }
    if (card) cards.set(sweep.id, card);
    else cards.delete(sweep.id);
    el.rendersEmpty.hidden = state.renders.size > 0;
    el.rendersFiltered.hidden = !(state.renders.size > 0 && !el.renders.children.length);
    if (room.renderLightbox && ui.lightbox !== null) {
      const image = state.images.get(ui.lightbox);
      if (image && layout.cells.some((c) => c.render && c.render.id === image.render)) room.renderLightbox();
    }
  }

  /* In the grid's order (party-cards.js's), by its newest cell. */
  function place(card, layout) {
    const key = Math.max(...layout.cells.filter((cell) => cell.render).map((cell) => cell.render.id));
    card.dataset.render = String(key);
    const before = room.firstCardAfter(key);
    if (!card.isConnected || (before !== card && card.nextElementSibling !== before)) el.renders.insertBefore(card, before);
  }

  /* The images of the card a render is shown in: its sweep's every cell's, or its own. */
  function cardImageIds(render) {
    const sweep = S.of(state, render);
    return sweep ? S.grid(state, sweep).cells.flatMap((cell) => (cell.render ? cell.render.images : [])) : render.images;
  }

  function buildCard(sweep, layout) {
    const first = state.prompts.get(sweep.cells[0].prompt) || { params: {}, parent: null };
    return h(
      "article",
      { class: "card sweep-card", dataset: { sweep: sweep.id } },
      h(
        "header",
        { class: "card-head sweep-head" },
        h(
          "div",
          { class: "sweep-title" },
          h("p", { class: "eyebrow sweep-eyebrow" }, `Sweep · ${S.axesName(sweep)}`),
          room.clamped("p", "card-prompt", sweep.text, 2),
        ),
        h("span", { class: "badge sweep-status" }),
      ),
      h("div", { class: "sweep-scroll" }, sweep.y ? table(sweep, layout) : row(layout)),
      h("div", { class: "card-body" }, h("p", { class: "card-meta" }, meta(sweep, first)), h("footer", { class: "card-actions sweep-actions", hidden: true })),
    );
  }

  /* Two axes: a table, x's values over the columns, y's beside the rows. */
  function table(sweep, layout) {
    return h(
      "table",
      { class: "sweep-table", style: `--cols: ${layout.columns.length}` },
      h("caption", { class: "visually-hidden" }, `“${sweep.text}”: ${sweep.x.axis} across, ${sweep.y.axis} down`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { class: "sweep-corner", scope: "col" }, h("span", {}, sweep.x.axis + " →"), h("span", {}, sweep.y.axis + " ↓")),
          layout.columns.map((text) => h("th", { class: "sweep-col", scope: "col" }, text)),
        ),
      ),
      h(
        "tbody",
        {},
        layout.rows.map((line) =>
          h("tr", {}, h("th", { class: "sweep-row", scope: "row" }, line.label), line.cells.map((cell) => cellNode("td", cell))),
        ),
      ),
    );
  }

  /* One axis: labelled cells laid out nearly square (sweeps.js), each picture large. */
  function row(layout) {
    const columns = S.flatColumns(layout.cells.length);
    return h(
      "ol",
      { class: "sweep-flat", style: `--cols: ${columns}`, dataset: { cols: columns } },
      layout.cells.map((cell) => h("li", { class: "sweep-item" }, h("p", { class: "sweep-col" }, cell.label), cellNode("div", cell))),
    );
  }

  function cellNode(tag, cell) {
    const node = h(tag, { class: "sweep-cell", dataset: { prompt: cell.prompt, x: cell.x, y: cell.y === null ? "" : cell.y } });
    fillCell(node, cell);
    return node;
  }

  /* A cell: its picture forming, its images (each with every action of an image), or why there
   * is none. */
  function fillCell(node, cell) {
    const render = cell.render;
    const writing = node.contains(document.activeElement) && document.activeElement.name === "note";
    node.dataset.status = render ? render.status : "queued";
    node.dataset.render = render ? String(render.id) : "";
    let content;
    if (render && ACTIVE.has(render.status)) content = room.pendingPicture(render);
    else if (render && render.images.length) {
      content = render.images.map((id) => {
        const figure = room.imageFigure(id);
        const image = state.images.get(id);
        // Under a filter (the shortlist, the picks) the grid keeps its shape: the rest is dimmed.
        figure.classList.toggle("filtered-out", ui.filter !== "all" && !image[ui.filter]);
        return figure;
      });
    } else if (render) content = missing(render);
    else content = waiting(cell);
    node.replaceChildren(...[content].flat());
    room.fitClamps(node);
    if (writing) room.focusNote();
  }

  /* Before its render.queued: a box of the picture's shape. */
  function waiting(cell) {
    const p = (state.prompts.get(cell.prompt) || {}).params || {};
    return h("div", { class: "pending", style: `aspect-ratio: ${p.width || 1} / ${p.height || 1}` }, h("span", { class: "pending-label" }, "waiting"));
  }

  /* Failed, cancelled or filtered: what happened, and a way to try its prompt again. */
  function missing(render) {
    const p = render.params || {};
    const error = render.error ? render.error.message || render.error.code : "";
    return h(
      "div",
      { class: "pending sweep-missing", style: `aspect-ratio: ${p.width || 1} / ${p.height || 1}`, title: error },
      h("span", { class: "badge status-" + render.status }, render.status),
      room.mayAct() ? h("button", { type: "button", class: "small secondary", onclick: () => room.refine(render.prompt) }, "Refine") : null,
    );
  }

  /* "by Ann · seed 42 in every cell · refines “…”"; the values are the labels. */
  function meta(sweep, first) {
    const p = first.params || {};
    const parts = ["by " + PH.memberName(state, sweep.author)];
    const seedSwept = sweep.x.axis === "seed" || (sweep.y && sweep.y.axis === "seed");
    if (!seedSwept && p.seed !== undefined && p.seed !== null) parts.push(`seed ${p.seed} in every cell`);
    if (p.model && p.model !== (state.defaults.model || el.room.dataset.defaultModel)) parts.push(room.modelTitle(p.model));
    const parent = state.prompts.get(first.parent);
    if (parent) parts.push("refines “" + parent.text + "”");
    return parts.join(" · ");
  }

  /* The badge (how many cells are done), and Cancel while some are still to come. */
  function showStatus(card, sweep, layout) {
    const { done, active, total } = S.tally(layout.cells);
    const badge = card.querySelector(".sweep-status");
    card.dataset.status = active ? "running" : "done";
    badge.className = "badge sweep-status " + (active ? "status-running" : "status-done");
    badge.textContent = active ? `${done} of ${total} done` : `${total} cells`;
    const footer = card.querySelector(".sweep-actions");
    const cancel = active > 0 && room.mayCancel({ author: sweep.author });
    if (footer.hidden === !cancel) return; // unchanged: a button under the pointer stays
    footer.hidden = !cancel;
    footer.replaceChildren(
      cancel ? h("button", { type: "button", class: "small danger", onclick: () => cancelRest(sweep) }, "Cancel the rest") : null,
    );
  }

  function cancelRest(sweep) {
    for (const cell of S.grid(state, sweep).cells) {
      if (cell.render && ACTIVE.has(cell.render.status) && !room.live.send({ type: "render.cancel", render: cell.render.id })) return;
    }
  }

  Object.assign(room, { renderSweepControls, sweepBlocked, submitSweep, sweepAdded, updateSweepCell, cardImageIds });
})();
