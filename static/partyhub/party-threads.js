/* The party room's threads (after party-chat.js, before party-live.js): on every image and prompt
 * the reactions (which the page carries from partyhub/models/talk.py, through party-chat.js's
 * room.talkRules) and a thread of comments: under each image in the grid its reactions and
 * comment count; an image's thread in the lightbox, a prompt's in a small dialog opened from the
 * prompt tree's 💬, a badge on each node's corner that counts its comments and reactions. The
 * Art Expert's pick heads its image's thread.
 *
 * A thread's comments are drawn as party-chat.js draws chat lines (room.messageEntry,
 * room.pendingItems, room.reconcile), and its composer counts and sends as the chat's does: a
 * comment shows at once as "sending…" and stays in view, "not sent", if it is refused. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const room = PH.room;
  if (!room) return; // the join form's page: party-room.js set no room up
  const { h } = PH;
  const { state, ui, el } = room;

  // The reactions, in the order the room shows them: [name (what the protocol says), emoji].
  const REACTIONS = room.talkRules.reactions;

  Object.assign(ui, {
    promptThread: null, // the prompt whose thread the dialog shows, or null
  });

  const promptDialog = {
    dialog: document.getElementById("prompt-thread"),
    text: document.getElementById("prompt-thread-text"),
    meta: document.getElementById("prompt-thread-meta"),
    actions: document.getElementById("prompt-thread-actions"),
  };

  // --- Reactions and comment counts --------------------------------------------------------------

  function targetOf(kind, id) {
    return kind === "image" ? state.images.get(id) : state.prompts.get(id);
  }

  /* The reactions on an image or a prompt: toggles with their counts, pressed where mine, each
   * called by its name ("Love"). The reaction.changed event, not the click, is the truth. */
  function reactionButtons(kind, id) {
    const target = targetOf(kind, id);
    if (!target) return [];
    const mine = new Set(target.reacted || []);
    return REACTIONS.map(([name, emoji]) => {
      const label = name.charAt(0).toUpperCase() + name.slice(1);
      const count = (target.reactions || {})[name] || 0;
      const on = mine.has(name);
      return h(
        "button",
        {
          type: "button",
          class: "reaction" + (on ? " on" : "") + (count ? "" : " none"),
          dataset: { reaction: name },
          "aria-pressed": String(on),
          "aria-label": `${label} (${count})`,
          title: on ? `${label}: take yours back` : label,
          disabled: !room.mayAct(),
          onclick: () => room.live.send({ type: "reaction.set", [kind]: id, reaction: name, on: !on }),
        },
        h("span", { class: "reaction-emoji", "aria-hidden": "true" }, emoji),
        count ? h("span", { class: "reaction-count", "aria-hidden": "true" }, String(count)) : null,
      );
    });
  }

  function commentsOn(kind, id) {
    return [...state.messages.values()].filter((message) => message.kind === "comment" && message[kind] === id).sort((a, b) => a.id - b.id);
  }

  function commentCount(kind, id) {
    return commentsOn(kind, id).filter((message) => !message.hidden).length;
  }

  /* Under an image in the grid: its reactions, and its comment count, which opens its thread. */
  function imageTalkBar(image) {
    const count = commentCount("image", image.id);
    return h(
      "div",
      { class: "talk-bar" },
      h("div", { class: "reactions", role: "group", "aria-label": "Reactions" }, reactionButtons("image", image.id)),
      h(
        "button",
        {
          type: "button",
          class: "link comment-count",
          "aria-label": `Comments (${count})`,
          title: count ? "Read and write comments" : "Write a comment",
          onclick: () => openImageThread(image.id),
        },
        h("span", { "aria-hidden": "true" }, "💬"),
        count ? " " + count : null,
      ),
    );
  }

  function openImageThread(id) {
    room.openLightbox(id);
    lightboxThread.section.scrollIntoView({ block: "start" });
    if (room.hasHover() && !commentCount("image", id)) lightboxThread.focus();
  }

  // --- Threads (an image's in the lightbox, a prompt's in its dialog) ---------------------------

  /* A comment composer per image or prompt, made when first shown and kept: a comment being
   * written survives every redraw and a look at another image. */
  const commentForms = new Map(); // "image:7" -> form

  function commentForm(kind, id) {
    const key = `${kind}:${id}`;
    if (commentForms.has(key)) return commentForms.get(key);
    const text = h("textarea", { name: "text", rows: "2", placeholder: "Add a comment…", "aria-label": "Comment", enterkeyhint: "send" });
    const chars = h("span", { class: "hint chars", role: "status", hidden: true });
    const button = h("button", { type: "submit", class: "small primary" }, "Comment");
    const note = h("p", { class: "hint talk-note", hidden: true });
    const form = h("form", { class: "talk-form comment-form", autocomplete: "off", novalidate: true, dataset: { target: key } }, text, h("div", { class: "talk-form-foot" }, chars, button), note);
    const send = () => {
      const value = text.value.trim();
      if (!room.mayWrite() || !value || !room.countText(text, chars, button)) return;
      if (!room.sendTalk({ type: "comment.add", text: value, [kind]: id, client_id: room.newClientId() })) return;
      text.value = "";
      room.countText(text, chars, button);
      refreshThreads();
    };
    form.addEventListener("submit", (submit) => {
      submit.preventDefault();
      send();
    });
    text.addEventListener("keydown", (key) => room.sendOnEnter(key, send));
    text.addEventListener("input", () => room.countText(text, chars, button));
    commentForms.set(key, form);
    limitForm(form);
    return form;
  }

  /* A muted member reads the comments and writes none; a removed one gets no composer. */
  function limitForm(form) {
    const removed = !room.mayAct();
    const muted = !removed && !!state.me.muted;
    const text = form.elements.text;
    form.classList.toggle("removed", removed);
    text.disabled = muted;
    text.hidden = removed;
    form.querySelector(".talk-form-foot").hidden = removed;
    room.countText(text, form.querySelector(".chars"), form.querySelector("button[type=submit]"));
    const note = form.querySelector(".talk-note");
    note.hidden = !(muted || removed);
    note.textContent = removed ? "You were removed from this party: you can read, not comment." : "A facilitator muted you: you can read and react, not comment.";
  }

  function createThread(section) {
    const bar = h("div", { class: "reactions", role: "group", "aria-label": "Reactions" });
    const list = h("ol", { class: "thread talk-lines", "aria-live": "polite", "aria-label": "Comments" });
    const empty = h("p", { class: "empty" }, "No comments yet.");
    const slot = h("div", { class: "thread-composer" });
    section.replaceChildren(bar, h("h3", { class: "eyebrow talk-heading" }, "Comments"), list, empty, slot);
    const thread = { section, kind: null, id: null };

    thread.show = (kind, id) => {
      if (thread.kind !== kind || thread.id !== id) {
        Object.assign(thread, { kind, id });
        slot.replaceChildren(commentForm(kind, id));
      }
      thread.refresh();
    };
    thread.refresh = () => {
      if (thread.id === null || !targetOf(thread.kind, thread.id)) return;
      bar.replaceChildren(...reactionButtons(thread.kind, thread.id));
      const pick = thread.kind === "image" ? pickEntry(state.images.get(thread.id)) : null;
      const entries = (pick ? [pick] : [])
        .concat(commentsOn(thread.kind, thread.id).map((message, index, all) => room.messageEntry(message, all[index - 1])))
        .concat(room.pendingItems("comment.add", thread.kind, thread.id));
      room.reconcile(list, entries);
      empty.hidden = entries.length > 0;
    };
    thread.focus = () => {
      const text = slot.querySelector("textarea");
      if (text && !text.disabled) text.focus({ preventScroll: true });
    };
    return thread;
  }

  /* The Art Expert's pick heads an image's thread: "Picked by Eve: its note". */
  function pickEntry(image) {
    if (!image || !image.picked) return null;
    const who = PH.memberName(state, image.picked_by);
    return {
      key: "pick",
      sig: JSON.stringify([who, image.note]),
      build: () =>
        h(
          "li",
          { class: "talk-line talk-pick" },
          h("p", { class: "pick-note" }, "★ Picked by ", h("bdi", {}, who), image.note ? ": " : "", image.note ? h("span", { dir: "auto" }, image.note) : null),
        ),
    };
  }

  const lightboxThread = createThread(document.getElementById("lightbox-talk"));
  const promptThread = createThread(document.getElementById("prompt-thread-talk"));

  function showImageThread(id) {
    lightboxThread.show("image", id);
  }

  function refreshThreads() {
    if (ui.lightbox !== null) lightboxThread.refresh();
    if (ui.promptThread !== null) renderPromptThread();
  }

  // --- A prompt's thread ------------------------------------------------------------------------

  function openPromptThread(id) {
    if (!state.prompts.has(id)) return;
    ui.promptThread = id;
    renderPromptThread();
    if (!promptDialog.dialog.open) promptDialog.dialog.showModal();
  }

  function renderPromptThread() {
    const id = ui.promptThread;
    const prompt = state.prompts.get(id);
    if (!prompt) return promptDialog.dialog.open && promptDialog.dialog.close();
    const parent = state.prompts.get(prompt.parent);
    promptDialog.text.textContent = prompt.text;
    promptDialog.meta.textContent = "by " + PH.memberName(state, prompt.author) + (parent ? ` · refines “${parent.text}”` : "");
    const close = () => promptDialog.dialog.close();
    promptDialog.actions.replaceChildren(
      ...[
        room.mayAct() ? h("button", { type: "button", class: "small secondary", onclick: () => (close(), room.refine(id)) }, "Refine") : null,
        room.mayWrite() ? h("button", { type: "button", class: "small secondary", onclick: () => (close(), room.mention({ prompt: id })) }, "Mention in chat") : null,
      ].filter(Boolean),
    );
    promptThread.show("prompt", id);
  }

  promptDialog.dialog.addEventListener("close", () => (ui.promptThread = null));
  document.getElementById("prompt-thread-close").addEventListener("click", () => promptDialog.dialog.close());
  promptDialog.dialog.addEventListener("click", (click) => {
    if (click.target === promptDialog.dialog) promptDialog.dialog.close(); // the backdrop
  });

  /* The prompt tree (drawn by the server, party-panels.js inlines it) gets a 💬 on each node's
   * corner, with its comment count and reactions; it opens the prompt's thread, while a click on
   * the rest of the node still refines the prompt. Over the node's top edge, in the gap between
   * rows, where it covers none of the node's text or thumbnail. */
  const SVG = "http://www.w3.org/2000/svg";

  function decorateTree() {
    const svg = el.tree.querySelector("svg");
    if (!svg) return;
    if (!svg.dataset.talkRoom) {
      // Room above the first node for its badge.
      const [x, y, width, height] = (svg.getAttribute("viewBox") || "0 0 0 0").split(/\s+/).map(Number);
      svg.setAttribute("viewBox", `${x} ${y - 10} ${width} ${height + 10}`);
      svg.dataset.talkRoom = "1";
    }
    for (const node of svg.querySelectorAll("g.pt-node[data-prompt]")) decorateNode(node, Number(node.dataset.prompt));
  }

  function decorateNode(node, id) {
    const prompt = state.prompts.get(id);
    const box = node.querySelector("rect.pt-box");
    const old = node.querySelector(".pt-talk");
    if (old) old.remove();
    if (!prompt || !box) return;
    const count = commentCount("prompt", id);
    const reactions = REACTIONS.filter(([name]) => (prompt.reactions || {})[name]).map(([name, emoji]) => `${emoji}${prompt.reactions[name]}`);
    const label = ["💬" + (count ? " " + count : "")].concat(reactions).join("  ");
    const said = count || reactions.length;
    const badge = document.createElementNS(SVG, "g");
    badge.setAttribute("class", "pt-talk" + (said ? " said" : ""));
    badge.setAttribute("role", "button");
    badge.setAttribute("tabindex", "0");
    badge.setAttribute("aria-label", `Comments and reactions on this prompt: ${count} comments`);
    badge.dataset.talkAbout = String(id); // not data-prompt: that names the node itself
    const right = Number(box.getAttribute("width")) - 8;
    const pill = document.createElementNS(SVG, "rect");
    const text = document.createElementNS(SVG, "text");
    text.setAttribute("x", String(right - 6));
    text.setAttribute("y", "4");
    text.setAttribute("text-anchor", "end");
    text.textContent = label;
    badge.append(pill, text);
    node.append(badge);
    // Measured once on the page; a hidden tree has no boxes: an estimate then.
    const width = text.getBBox().width || label.length * 7;
    for (const [name, value] of Object.entries({ x: right - width - 12, y: -8, width: width + 12, height: 16, rx: 8 })) pill.setAttribute(name, String(value));
  }

  function openFromBadge(event) {
    const badge = event.target.closest && event.target.closest(".pt-talk");
    if (!badge) return;
    event.preventDefault();
    event.stopPropagation(); // not a click that refines the prompt
    openPromptThread(Number(badge.dataset.talkAbout));
  }

  el.tree.addEventListener("click", openFromBadge, true);
  el.tree.addEventListener("keydown", (key) => {
    if (key.key === "Enter" || key.key === " ") openFromBadge(key);
  });

  // --- Redraws --------------------------------------------------------------------------------

  /* The comment composers, the open threads and the tree's badges, from a (re)loaded snapshot or
   * a change of who is who (party-chat.js's renderTalk). A muted member reads and reacts; a
   * removed one only reads. */
  function renderThreads() {
    for (const form of commentForms.values()) limitForm(form);
    refreshThreads();
    decorateTree();
  }

  /* A comment, a reaction or a hidden message: the grid's counts, the tree's badges, the threads
   * and the chat show it. */
  function talkChanged(event) {
    const message = event.message;
    if (message && state.me && message.author === state.me.id) ui.pending.delete(message.client_id);
    // A chat line's image or prompt is only what it mentions: their counts stay.
    const about = !message ? event : message.kind === "comment" ? message : {};
    const image = about.image != null ? state.images.get(about.image) : null;
    if (image) room.updateCard(image.render);
    if (about.prompt != null) decorateTree();
    if (message && message.kind === "chat") room.renderChat();
    refreshThreads();
  }

  Object.assign(room, {
    imageTalkBar,
    openImageThread,
    showImageThread,
    openPromptThread,
    commentForm,
    refreshThreads,
    decorateTree,
    renderThreads,
    talkChanged,
  });
})();
