/* The party room's render grid (after party-room.js): one card per render, newest first or by a
 * score, filtered to the shortlist or the picks; each card shows its progress or its images, and
 * the images their stars, shortlist, pick and pick note. Cards are keyed by render id. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const room = PH.room;
  if (!room) return; // the join form's page: party-room.js set no room up
  const { h } = PH;
  const { state, ui, el } = room;

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
          : h("button", { type: "button", class: "small", onclick: () => room.refine(render.prompt) }, "Refine"),
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
    if (p.mode && p.mode !== "txt2img") parts.push(room.MODE_NAMES[p.mode] || p.mode);
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
            onclick: () => room.live.send({ type: "vote", image: image.id, value: image.voted ? 0 : 1 }),
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
                onclick: () => room.live.send({ type: "shortlist", image: image.id, shortlisted: !image.shortlisted }),
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
                onclick: () => (image.picked ? room.live.send({ type: "pick", image: image.id, picked: false }) : startNote(image)),
              },
              image.picked ? "Unpick" : "Pick…",
            )
          : null,
        curator && image.picked
          ? h("button", { type: "button", class: "small", onclick: () => startNote(image) }, "Edit note")
          : null,
        h("button", { type: "button", class: "small", onclick: () => room.refine(render.prompt) }, "Refine"),
        h(
          "button",
          { type: "button", class: "small", title: "Use this image as the source of a redraw, repaint or variation", onclick: () => room.useImage(image, render) },
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
          if (room.live.send({ type: "pick", image: image.id, picked: true, note: input.value.trim() })) done();
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
    room.live.send({ type: "render.cancel", render: renderId });
  }

  Object.assign(room, { renderCards, updateCard });
})();
