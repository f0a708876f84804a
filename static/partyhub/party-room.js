/* The party room, first of its scripts: the join form, or else the room's shared parts (its state,
 * UI state and elements) in one namespace, PartyHub.room, plus the top bar's Publish button and
 * the toasts. The room is the party-*.js scripts, loaded in this order after live.js,
 * outbox.js (what waits to be sent while the socket is not open) and sweeps.js (a sweep's grid,
 * shared with the stage):
 *   party-room.js      this file: PartyHub.room, joining, publishing, toasts, and the small
 *                      helpers the others share (clamped text, scores in words, client ids)
 *   party-cards.js     the render grid: cards, their images, votes, picks and notes
 *   party-panels.js    people (and who is online), the prompt tree, proposals, associations
 *                      and the palette
 *   party-composer.js  the composer, its parameters and its character and token counters
 *   party-modes.js     the composer's modes: a source image, a painted mask, a walk
 *   party-sweeps.js    the composer's Sweep (a prompt across palette entries or settings), and
 *                      each sweep's one grid card among the renders, its cells drawn as images
 *   party-lightbox.js  an image at full size with its prompt, parameters and actions
 *   party-chat.js      the chat (its lines, folding, unread count, paging back, writing,
 *                      mentions), the pinned question, hiding messages; the talk's limits and
 *                      the message lines and unsent ones that the threads share
 *   party-threads.js   reactions and comments on images and prompts: the grid's reactions and
 *                      counts, the threads in the lightbox and the prompt dialog, the tree's badges
 *   party-live.js      last: which event redraws what; starts following the party
 * Each script is a closure that puts what the others call on PartyHub.room (room.updateCard(...)),
 * called at run time, so no script needs the ones after it while it loads. State lives in one
 * object (see live.js); the DOM is redrawn from it per section, and render cards are keyed by
 * render id (a sweep's one card by sweep id) so replays and reconnects never duplicate one. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const { h, api } = PH;

  const joinForm = document.getElementById("join-form");
  if (joinForm) return setUpJoinForm(joinForm);

  const roomElement = document.getElementById("room");
  if (!roomElement) return; // a removed session's page: it says so, and nothing more
  const state = PH.createState(roomElement.dataset.code);
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
    lightbox: null, // the id of the image the lightbox shows, or null while it is closed
    waiting: false, // a prompt waits in the outbox for the socket to open
  };
  const el = {
    room: roomElement,
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
    people: document.getElementById("people"),
    peopleSummary: document.getElementById("people-summary"),
    peopleToggle: document.getElementById("people-toggle"),
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
    onlineCount: document.getElementById("online-count"),
    mutedNote: document.getElementById("muted-note"),
    lightbox: document.getElementById("lightbox"),
  };
  // live: set by party-live.js, the last script, when it starts following the party.
  const room = (PH.room = { state, ui, el, live: null });

  // --- Joining --------------------------------------------------------------------------------

  function setUpJoinForm(form) {
    form.addEventListener("submit", async (submit) => {
      submit.preventDefault();
      delete form.dataset.early;
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
    // Join was pressed while this script loaded (the page's inline handler held it): send it now.
    if (form.dataset.early) form.requestSubmit();
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
      await api("POST", `/api/parties/${state.code}/publish`, { published });
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

  // --- Shared helpers -------------------------------------------------------------------------

  /* Text that may be long (a prompt, a proposal): clamped to a few lines; fitClamps() adds a
   * "more" toggle after those that overflow once they are on the page. */
  function clamped(tag, className, text, lines = 3) {
    return h(tag, { class: className + " clamp", style: `--lines: ${lines}` }, text);
  }

  function fitClamps(root) {
    for (const node of root.querySelectorAll(".clamp")) {
      const toggle = node.nextElementSibling && node.nextElementSibling.classList.contains("more-toggle") ? node.nextElementSibling : null;
      const open = node.classList.contains("open");
      // Measured clamped: an open one has no overflow to measure.
      node.classList.remove("open");
      const overflows = node.scrollHeight > node.clientHeight + 1;
      node.classList.toggle("open", open && overflows);
      if (!overflows) {
        if (toggle) toggle.remove();
        continue;
      }
      if (toggle) continue;
      const button = h("button", { type: "button", class: "link more-toggle", "aria-expanded": "false" }, "more");
      button.addEventListener("click", (click) => {
        click.stopPropagation();
        const opened = node.classList.toggle("open");
        button.textContent = opened ? "less" : "more";
        button.setAttribute("aria-expanded", String(opened));
      });
      node.after(button);
    }
  }

  let clampTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(clampTimer);
    clampTimer = setTimeout(() => fitClamps(roomElement), 150);
  });

  /* A CLIP score as a word, with the server's cut-offs for its CLIP model
   * (partyhub/score_words.py says where they come from); null without a score. */
  const SCORE_LEVELS = JSON.parse(document.getElementById("score-levels").textContent);

  function scoreWord(score, kind) {
    if (typeof score !== "number" || !SCORE_LEVELS) return null;
    const [medium, high] = SCORE_LEVELS[kind];
    return score >= high ? "high" : score >= medium ? "medium" : "low";
  }

  /* "matches its prompt: high · fits the topic: medium", or "" when the image has no scores. */
  function scoreWords(image) {
    const prompt = scoreWord(image.score, "prompt");
    const topic = scoreWord(image.topic_score, "topic");
    return [prompt && `matches its prompt: ${prompt}`, topic && `fits the topic: ${topic}`].filter(Boolean).join(" · ");
  }

  /* What a model is called for people ("Offline shapes (bundled)"), from /api/models. */
  function modelTitle(name) {
    const preset = ui.models.get(name);
    return (preset && preset.title) || name;
  }

  /* Whether I may still act in the room: a removed member only watches what was there. */
  function mayAct() {
    return !!state.me && !state.me.removed;
  }

  /* The id a client gives what it makes once (a prompt, a chat line, a comment), so that sending
   * it again after a reconnect makes nothing twice. crypto.randomUUID needs a secure context;
   * phones reach the room over plain http. */
  function newClientId() {
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /* A device with a pointer that hovers (a laptop): focusing a field there opens no keyboard
   * over half the screen, as it does on a phone. */
  function hasHover() {
    return window.matchMedia("(hover: hover)").matches;
  }

  Object.assign(room, { renderPublishing, showToast, clamped, fitClamps, scoreWord, scoreWords, modelTitle, mayAct, newClientId, hasHover });
})();
