/* The party room's render grid (after party-room.js): one card per render, newest first or by a
 * score, filtered to the shortlist or the picks. A card shows its picture forming, then its
 * images large, each with a compact bar of actions (stars, shortlist, pick, refine, use, mention)
 * over its foot on hover, a click that opens the lightbox (party-lightbox.js), and under it its
 * reactions and comment count (party-threads.js); under the images, the prompt (clamped) and who
 * wrote it. Cards are keyed by render id. */
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
    if (room.renderLightbox) room.renderLightbox();
  }

  /* Create or redraw the card of one render, in its place in the grid's order. A redrawn card
   * is placed again: render.done brings the scores a score order ranks it by. */
  function updateCard(id) {
    const render = state.renders.get(id);
    if (!render) return;
    if (room.updateSweepCell(render)) return; // a sweep's cell: its cell of the sweep's one card
    const old = ui.cards.get(id);
    const writing = !!old && old.contains(document.activeElement) && document.activeElement.name === "note";
    if (old) old.remove();
    ui.cards.delete(id);
    if (shownImages(render).length || (ui.filter === "all" && !render.images.length)) {
      const card = buildCard(render);
      el.renders.insertBefore(card, firstCardAfter(id));
      ui.cards.set(id, card);
      room.fitClamps(card);
    }
    el.rendersEmpty.hidden = state.renders.size > 0;
    el.rendersFiltered.hidden = !(state.renders.size > 0 && !el.renders.children.length); // sweeps' cards too
    if (writing) focusNote();
    if (room.renderLightbox && ui.lightbox !== null) {
      const shown = state.images.get(ui.lightbox);
      if (shown && shown.render === id) room.renderLightbox();
    }
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

  /* A render's score is its best image's (a sweep's cell's, its best cell's: party-sweeps.js);
   * null when none of its images has one. */
  function bestScore(renderId, field) {
    const render = state.renders.get(renderId);
    let best = null;
    for (const imageId of render ? room.cardImageIds(render) : []) {
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

  /* The picture first, as large as the grid allows: a render of several images spans more of
   * the grid (see .card.count-* in app.css) rather than shrinking each of them. */
  function buildCard(render) {
    const prompt = state.prompts.get(render.prompt) || { text: "", author: null, parent: null };
    const active = render.status === "queued" || render.status === "running";
    const shown = shownImages(render);
    const count = render.animation ? shown.length + 1 : shown.length;
    return h(
      "article",
      { class: "card count-" + Math.min(count, 5), dataset: { render: render.id, status: render.status } },
      active ? pendingPicture(render) : null,
      shown.length
        ? h(
            "div",
            { class: "card-images" },
            render.animation
              ? h(
                  "div",
                  { class: "walk-animation" },
                  h("img", { class: "animation", src: render.animation, alt: "the walk, animated", loading: "lazy" }),
                  h("span", { class: "tile-label" }, "the walk, animated"),
                )
              : null,
            shown.map(imageFigure),
          )
        : null,
      h(
        "div",
        { class: "card-body" },
        h(
          "header",
          { class: "card-head" },
          room.clamped("p", "card-prompt", prompt.text),
          render.status === "done" ? null : h("span", { class: "badge status-" + render.status }, statusLabel(render)),
        ),
        h("p", { class: "card-meta" }, cardMeta(render, prompt)),
        render.status === "failed" && render.error
          ? h("p", { class: "card-error" }, render.error.message || render.error.code)
          : null,
        cardActions(render, prompt, active),
        setAsidePanel(render),
      ),
    );
  }

  function cardActions(render, prompt, active) {
    // Each image has its own Refine; a render without images needs one of its own.
    const refine = !render.images.length && room.mayAct();
    const cancel = active && mayCancel(prompt);
    const aside = setAsideButton(render);
    if (!refine && !cancel && !aside) return null;
    return h(
      "footer",
      { class: "card-actions" },
      aside,
      refine ? h("button", { type: "button", class: "small", onclick: () => room.refine(render.prompt) }, "Refine") : null,
      cancel ? h("button", { type: "button", class: "small danger", onclick: () => cancel_(render.id) }, "Cancel") : null,
    );
  }

  // --- A best-of render's candidates set aside -------------------------------------------------

  // render id -> its candidates (GET .../renders/<id>/candidates) while shown; null while loading
  const setAsideShown = new Map();

  /* A best-of render kept the `count` of its `best_of` candidates CLIP scored best; the others
   * are stored but not among the party's images, and shown here only when asked for. */
  function setAsideButton(render) {
    const p = render.params || {};
    if (render.status !== "done" || !p.best_of) return null;
    const open = setAsideShown.has(render.id);
    return h(
      "button",
      {
        type: "button",
        class: "small secondary",
        "aria-expanded": String(open),
        title: `Rendered ${p.best_of} candidates and kept the ${p.count} CLIP scored best against the prompt`,
        onclick: () => toggleSetAside(render.id),
      },
      open ? "Hide the set aside" : `Show the ${p.best_of - p.count} set aside`,
    );
  }

  async function toggleSetAside(id) {
    if (setAsideShown.has(id)) {
      setAsideShown.delete(id);
      return updateCard(id);
    }
    setAsideShown.set(id, null);
    updateCard(id);
    try {
      const answer = await PH.api("GET", `/api/parties/${encodeURIComponent(state.code)}/renders/${id}/candidates`);
      if (setAsideShown.has(id)) setAsideShown.set(id, answer.candidates);
    } catch (error) {
      setAsideShown.delete(id);
      room.showToast({ code: error.code, message: "Could not load the candidates: " + error.message });
    }
    updateCard(id);
  }

  function setAsidePanel(render) {
    if (!setAsideShown.has(render.id)) return null;
    const candidates = setAsideShown.get(render.id);
    if (!candidates) return h("p", { class: "hint" }, "Loading the candidates…");
    const aside = candidates.filter((candidate) => !candidate.kept);
    if (!aside.length) return h("p", { class: "hint" }, "No candidate was set aside.");
    return h(
      "div",
      { class: "set-aside", title: "Their rank among the candidates, their prompt match (CLIP) and seed" },
      aside.map((candidate) =>
        h(
          "figure",
          null,
          h(
            "a",
            { href: candidate.url, target: "_blank", rel: "noopener" },
            h("img", { src: candidate.url, width: String(candidate.width), height: String(candidate.height), alt: `candidate ${candidate.rank}`, loading: "lazy" }),
          ),
          h(
            "figcaption",
            null,
            `#${candidate.rank} · ${candidate.score === null ? "–" : candidate.score.toFixed(2)} · seed ${candidate.seed}`,
          ),
        ),
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
    if (render.status === "queued") return "waiting";
    return render.status;
  }

  /* Who, how (a mode, another model than the party's), and what it refines or walks to. The
   * numbers (size, steps, seed) are in the lightbox's parameters. */
  function cardMeta(render, prompt) {
    const p = render.params || {};
    const parts = ["by " + PH.memberName(state, prompt.author)];
    if (p.mode && p.mode !== "txt2img") parts.push(room.MODE_NAMES[p.mode] || p.mode);
    if (p.mode === "walk") parts.push("to “" + (p.walk_to || prompt.text) + "”");
    if (p.model && p.model !== (state.defaults.model || el.room.dataset.defaultModel)) parts.push(room.modelTitle(p.model));
    const count = render.images.length;
    if (count > 1) parts.push(`${count} ${p.mode === "walk" ? "frames" : "images"}`);
    const parent = state.prompts.get(prompt.parent);
    if (parent) parts.push("refines “" + parent.text + "”");
    return parts.join(" · ");
  }

  /* Where the picture will be: a box of its shape with the progress, and the picture forming
   * (a small WebP the worker decodes every few steps) once there is one. */
  function pendingPicture(render) {
    const p = render.params || {};
    const progress = state.progress.get(render.id);
    const fraction = progress && progress.steps ? progress.step / progress.steps : 0;
    const ahead = render.status === "queued" && render.position ? ` (${render.position} ahead)` : "";
    return h(
      "div",
      { class: "pending", style: `aspect-ratio: ${p.width || 1} / ${p.height || 1}` },
      progress && progress.preview
        ? h("img", { class: "preview", src: progress.preview, alt: "preview of the image forming" })
        : null,
      h("span", { class: "pending-label" }, render.status === "queued" ? "waiting in line" + ahead : runningLabel(render)),
      h(
        "div",
        { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(fraction * 100)) },
        h("div", { class: "progress-bar" + (render.status === "queued" ? " waiting" : ""), style: `width: ${fraction * 100}%` }),
      ),
    );
  }

  function imageFigure(imageId) {
    const image = state.images.get(imageId);
    const render = state.renders.get(image.render);
    const prompt = state.prompts.get(render.prompt);
    const classes = ["shot", image.picked && "picked", image.shortlisted && "shortlisted"].filter(Boolean);
    const words = room.scoreWords(image);
    return h(
      "figure",
      { class: classes.join(" "), dataset: { image: image.id } },
      h(
        "div",
        { class: "shot-frame" },
        shotLink(image, prompt),
        image.picked ? h("span", { class: "ribbon" }, "Pick") : image.shortlisted ? h("span", { class: "ribbon short" }, "Shortlist") : null,
        h("div", { class: "shot-actions shot-bar" }, imageActions(image, render)),
      ),
      room.imageTalkBar(image),
      image.picked && image.note ? room.clamped("p", "pick-note", "“" + image.note + "” — " + PH.memberName(state, image.picked_by), 2) : null,
      words ? h("p", { class: "shot-scores", title: "How well the image matches its prompt and fits the topic, as CLIP sees it" }, words) : null,
      ui.noting && ui.noting.image === image.id && ui.lightbox !== image.id ? noteForm(image) : null,
    );
  }

  /* The picture, a link to its file: a plain click opens the lightbox instead, a middle or
   * modified click the file in a new tab, as links do. */
  function shotLink(image, prompt) {
    const open = (click) => {
      if (click.button !== 0 || click.ctrlKey || click.metaKey || click.shiftKey || click.altKey) return;
      click.preventDefault();
      room.openLightbox(image.id);
    };
    return h(
      "a",
      { class: "shot-open", href: image.url, target: "_blank", rel: "noopener", title: "Open large: prompt, parameters, stars", onclick: open },
      h("img", { src: image.url, width: String(image.width), height: String(image.height), alt: prompt ? prompt.text : "", loading: "lazy" }),
    );
  }

  /* An image's actions, in the grid's bar and in the lightbox. `after` runs before Refine and
   * Use act (the lightbox closes first). */
  function imageActions(image, render, after = () => {}) {
    const curator = PH.mayPick(state.me);
    const acting = room.mayAct();
    return [
      h(
        "button",
        {
          type: "button",
          class: "small vote" + (image.voted ? " on" : ""),
          "aria-pressed": String(!!image.voted),
          "aria-label": `Star (${image.votes} so far)`,
          title: image.voted ? "Take your star back" : "Star this image",
          disabled: !acting,
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
      curator && image.picked ? h("button", { type: "button", class: "small", onclick: () => startNote(image) }, "Edit note") : null,
      acting
        ? h(
            "button",
            { type: "button", class: "small secondary", title: "Write a new prompt from this one", onclick: () => (after(), room.refine(render.prompt)) },
            "Refine",
          )
        : null,
      acting
        ? h(
            "button",
            { type: "button", class: "small secondary", title: "Use this image as the source of a redraw, repaint or variation, or as the start of a walk", onclick: () => (after(), room.useImage(image, render)) },
            "Use",
          )
        : null,
      room.mayWrite()
        ? h(
            "button",
            { type: "button", class: "small secondary mention", "aria-label": "Mention in chat", title: "Mention this image in the chat", onclick: () => (after(), room.mention({ image: image.id })) },
            "Mention",
          )
        : null,
    ];
  }

  /* The Art Expert says in one line why an image is a pick; the pick is sent with it. */
  function startNote(image) {
    ui.noting = { image: image.id, text: image.note || "" };
    updateCard(image.render);
    focusNote();
  }

  function focusNote() {
    const input = ui.noting && document.querySelector(`.note-form[data-image="${ui.noting.image}"] input`);
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
      "data-max-chars": "200",
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
        dataset: { image: image.id },
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

  function mayCancel(prompt) {
    const me = state.me;
    return room.mayAct() && (me.role === "prompt_master" || prompt.author === me.id);
  }

  function cancel_(renderId) {
    room.live.send({ type: "render.cancel", render: renderId });
  }

  /* The images in the order the grid shows them (its sort and filter): the lightbox's arrows. */
  function shownImageOrder() {
    // A sweep's cells that the filter leaves out stay in its grid, dimmed (party-sweeps.js).
    return [...el.renders.querySelectorAll("figure.shot[data-image]:not(.filtered-out)")].map((figure) => Number(figure.dataset.image));
  }

  // imageFigure, pendingPicture, firstCardAfter and mayCancel: a sweep's grid card draws its
  // cells with them (party-sweeps.js).
  Object.assign(room, {
    renderCards,
    updateCard,
    imageActions,
    noteForm,
    focusNote,
    shownImageOrder,
    imageFigure,
    pendingPicture,
    firstCardAfter,
    mayCancel,
  });
})();
