/* The party room's lightbox (after party-cards.js): one image at full size with its prompt, who
 * wrote it, its scores in words, its stars and actions, its reactions and comments
 * (party-threads.js draws them, the Art Expert's pick first), and its parameters in
 * AUTOMATIC1111's text (the server's, from the PNG's own `parameters`), to copy. ← and → go
 * through the images in the grid's order (its sort and filter), Escape closes; on a phone, a
 * swipe. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const room = PH.room;
  if (!room) return; // the join form's page: party-room.js set no room up
  const { h } = PH;
  const { state, ui, el } = room;

  const dialog = el.lightbox;
  const img = document.getElementById("lightbox-img");
  // Redrawn on every change to the image; its thread (#lightbox-talk, between the two) is not,
  // so a comment being written keeps its focus.
  const details = document.getElementById("lightbox-details");
  const more = document.getElementById("lightbox-more");
  const prev = document.getElementById("lightbox-prev");
  const next = document.getElementById("lightbox-next");

  function openLightbox(imageId) {
    ui.lightbox = imageId;
    renderLightbox();
    if (!dialog.open) dialog.showModal();
    // Focus the dialog itself, not its first button: arrows then navigate at once.
    dialog.focus();
  }

  function closeLightbox() {
    if (dialog.open) dialog.close();
  }

  dialog.addEventListener("close", () => {
    const was = ui.lightbox;
    ui.lightbox = null;
    // A note begun in the lightbox goes on in its card.
    if (ui.noting && ui.noting.image === was) {
      const image = state.images.get(was);
      if (image) room.updateCard(image.render);
      room.focusNote();
    }
  });

  /* Redraw what the lightbox shows (a vote or a pick changed it, or it moved to another image). */
  function renderLightbox() {
    if (ui.lightbox === null) return;
    const image = state.images.get(ui.lightbox);
    if (!image) return closeLightbox();
    const render = state.renders.get(image.render) || { params: {} };
    const prompt = state.prompts.get(render.prompt) || { text: "", author: null, parent: null };
    const order = room.shownImageOrder();
    const place = order.indexOf(image.id);

    if (img.getAttribute("src") !== image.url) img.src = image.url;
    img.alt = prompt.text;
    img.width = image.width;
    img.height = image.height;
    dialog.classList.toggle("picked", !!image.picked);
    dialog.setAttribute("aria-label", "Image: " + prompt.text);
    prev.disabled = order.length < 2;
    next.disabled = order.length < 2;

    const parent = state.prompts.get(prompt.parent);
    const p = render.params || {};
    const words = room.scoreWords(image);
    const focused = details.contains(document.activeElement);
    const writing = focused && document.activeElement.name === "note";
    const parts = [
      h("p", { class: "lightbox-count hint" }, place >= 0 ? `${place + 1} of ${order.length}` : ""),
      h("p", { class: "lightbox-prompt" }, prompt.text),
      h(
        "p",
        { class: "hint" },
        ["by " + PH.memberName(state, prompt.author)]
          .concat(p.mode && p.mode !== "txt2img" ? [room.MODE_NAMES[p.mode] || p.mode] : [])
          .concat(p.mode === "walk" ? ["to “" + (p.walk_to || prompt.text) + "”", `frame ${(render.images || []).indexOf(image.id) + 1} of ${(render.images || []).length}`] : [])
          .concat(parent ? ["refines “" + parent.text + "”"] : [])
          .join(" · "),
      ),
      // A pick (and its note) heads the thread below.
      image.shortlisted && !image.picked ? h("p", { class: "hint" }, "On the shortlist") : null,
      words ? h("p", { class: "lightbox-scores", title: "CLIP similarity, in words" }, words) : null,
      h("div", { class: "lightbox-actions" }, room.imageActions(image, render, closeLightbox)),
      ui.noting && ui.noting.image === image.id ? room.noteForm(image) : null,
    ];
    details.replaceChildren(...parts.filter(Boolean)); // replaceChildren would write a null as "null"
    room.showImageThread(image.id);
    more.replaceChildren(
      parametersBlock(image, render),
      h(
        "p",
        { class: "hint" },
        h("a", { href: image.url, target: "_blank", rel: "noopener", download: "" }, `Download the PNG (${image.width} × ${image.height})`),
        " · it carries these parameters",
      ),
    );
    if (writing) room.focusNote();
    // The button that had the focus (a star) was redrawn: keep it in the dialog, for the arrows.
    else if (focused && dialog.open) dialog.focus();
  }

  /* The parameters as AUTOMATIC1111 writes them (and its readers and image sites parse them). */
  function parametersBlock(image, render) {
    const text = image.parameters;
    if (!text) {
      // An event archived before the server sent the text: the numbers we have.
      const p = render.params || {};
      return h("p", { class: "hint" }, `seed ${image.seed} · ${image.width}×${image.height} · ${p.steps || "?"} steps · ${room.modelTitle(p.model || "")}`);
    }
    const copy = h("button", { type: "button", class: "small", id: "lightbox-copy" }, "Copy");
    const pre = h("pre", { class: "parameters", id: "lightbox-params", tabindex: "0" }, text);
    copy.addEventListener("click", async () => {
      copy.textContent = (await copyText(text, pre)) ? "Copied ✓" : "Select and copy";
      setTimeout(() => (copy.textContent = "Copy"), 2000);
    });
    return h(
      "section",
      { class: "lightbox-parameters" },
      h("div", { class: "lightbox-parameters-head" }, h("span", { class: "eyebrow" }, "Parameters"), copy),
      pre,
    );
  }

  /* The clipboard API needs a secure context (https or localhost); a phone on the host's LAN
   * address has none, so the text is selected and copied the old way. */
  async function copyText(text, node) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (_) {
        // refused (no permission): fall through
      }
    }
    const range = document.createRange();
    range.selectNodeContents(node);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try {
      return document.execCommand("copy");
    } catch (_) {
      return false; // left selected: the person copies it themselves
    }
  }

  function step(delta) {
    const order = room.shownImageOrder();
    if (!order.length) return;
    const place = order.indexOf(ui.lightbox);
    // An image the filter has just hidden: the arrows go on from the start or the end.
    const target = place < 0 ? (delta > 0 ? 0 : order.length - 1) : (place + delta + order.length) % order.length;
    ui.lightbox = order[target];
    renderLightbox();
  }

  prev.addEventListener("click", () => step(-1));
  next.addEventListener("click", () => step(1));
  document.getElementById("lightbox-close").addEventListener("click", closeLightbox);

  // On the document, not the dialog: the keys work wherever the focus is while it is open.
  document.addEventListener("keydown", (key) => {
    if (!dialog.open) return;
    const typing = key.target.closest && key.target.closest("input, textarea, select");
    if (typing || key.altKey || key.ctrlKey || key.metaKey) return;
    if (key.key === "ArrowLeft") step(-1);
    else if (key.key === "ArrowRight") step(1);
    else return;
    key.preventDefault();
  });

  // A click on the backdrop (the dialog's own box, outside its content) closes it.
  dialog.addEventListener("click", (click) => {
    if (click.target === dialog) closeLightbox();
  });

  // A swipe on a phone: left for the next image, right for the previous one.
  let touchStart = null;
  dialog.querySelector(".lightbox-stage").addEventListener("touchstart", (touch) => {
    touchStart = touch.touches.length === 1 ? { x: touch.touches[0].clientX, y: touch.touches[0].clientY } : null;
  }, { passive: true });
  dialog.querySelector(".lightbox-stage").addEventListener("touchend", (touch) => {
    if (!touchStart) return;
    const dx = touch.changedTouches[0].clientX - touchStart.x;
    const dy = touch.changedTouches[0].clientY - touchStart.y;
    touchStart = null;
    if (Math.abs(dx) > 50 && Math.abs(dx) > 2 * Math.abs(dy)) step(dx < 0 ? 1 : -1);
  });

  Object.assign(room, { openLightbox, closeLightbox, renderLightbox });
})();
