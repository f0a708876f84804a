/* The party room: join form, composer with parameters, live render grid, people, prompt tree and
 * associations. State lives in one object (see live.js); the DOM is redrawn from it per section,
 * and render cards are keyed by render id so replays and reconnects never duplicate one. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const { h, api } = PH;

  const joinForm = document.getElementById("join-form");
  if (joinForm) return setUpJoinForm(joinForm);

  const room = document.getElementById("room");
  const state = PH.createState(room.dataset.code);
  const ui = {
    models: new Map(), // name -> preset from /api/models (available ones only)
    parent: null, // the prompt id the composer refines, or null
    touched: new Set(), // parameter fields the user changed since the model's defaults were set
    cards: new Map(), // render id -> its card element
    sort: "newest", // "newest", or the image field a card's best image is ranked by
    filter: "all", // "all", or the image flag ("shortlisted", "picked") an image must have to show
    noting: null, // {image, text}: the pick note being written, kept while its card is redrawn
    mode: "txt2img",
    source: null, // {kind: "image" | "upload", id, url, width, height} for the source modes
    maskPainted: false,
  };
  const el = {
    composer: document.getElementById("composer"),
    text: document.getElementById("prompt-text"),
    params: document.getElementById("params"),
    refining: document.getElementById("refining"),
    refiningText: document.getElementById("refining-text"),
    modelNotice: document.getElementById("model-notice"),
    toasts: document.getElementById("toasts"),
    renders: document.getElementById("renders"),
    renderSort: document.getElementById("render-sort"),
    rendersEmpty: document.getElementById("renders-empty"),
    members: document.getElementById("members"),
    tree: document.getElementById("prompt-tree"),
    proposals: document.getElementById("proposals"),
    proposalsPanel: document.getElementById("proposals-panel"),
    palette: document.getElementById("palette"),
    paletteForm: document.getElementById("palette-form"),
    steer: document.getElementById("steer"),
    steerToggle: document.getElementById("steer-toggle"),
    steeredNote: document.getElementById("steered-note"),
    submit: document.getElementById("composer-submit"),
    rendersFiltered: document.getElementById("renders-filtered"),
    publish: document.getElementById("publish-toggle"),
    galleryLink: document.getElementById("gallery-link"),
    treeEmpty: document.getElementById("tree-empty"),
    associations: document.getElementById("associations"),
    associationForm: document.getElementById("association-form"),
    connection: document.getElementById("connection"),
    source: document.getElementById("source"),
    sourceEmpty: document.getElementById("source-empty"),
    sourceFrame: document.getElementById("source-frame"),
    sourceImg: document.getElementById("source-img"),
    sourceUpload: document.getElementById("source-upload"),
    sourceFile: document.getElementById("source-file"),
    maskCanvas: document.getElementById("mask-canvas"),
    maskClear: document.getElementById("mask-clear"),
    maskHint: document.getElementById("mask-hint"),
    walk: document.getElementById("walk"),
  };
  const PARAM_FIELDS = ["model", "sampler", "width", "height", "steps", "guidance", "seed", "count", "negative"];
  const INT_FIELDS = new Set(["width", "height", "steps", "seed", "count"]);
  // What the server uses when the request leaves these out (generation/params.py).
  const BUILTIN_DEFAULTS = { seed: "", negative: "", count: 1 };

  // --- Joining --------------------------------------------------------------------------------

  function setUpJoinForm(form) {
    form.addEventListener("submit", async (submit) => {
      submit.preventDefault();
      const error = form.querySelector(".form-error");
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        await api("POST", `/api/parties/${form.dataset.code}/join`, { name: form.elements.name.value.trim() });
        location.reload(); // the server now knows this session as a member and renders the room
      } catch (failure) {
        error.textContent = failure.message;
        error.hidden = false;
        button.disabled = false;
      }
    });
  }

  // --- Live events ----------------------------------------------------------------------------

  const live = PH.follow(state, {
    onReset: renderAll,
    onEvent,
    onProgress: (frame) => updateCard(frame.render),
    onError: showToast,
    onStatus: (name, detail) => PH.showConnection(el.connection, name, detail),
  });

  function onEvent(event) {
    switch (event.type) {
      case "member.joined":
      case "role.changed":
      case "member.muted":
        renderMembers();
        renderCards(); // names and what I may do (pick, cancel) show on every card
        renderMyLimits();
        renderComposerMode();
        renderProposals();
        renderPalette();
        renderPublishing();
        break;
      case "party.published":
        renderPublishing();
        break;
      case "member.removed":
        renderMembers();
        if (state.me && event.member.id === state.me.id) showToast({ message: "A facilitator removed you from this party." });
        break;
      case "prompt.added":
      case "prompt.proposed":
        renderTree();
        renderProposals();
        if (state.me && event.prompt.author === state.me.id) clearComposerIfSent(event.prompt);
        break;
      case "proposal.accepted":
      case "proposal.set_aside":
        renderTree();
        renderProposals();
        break;
      case "party.steered":
        renderComposerMode();
        break;
      case "palette.added":
        renderPalette();
        break;
      case "render.queued":
        updateCard(event.render.id);
        break;
      case "render.done":
        updateCard(event.render);
        renderTree(); // thumbnails
        break;
      case "render.retrying":
      case "render.failed":
      case "render.cancelled":
      case "render.filtered":
        updateCard(event.render);
        break;
      case "vote.changed":
      case "image.shortlisted":
      case "image.picked": {
        const image = state.images.get(event.image);
        if (image) updateCard(image.render);
        break;
      }
      case "association.added":
        renderAssociations();
        break;
    }
  }

  function renderAll() {
    renderMembers();
    renderMyLimits();
    renderComposerMode();
    renderCards();
    renderTree();
    renderProposals();
    renderAssociations();
    renderPalette();
    renderPublishing();
  }

  // --- Render cards ---------------------------------------------------------------------------

  function renderCards() {
    ui.cards.clear();
    el.renders.replaceChildren();
    const newestFirst = [...state.renders.keys()].sort((a, b) => b - a);
    for (const id of newestFirst) updateCard(id);
  }

  /* Create or redraw the card of one render, in its place in the grid's order. A redrawn card
   * is placed again: render.done brings the scores a score order ranks it by. */
  function updateCard(id) {
    const render = state.renders.get(id);
    if (!render) return;
    const old = ui.cards.get(id);
    const writing = !!old && old.contains(document.activeElement) && document.activeElement.name === "note";
    if (old) old.remove();
    ui.cards.delete(id);
    if (shownImages(render).length || (ui.filter === "all" && !render.images.length)) {
      const card = buildCard(render);
      el.renders.insertBefore(card, firstCardAfter(id));
      ui.cards.set(id, card);
    }
    el.rendersEmpty.hidden = state.renders.size > 0;
    el.rendersFiltered.hidden = !(state.renders.size > 0 && ui.cards.size === 0);
    if (writing) focusNote();
  }

  /* The images of a render the grid's filter lets through. */
  function shownImages(render) {
    return render.images.filter((id) => ui.filter === "all" || (state.images.get(id) || {})[ui.filter]);
  }

  function firstCardAfter(id) {
    for (const card of el.renders.children) {
      if (comesBefore(id, Number(card.dataset.render))) return card;
    }
    return null;
  }

  /* Newest first; by a score, higher first, cards without one last, newest first among equals. */
  function comesBefore(a, b) {
    if (ui.sort !== "newest") {
      const scoreA = bestScore(a, ui.sort);
      const scoreB = bestScore(b, ui.sort);
      if (scoreA !== scoreB) {
        if (scoreA === null || scoreB === null) return scoreB === null;
        return scoreA > scoreB;
      }
    }
    return a > b;
  }

  /* A render's score is its best image's; null when none of its images has one. */
  function bestScore(renderId, field) {
    const render = state.renders.get(renderId);
    let best = null;
    for (const imageId of render ? render.images : []) {
      const image = state.images.get(imageId);
      const score = image ? image[field] : null;
      if (typeof score === "number" && (best === null || score > best)) best = score;
    }
    return best;
  }

  el.renderSort.addEventListener("click", (click) => {
    const button = click.target.closest("button[data-sort], button[data-filter]");
    if (!button) return;
    const key = button.dataset.sort ? "sort" : "filter";
    ui[key] = button.dataset[key];
    for (const option of el.renderSort.querySelectorAll(`button[data-${key}]`)) {
      const on = option === button;
      option.classList.toggle("on", on);
      option.setAttribute("aria-pressed", String(on));
    }
    renderCards();
  });

  function buildCard(render) {
    const prompt = state.prompts.get(render.prompt) || { text: "", author: null, parent: null };
    const active = render.status === "queued" || render.status === "running";
    return h(
      "article",
      { class: "card", dataset: { render: render.id, status: render.status } },
      h(
        "header",
        { class: "card-head" },
        h("p", { class: "card-prompt" }, prompt.text),
        h("span", { class: "badge status-" + render.status }, statusLabel(render)),
      ),
      h("p", { class: "card-meta" }, cardMeta(render, prompt)),
      active ? progressBar(render) : null,
      active ? previewImage(render) : null,
      render.animation
        ? h("img", { class: "animation", src: render.animation, alt: "the walk, animated", loading: "lazy" })
        : null,
      render.status === "failed" && render.error
        ? h("p", { class: "card-error" }, render.error.message || render.error.code)
        : null,
      render.images.length
        ? h("div", { class: "card-images count-" + Math.min(shownImages(render).length, 4) }, shownImages(render).map(imageFigure))
        : null,
      h(
        "footer",
        { class: "card-actions" },
        // Each image has its own Refine button; a render without images needs one of its own.
        render.images.length
          ? null
          : h("button", { type: "button", class: "small", onclick: () => refine(render.prompt) }, "Refine"),
        active && mayCancel(prompt)
          ? h("button", { type: "button", class: "small danger", onclick: () => cancel(render.id) }, "Cancel")
          : null,
      ),
    );
  }

  function statusLabel(render) {
    const label = runningLabel(render);
    // After a worker died or stalled: "retrying (2 of 3)" until the new worker reports.
    if (render.status !== "running" || !render.attempt) return label;
    return `${label === "rendering" ? "retrying" : label} (${render.attempt} of ${render.maxAttempts})`;
  }

  function runningLabel(render) {
    const progress = state.progress.get(render.id);
    if (render.status === "running" && progress && progress.phase === "decoding") return "decoding";
    if (render.status === "running" && progress) return `rendering ${progress.step}/${progress.steps}`;
    if (render.status === "running") return "rendering";
    return render.status;
  }

  function cardMeta(render, prompt) {
    const p = render.params || {};
    const parts = ["by " + PH.memberName(state, prompt.author)];
    if (p.mode && p.mode !== "txt2img") parts.push(MODE_NAMES[p.mode] || p.mode);
    if (p.model) parts.push(p.model);
    if (p.width && p.height) parts.push(`${p.width}×${p.height}`);
    if (p.steps) parts.push(`${p.steps} steps`);
    if (p.seed !== undefined && p.seed !== null) parts.push(`seed ${p.seed}`);
    const parent = state.prompts.get(prompt.parent);
    if (parent) parts.push("refines “" + parent.text + "”");
    return parts.join(" · ");
  }

  /* The picture forming: a small WebP the worker decodes every few steps (TAESD). */
  function previewImage(render) {
    const progress = state.progress.get(render.id);
    if (!progress || !progress.preview) return null;
    const p = render.params || {};
    return h("img", { class: "preview", src: progress.preview, alt: "preview of the image forming", width: String(p.width || 64), height: String(p.height || 64) });
  }

  function progressBar(render) {
    const progress = state.progress.get(render.id);
    const fraction = progress && progress.steps ? progress.step / progress.steps : 0;
    return h(
      "div",
      { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(fraction * 100)) },
      h("div", { class: "progress-bar" + (render.status === "queued" ? " waiting" : ""), style: `width: ${fraction * 100}%` }),
    );
  }

  function imageFigure(imageId) {
    const image = state.images.get(imageId);
    const render = state.renders.get(image.render);
    const prompt = state.prompts.get(render.prompt);
    const curator = PH.mayPick(state.me);
    const classes = ["shot", image.picked && "picked", image.shortlisted && "shortlisted"].filter(Boolean);
    return h(
      "figure",
      { class: classes.join(" "), dataset: { image: image.id } },
      h(
        "a",
        { href: image.url, target: "_blank", rel: "noopener" },
        h("img", { src: image.url, width: String(image.width), height: String(image.height), alt: prompt ? prompt.text : "", loading: "lazy" }),
      ),
      image.picked ? h("span", { class: "ribbon" }, "Pick") : image.shortlisted ? h("span", { class: "ribbon short" }, "Shortlist") : null,
      image.picked && image.note ? h("p", { class: "pick-note" }, "“" + image.note + "” — " + PH.memberName(state, image.picked_by)) : null,
      h(
        "p",
        { class: "shot-scores", title: "CLIP similarity of this image to its prompt and to the party's topic (–: not scored)" },
        `prompt ${formatScore(image.score)} · topic ${formatScore(image.topic_score)}`,
      ),
      ui.noting && ui.noting.image === image.id ? noteForm(image) : null,
      h(
        "figcaption",
        { class: "shot-actions" },
        h(
          "button",
          {
            type: "button",
            class: "small vote" + (image.voted ? " on" : ""),
            "aria-pressed": String(!!image.voted),
            "aria-label": `Star (${image.votes} so far)`,
            title: image.voted ? "Take your star back" : "Star this image",
            onclick: () => live.send({ type: "vote", image: image.id, value: image.voted ? 0 : 1 }),
          },
          (image.voted ? "★ " : "☆ ") + image.votes,
        ),
        curator
          ? h(
              "button",
              {
                type: "button",
                class: "small shortlist" + (image.shortlisted ? " on" : ""),
                "aria-pressed": String(!!image.shortlisted),
                onclick: () => live.send({ type: "shortlist", image: image.id, shortlisted: !image.shortlisted }),
              },
              image.shortlisted ? "✓ Shortlisted" : "Shortlist",
            )
          : null,
        curator
          ? h(
              "button",
              {
                type: "button",
                class: "small pick" + (image.picked ? " on" : ""),
                "aria-pressed": String(!!image.picked),
                onclick: () => (image.picked ? live.send({ type: "pick", image: image.id, picked: false }) : startNote(image)),
              },
              image.picked ? "Unpick" : "Pick…",
            )
          : null,
        curator && image.picked
          ? h("button", { type: "button", class: "small", onclick: () => startNote(image) }, "Edit note")
          : null,
        h("button", { type: "button", class: "small", onclick: () => refine(render.prompt) }, "Refine"),
        h(
          "button",
          { type: "button", class: "small", title: "Use this image as the source of a redraw, repaint or variation", onclick: () => useImage(image, render) },
          "Use",
        ),
      ),
    );
  }

  /* The Art Expert says in one line why an image is a pick; the pick is sent with it. */
  function startNote(image) {
    ui.noting = { image: image.id, text: image.note || "" };
    updateCard(image.render);
    focusNote();
  }

  function focusNote() {
    const input = ui.noting && el.renders.querySelector(`figure[data-image="${ui.noting.image}"] .note-form input`);
    if (input) {
      input.focus();
      input.setSelectionRange(input.value.length, input.value.length);
    }
  }

  /* Votes and other events redraw the card while the note is written: the draft lives in
   * ui.noting, not in the input, so nothing typed is lost. */
  function noteForm(image) {
    const input = h("input", {
      name: "note",
      maxlength: "200",
      value: ui.noting.text,
      placeholder: "why this one, in a line (optional)",
      "aria-label": "Pick note",
      oninput: () => (ui.noting.text = input.value),
    });
    const done = () => {
      ui.noting = null;
      updateCard(image.render);
    };
    return h(
      "form",
      {
        class: "note-form inline-form",
        onsubmit: (submit) => {
          submit.preventDefault();
          if (live.send({ type: "pick", image: image.id, picked: true, note: input.value.trim() })) done();
        },
      },
      input,
      h("button", { type: "submit", class: "small primary" }, image.picked ? "Save" : "Pick"),
      h("button", { type: "button", class: "small link", onclick: done }, "Cancel"),
    );
  }

  function formatScore(score) {
    return typeof score === "number" ? score.toFixed(2) : "–";
  }

  function mayCancel(prompt) {
    const me = state.me;
    return !!me && (me.role === "prompt_master" || prompt.author === me.id);
  }

  function cancel(renderId) {
    live.send({ type: "render.cancel", render: renderId });
  }

  // --- People ---------------------------------------------------------------------------------

  function renderMembers() {
    const iAmMaster = state.me && state.me.role === "prompt_master";
    const iModerate = state.me && (state.me.role === "prompt_master" || state.me.role === "facilitator");
    el.members.replaceChildren(
      ...[...state.members.values()]
        .filter((member) => !member.removed)
        .map((member) => {
          const isMe = state.me && member.id === state.me.id;
          const moderated = iModerate && !isMe && member.role !== "prompt_master";
          return h(
            "li",
            { class: "member", dataset: { member: member.id } },
            h(
              "span",
              { class: "member-name" },
              member.name,
              isMe ? h("span", { class: "hint" }, " (you)") : null,
              member.muted ? h("span", { class: "badge muted" }, "muted") : null,
            ),
            iAmMaster && !isMe ? roleSelect(member) : h("span", { class: "role role-" + member.role }, PH.ROLE_TITLES[member.role] || member.role),
            moderated ? moderationButtons(member) : null,
          );
        }),
    );
  }

  /* A facilitator's (and the Prompt Master's) controls: the server refuses them to anyone else. */
  function moderationButtons(member) {
    const mute = h("button", { type: "button", class: "small" }, member.muted ? "Unmute" : "Mute");
    mute.addEventListener("click", () => live.send({ type: "member.mute", member: member.id, muted: !member.muted }));
    const remove = h("button", { type: "button", class: "small danger" }, "Remove");
    remove.addEventListener("click", () => {
      if (confirm(`Remove ${member.name} from the party?`)) live.send({ type: "member.remove", member: member.id });
    });
    return h("span", { class: "member-actions" }, mute, remove);
  }

  /* A muted member watches and votes; the composer and the association form say why they wait. */
  function renderMyLimits() {
    const muted = !!(state.me && state.me.muted);
    for (const form of [el.composer, el.associationForm]) {
      for (const control of form.querySelectorAll("button[type=submit], textarea, input[type=text], input:not([type])")) {
        control.disabled = muted;
      }
    }
    document.getElementById("muted-note").hidden = !muted;
  }

  function roleSelect(member) {
    const select = h(
      "select",
      { class: "role-select", "aria-label": "Role of " + member.name },
      Object.entries(PH.ROLE_TITLES).map(([role, title]) =>
        h("option", { value: role, selected: role === member.role }, role === "prompt_master" ? title + " (hand over)" : title),
      ),
    );
    select.addEventListener("change", () => {
      const role = select.value;
      select.value = member.role; // the role.changed event, not this select, is the truth
      if (role === "prompt_master" && !confirm(`Hand the Prompt Master role to ${member.name}?`)) return;
      live.send({ type: "role.set", member: member.id, role });
    });
    return select;
  }

  // --- Prompt tree ----------------------------------------------------------------------------

  /* The server draws the tree (partyhub/tree.py) so the room, the gallery and the export show
   * the same one; redrawn at most every half second while prompts and renders pour in. */
  let treeTimer = null;
  let treeFetching = false;

  function renderTree() {
    el.treeEmpty.hidden = state.prompts.size > 0;
    if (!state.prompts.size) return el.tree.replaceChildren();
    if (!treeTimer) treeTimer = setTimeout(fetchTree, 500);
  }

  async function fetchTree() {
    if (treeFetching) return (treeTimer = setTimeout(fetchTree, 500));
    treeTimer = null;
    treeFetching = true;
    try {
      // Drawn at the panel's width, so its text is not scaled down.
      const width = Math.max(200, Math.min(2000, Math.round(el.tree.clientWidth) || 360));
      const response = await fetch(`/api/parties/${room.dataset.code}/tree.svg?width=${width}`, { credentials: "same-origin" });
      if (response.ok) {
        // The server escapes every prompt; parsed as SVG, never as HTML.
        const svg = new DOMParser().parseFromString(await response.text(), "image/svg+xml").documentElement;
        svg.removeAttribute("width");
        svg.removeAttribute("height");
        svg.classList.add("pt-clickable");
        el.tree.replaceChildren(document.importNode(svg, true));
      }
    } finally {
      treeFetching = false;
    }
  }

  el.tree.addEventListener("click", (click) => {
    const node = click.target.closest("[data-prompt]");
    if (node) refine(Number(node.dataset.prompt));
  });

  // --- Proposals ------------------------------------------------------------------------------

  function renderProposals() {
    const waiting = [...state.prompts.values()].filter((p) => p.status === "proposed").sort((a, b) => a.id - b.id);
    const iAmMaster = !!state.me && state.me.role === "prompt_master";
    el.proposalsPanel.hidden = waiting.length === 0;
    el.proposals.replaceChildren(
      ...waiting.map((prompt) => {
        const parent = state.prompts.get(prompt.parent);
        return h(
          "li",
          { class: "proposal", dataset: { prompt: prompt.id } },
          h("p", { class: "proposal-text" }, prompt.text),
          h(
            "p",
            { class: "hint" },
            "by " + PH.memberName(state, prompt.author) + (parent ? " · refines “" + parent.text + "”" : ""),
          ),
          iAmMaster
            ? h(
                "div",
                { class: "proposal-actions" },
                h("button", { type: "button", class: "small primary", onclick: () => live.send({ type: "proposal.accept", prompt: prompt.id }) }, "Accept and render"),
                h("button", { type: "button", class: "small", onclick: () => live.send({ type: "proposal.set_aside", prompt: prompt.id }) }, "Set aside"),
              )
            : null,
        );
      }),
    );
  }

  // --- Associations ---------------------------------------------------------------------------

  /* One word per distinct text (without case); its count is how many people said it. */
  function renderAssociations() {
    const words = new Map();
    for (const association of state.associations.values()) {
      const key = association.text.toLowerCase();
      const word = words.get(key) || { text: association.text, authors: [] };
      word.authors.push(PH.memberName(state, association.author));
      words.set(key, word);
    }
    const ranked = [...words.values()].sort((a, b) => b.authors.length - a.authors.length || a.text.localeCompare(b.text));
    const most = ranked.length ? ranked[0].authors.length : 1;
    el.associations.replaceChildren(
      ...ranked.map((word) =>
        h(
          "button",
          {
            type: "button",
            class: "word",
            style: `font-size: ${(0.85 + (1.2 * (word.authors.length - 1)) / Math.max(most - 1, 1)).toFixed(2)}rem`,
            title: "Said by " + word.authors.join(", ") + " · click to add to your prompt",
            dataset: { count: word.authors.length },
            onclick: () => appendToPrompt(word.text),
          },
          word.text,
          h("span", { class: "word-count" }, String(word.authors.length)),
        ),
      ),
    );
  }

  // --- Palette --------------------------------------------------------------------------------

  function renderPalette() {
    const kinds = new Map();
    for (const entry of state.palette) {
      if (!kinds.has(entry.kind)) kinds.set(entry.kind, []);
      kinds.get(entry.kind).push(entry);
    }
    el.palette.replaceChildren(
      ...[...kinds].map(([kind, entries]) =>
        h(
          "div",
          { class: "palette-kind" },
          h("p", { class: "eyebrow" }, kind),
          h(
            "div",
            { class: "chips" },
            entries.map((entry) =>
              h("button", { type: "button", class: "chip" + (entry.builtin ? "" : " own"), title: "Add to your prompt", onclick: () => appendToPrompt(entry.text) }, entry.text),
            ),
          ),
        ),
      ),
    );
    el.paletteForm.hidden = !(state.me && state.me.role === "prompt_master");
  }

  el.paletteForm.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const form = el.paletteForm.elements;
    const text = form.text.value.trim();
    if (text && live.send({ type: "palette.add", kind: form.kind.value, text })) form.text.value = "";
  });

  function appendToPrompt(text) {
    const current = el.text.value.trim();
    el.text.value = current ? `${current}, ${text}` : text;
    el.text.focus();
    countTokensSoon(); // a click can take the prompt past the model's limit: say so at once
  }

  el.associationForm.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const input = el.associationForm.elements.text;
    const text = input.value.trim();
    if (text && live.send({ type: "association.add", text })) input.value = "";
  });

  // --- Composer -------------------------------------------------------------------------------

  function refine(promptId) {
    const prompt = state.prompts.get(promptId);
    if (!prompt) return;
    ui.parent = promptId;
    el.text.value = prompt.text;
    el.refiningText.textContent = prompt.text;
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
    el.submit.textContent = proposing() ? "Propose" : "Render";
  }

  el.steerToggle.addEventListener("change", () => {
    const wanted = el.steerToggle.checked;
    el.steerToggle.checked = state.steered; // the party.steered event, not this box, is the truth
    live.send({ type: "party.steer", steered: wanted });
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

  el.composer.addEventListener("submit", async (submit) => {
    submit.preventDefault();
    const text = el.text.value.trim();
    if (!text) return showToast({ code: "invalid_prompt", message: "Write a prompt first." });
    const params = collectParams();
    if (!params) return;
    try {
      Object.assign(params, await modeParams());
    } catch (error) {
      return showToast({ code: error.code, message: error.message });
    }
    const message = { type: proposing() ? "prompt.propose" : "prompt.submit", text };
    if (ui.parent !== null) message.parent = ui.parent;
    if (Object.keys(params).length) message.params = params;
    live.send(message);
  });

  // Ctrl/Cmd+Enter renders from the textarea, as in most chat-like tools.
  el.text.addEventListener("keydown", (key) => {
    if (key.key === "Enter" && (key.ctrlKey || key.metaKey)) el.composer.requestSubmit();
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
    if (name === "model") return state.defaults.model || room.dataset.defaultModel;
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
        showToast({ code: "invalid_param", message: `${name}: ${input.validationMessage}` });
        return null;
      }
      const raw = input.value.trim();
      if (raw === "") continue; // an empty field means "the default" (for seed: a random one)
      const value = name === "model" || name === "sampler" || name === "negative" ? raw : Number(raw);
      if (INT_FIELDS.has(name) && !Number.isInteger(value)) {
        showToast({ code: "invalid_param", message: `${name} must be a whole number.` });
        return null;
      }
      if (ui.touched.has(name) || String(value) !== String(defaultFor(name))) params[name] = value;
    }
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
    for (const name of ["sampler", "width", "height", "steps", "guidance", "count", "seed", "negative"]) {
      const limits = model.limits[name];
      if (limits) {
        field(name).min = limits[0];
        field(name).max = limits[1];
      }
      if (kept.has(name)) continue;
      const value = defaultFor(name);
      field(name).value = value === undefined || value === null ? "" : value;
    }
    ui.touched = new Set(field("model").value === defaultFor("model") ? kept : [...kept, "model"]);
    showModelNotice(model);
    countTokensSoon(); // another model, another limit
  }

  function showModelNotice(model) {
    el.modelNotice.hidden = !model.offline;
    if (!model.offline) return;
    el.modelNotice.replaceChildren(
      h("strong", {}, model.title + ". "),
      model.note + " The README explains how.",
    );
  }

  async function loadModels() {
    try {
      const presets = await api("GET", "/api/models");
      for (const preset of presets) if (preset.available) ui.models.set(preset.name, preset);
    } catch (error) {
      showToast({ code: error.code, message: "Could not load the models: " + error.message });
      return;
    }
    const select = field("model");
    select.replaceChildren(
      ...[...ui.models.values()].map((preset) => h("option", { value: preset.name }, preset.title || preset.name)),
    );
    // The snapshot may not have arrived yet; the party's default model falls back to the server's.
    const wanted = (state.defaults && state.defaults.model) || room.dataset.defaultModel;
    if (ui.models.has(wanted)) select.value = wanted;
    applyModel({ keepTouched: true });
  }

  field("model").addEventListener("change", () => applyModel());
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
  let tokenTimer = null;
  let tokenRound = 0; // answers to an older round of counting are dropped

  function countTokensSoon() {
    clearTimeout(tokenTimer);
    tokenTimer = setTimeout(countTokens, 250);
  }

  function countTokens() {
    const model = selectedModel();
    const limit = model ? model.token_limit : null;
    const round = ++tokenRound;
    for (const counter of TOKEN_FIELDS) {
      const text = counter.input.value.trim();
      const shown = `${model && model.name}\n${text}`;
      if (counter.shown === shown && !counter.output.hidden) continue; // counted already
      counter.shown = null;
      if (limit === null || limit === undefined || (!text && !counter.always)) {
        counter.output.hidden = true; // nothing to count against: the model reads it all
        continue;
      }
      if (!text) {
        showTokens(counter, shown, 0, limit, model);
        continue;
      }
      api("POST", `/api/models/${encodeURIComponent(model.name)}/tokens`, { text }).then(
        (answer) => round === tokenRound && showTokens(counter, shown, answer.tokens, answer.limit, model),
        () => {
          if (round === tokenRound) counter.output.hidden = true; // the server still checks on submit
        },
      );
    }
  }

  function showTokens(counter, shown, tokens, limit, model) {
    const over = tokens > limit;
    const output = counter.output;
    counter.shown = shown;
    output.hidden = false;
    output.dataset.over = String(over);
    output.style.color = over ? "var(--red)" : "";
    output.textContent =
      `${tokens} / ${limit} tokens` + (over ? ` · too long for ${model.title || model.name}: shorten it by ${tokens - limit}` : "");
  }

  for (const counter of TOKEN_FIELDS) counter.input.addEventListener("input", countTokensSoon);

  // --- Modes: a source image, a painted mask, a walk ------------------------------------------

  const SOURCE_MODES = new Set(["img2img", "inpaint", "variation"]);
  const MODE_NAMES = { img2img: "redrawn", inpaint: "repainted", variation: "varied", walk: "walk" };
  // The server's default strength per mode (generation/params.py), shown as the placeholder.
  const DEFAULT_STRENGTH = { img2img: 0.6, inpaint: 1.0, variation: 0.3 };

  for (const radio of el.composer.elements.mode) {
    radio.addEventListener("change", () => setMode(radio.value));
  }

  function setMode(mode) {
    ui.mode = mode;
    el.composer.elements.mode.value = mode;
    el.source.hidden = !SOURCE_MODES.has(mode);
    el.walk.hidden = mode !== "walk";
    // A variation varies an image of the party (it needs its seed); uploads have none.
    el.sourceUpload.hidden = mode === "variation";
    if (mode === "variation" && ui.source && ui.source.kind !== "image") setSource(null);
    field("strength").placeholder = DEFAULT_STRENGTH[mode] ?? "";
    field("strength").value = "";
    showSource();
  }

  function useImage(image, render) {
    setSource({ kind: "image", id: image.id, url: image.url, width: image.width, height: image.height });
    if (!SOURCE_MODES.has(ui.mode)) setMode("img2img");
    const prompt = state.prompts.get(render.prompt);
    if (prompt && !el.text.value.trim()) el.text.value = prompt.text;
    countTokensSoon();
    el.composer.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function setSource(source) {
    ui.source = source;
    showSource();
  }

  function showSource() {
    const source = ui.source;
    el.sourceEmpty.hidden = !!source;
    el.sourceFrame.hidden = !source;
    const painting = !!source && ui.mode === "inpaint";
    el.maskCanvas.hidden = !painting;
    el.maskClear.hidden = !painting;
    el.maskHint.hidden = !painting;
    if (!source) return;
    if (el.sourceImg.getAttribute("src") !== source.url) {
      el.sourceImg.src = source.url;
      // The mask is painted at the source's own size, whatever size it is shown at.
      el.maskCanvas.width = source.width;
      el.maskCanvas.height = source.height;
      clearMask();
    }
  }

  el.sourceFile.addEventListener("change", async () => {
    const file = el.sourceFile.files[0];
    if (!file) return;
    try {
      const upload = await uploadImage(file);
      setSource({ kind: "upload", id: upload.upload, url: upload.url, width: upload.width, height: upload.height });
    } catch (error) {
      showToast({ code: error.code, message: error.message });
    } finally {
      el.sourceFile.value = "";
    }
  });

  async function uploadImage(blob, name = "image.png") {
    const form = new FormData();
    form.append("image", blob, blob.name || name);
    const response = await fetch(`/api/parties/${room.dataset.code}/uploads`, {
      method: "POST",
      body: form,
      credentials: "same-origin",
      headers: { "X-CSRFToken": PH.cookie("csrftoken"), Accept: "application/json" },
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data && data.error) || { code: "http_" + response.status, message: response.statusText };
      throw Object.assign(new Error(error.message), { code: error.code });
    }
    return data;
  }

  // Painting: white strokes on a transparent canvas over the image; sent as white on black.
  function clearMask() {
    el.maskCanvas.getContext("2d").clearRect(0, 0, el.maskCanvas.width, el.maskCanvas.height);
    ui.maskPainted = false;
  }

  function paintAt(pointer) {
    const canvas = el.maskCanvas;
    const box = canvas.getBoundingClientRect();
    const x = ((pointer.clientX - box.left) / box.width) * canvas.width;
    const y = ((pointer.clientY - box.top) / box.height) * canvas.height;
    const context = canvas.getContext("2d");
    context.fillStyle = "rgba(255, 255, 255, 1)";
    context.beginPath();
    context.arc(x, y, Math.max(canvas.width, canvas.height) / 16, 0, 2 * Math.PI);
    context.fill();
    ui.maskPainted = true;
  }

  el.maskCanvas.addEventListener("pointerdown", (pointer) => {
    el.maskCanvas.setPointerCapture(pointer.pointerId);
    paintAt(pointer);
  });
  el.maskCanvas.addEventListener("pointermove", (pointer) => {
    if (pointer.buttons) paintAt(pointer);
  });
  el.maskClear.addEventListener("click", clearMask);

  function maskBlob() {
    const mask = document.createElement("canvas");
    mask.width = el.maskCanvas.width;
    mask.height = el.maskCanvas.height;
    const context = mask.getContext("2d");
    context.fillStyle = "#000";
    context.fillRect(0, 0, mask.width, mask.height);
    context.drawImage(el.maskCanvas, 0, 0);
    return new Promise((resolve) => mask.toBlob(resolve, "image/png"));
  }

  /* The params of the chosen mode; uploads the painted mask first for a repaint. */
  async function modeParams() {
    const mode = ui.mode;
    if (mode === "txt2img") return {};
    const refuse = (message) => Promise.reject(Object.assign(new Error(message), { code: "invalid_param" }));
    const params = { mode };
    if (mode === "walk") {
      const walkTo = field("walk_to").value.trim();
      const walkSeed = field("walk_seed").value.trim();
      if (walkTo) params.walk_to = walkTo;
      if (walkSeed) params.walk_seed = Number(walkSeed);
      params.frames = Number(field("frames").value);
      return params;
    }
    if (!ui.source) return refuse("Pick a source image first: “Use” on an image, or upload one.");
    params[ui.source.kind === "image" ? "init_image" : "init_upload"] = ui.source.id;
    const strength = field("strength").value.trim();
    if (strength) params.strength = Number(strength);
    if (mode === "inpaint") {
      if (!ui.maskPainted) return refuse("Paint over the part of the image to repaint.");
      params.mask = (await uploadImage(await maskBlob(), "mask.png")).upload;
    }
    // With a source the size follows it, unless someone set it on purpose.
    for (const name of ["width", "height"]) if (!ui.touched.has(name)) delete params[name];
    return params;
  }

  // --- Publishing -----------------------------------------------------------------------------

  /* The Prompt Master puts the read-only gallery /g/<code>/ up or takes it down; everyone sees
   * its link while it is up. The party.published event, not the button, is the truth. */
  function renderPublishing() {
    el.galleryLink.hidden = !state.published;
    el.publish.hidden = !(state.me && state.me.role === "prompt_master");
    el.publish.textContent = state.published ? "Unpublish" : "Publish";
    el.publish.setAttribute("aria-pressed", String(state.published));
  }

  el.publish.addEventListener("click", async () => {
    const published = !state.published;
    if (!published && !confirm("Take the public gallery down? Its link will stop working.")) return;
    el.publish.disabled = true;
    try {
      await api("POST", `/api/parties/${room.dataset.code}/publish`, { published });
    } catch (error) {
      showToast({ code: error.code, message: error.message });
    } finally {
      el.publish.disabled = false;
    }
  });

  // --- Toasts ---------------------------------------------------------------------------------

  function showToast(frame) {
    const toast = h(
      "div",
      { class: "toast", role: "alert" },
      h("span", {}, frame.message || frame.code),
      h("button", { type: "button", class: "link", "aria-label": "Dismiss", onclick: () => toast.remove() }, "✕"),
    );
    el.toasts.append(toast);
    setTimeout(() => toast.remove(), 15000);
  }

  loadModels();
})();
