/* The party room's chat (after party-lightbox.js, before party-threads.js): the conversation in
 * the side column, folded or open, with what came unread counted on its header and the top bar's
 * Chat; older lines paged back; writing a line, with a mention of an image or a prompt; and the
 * question a facilitator or the Prompt Master pins above the room. A facilitator (or the Prompt
 * Master) hides a message, here and in the threads.
 *
 * Here too what party-threads.js draws its comments with: a message as a line (chat line or
 * comment alike), a composer's count against the talk's limits (talk-rules, which the page carries
 * from partyhub/models/talk.py), and the lines of mine not answered yet. Such a line is shown at
 * once as "sending…" under its client_id and replaced by the server's event that carries that
 * client_id; outbox.js keeps it until then, across reconnects, and a refused one stays in view as
 * "not sent" with its text, never lost. Every text is the members' own: built as text nodes (h),
 * with dir="auto" and names in <bdi>. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const room = PH.room;
  if (!room) return; // the join form's page: party-room.js set no room up
  const { h, api } = PH;
  const { state, ui } = room;

  // What a chat line or a comment may be, and the reactions (party-threads.js shows them), from
  // partyhub/models/talk.py: {reactions: [[name, emoji], ...], max_text, max_lines}.
  const talkRules = JSON.parse(document.getElementById("talk-rules").textContent);
  // The most characters (the count shows from 90% of it on), and lines, a text has.
  const MAX_TEXT = talkRules.max_text;
  const MAX_LINES = talkRules.max_lines;
  const FOLDED_KEY = "partyhub.chat.folded";
  // Within this many pixels of its end the chat counts as read to the bottom: a line coming in
  // then scrolls into view, and none counts as unread.
  const BOTTOM_SLACK = 24;

  Object.assign(ui, {
    mention: null, // {image: id} or {prompt: id}: what the next chat line is about
    unread: 0, // chat lines of others that came while the chat was folded, scrolled up or away
    pending: new Map(), // client_id -> {message, status: "sending" | "waiting" | "failed", error}
    waitingIds: new Set(), // client_ids the outbox holds until the socket opens
    chatFolded: readFolded(),
    questionEditing: false,
  });

  const chat = {
    panel: document.getElementById("chat"),
    body: document.getElementById("chat-body"),
    scroll: document.getElementById("chat-scroll"),
    lines: document.getElementById("chat-lines"),
    earlier: document.getElementById("chat-earlier"),
    empty: document.getElementById("chat-empty"),
    note: document.getElementById("chat-note"),
    form: document.getElementById("chat-form"),
    about: document.getElementById("chat-about"),
    text: document.getElementById("chat-text"),
    chars: document.getElementById("chat-chars"),
    send: document.getElementById("chat-send"),
    fold: document.getElementById("chat-fold"),
    unread: document.getElementById("chat-unread"),
    jump: document.getElementById("chat-jump"),
    jumpCount: document.getElementById("chat-jump-count"),
  };
  const question = {
    section: document.getElementById("question"),
    shown: document.getElementById("question-shown"),
    text: document.getElementById("question-text"),
    actions: document.getElementById("question-actions"),
    edit: document.getElementById("question-edit"),
    unpin: document.getElementById("question-unpin"),
    form: document.getElementById("question-form"),
    cancel: document.getElementById("question-cancel"),
  };

  /* Whether I may write in the chat and the threads: not muted, not removed. Reacting is like
   * voting: a muted member still may. */
  function mayWrite() {
    return room.mayAct() && !state.me.muted;
  }

  // --- Messages as lines (the chat's, and the threads' comments: party-threads.js) --------------

  /* One chat line or comment: who (and their role, unless a participant), when, what it is about
   * (a chat line's mention), and its text, or that a facilitator hid it. A line that goes on from
   * the one before (`continued`: the same author, just after) says who and when only to screen
   * readers and on hover, as chats do. */
  function messageItem(message, continued = false) {
    const mine = !!state.me && message.author === state.me.id;
    const classes = ["talk-line", mine && "mine", message.hidden && "is-hidden", continued && "continued"].filter(Boolean).join(" ");
    const date = new Date(message.at);
    return h(
      "li",
      { class: classes, dataset: { message: message.id, author: message.author }, title: continued && !Number.isNaN(date.getTime()) ? date.toLocaleString() : null },
      continued
        ? [h("span", { class: "visually-hidden" }, PH.memberName(state, message.author) + ": "), moderation(message)]
        : metaLine(message.author, message.at, moderation(message)),
      message.hidden || message.kind !== "chat" ? null : mentionOf(message),
      message.hidden
        ? h("p", { class: "talk-text talk-hidden" }, "message hidden by a facilitator")
        : h("p", { class: "talk-text", dir: "auto" }, textWithLinks(message.text)),
    );
  }

  function metaLine(authorId, at, ...extra) {
    const author = state.members.get(authorId);
    const role = author && author.role !== "participant" ? PH.ROLE_TITLES[author.role] || author.role : null;
    return h(
      "p",
      { class: "talk-meta" },
      h("bdi", { class: "talk-author" }, author ? author.name : "someone"),
      role ? h("span", { class: "talk-role role-" + author.role }, role) : null,
      at ? timeOf(at) : null,
      ...extra,
    );
  }

  /* "14:05" today, "5 Dec, 14:05" on another day; the full date on hover. */
  function timeOf(at) {
    const date = new Date(at);
    if (Number.isNaN(date.getTime())) return null;
    const today = date.toDateString() === new Date().toDateString();
    const short = { hour: "2-digit", minute: "2-digit" };
    const text = today ? date.toLocaleTimeString([], short) : date.toLocaleString([], { day: "numeric", month: "short", ...short });
    return h("time", { class: "talk-time", datetime: at, title: date.toLocaleString() }, text);
  }

  /* A facilitator's (and the Prompt Master's) Hide, or Show again; the server refuses others. */
  function moderation(message) {
    if (!PH.mayModerate(state.me)) return null;
    const hidden = !!message.hidden;
    return h(
      "button",
      {
        type: "button",
        class: "link talk-hide",
        title: hidden ? "Show this message to everyone again" : "Hide this message from everyone",
        onclick: () => room.live.send({ type: "message.hide", message: message.id, hidden: !hidden }),
      },
      hidden ? "Show again" : "Hide",
    );
  }

  /* What a chat line mentions: a small thumbnail that opens the image in the lightbox, or the
   * prompt, quoted and clamped, that opens its thread. */
  function mentionOf(message) {
    if (message.image !== null && message.image !== undefined) return imageMention(message.image);
    if (message.prompt !== null && message.prompt !== undefined) return promptMention(message.prompt);
    return null;
  }

  function imageMention(id) {
    const image = state.images.get(id);
    if (!image) return h("p", { class: "hint talk-mention" }, "about an image no longer shown");
    const prompt = promptOfImage(image);
    const open = (click) => {
      if (click.button !== 0 || click.ctrlKey || click.metaKey || click.shiftKey || click.altKey) return;
      click.preventDefault();
      room.openLightbox(id);
    };
    return h(
      "a",
      { class: "talk-mention mention-image", href: image.url, title: "Open this image" + (prompt ? ": " + prompt.text : ""), onclick: open, dataset: { image: id } },
      h("img", { src: image.url, alt: prompt ? prompt.text : "an image", width: "56", height: String(Math.round((56 * image.height) / image.width) || 56), loading: "lazy" }),
    );
  }

  function promptMention(id) {
    const prompt = state.prompts.get(id);
    if (!prompt) return h("p", { class: "hint talk-mention" }, "about a prompt no longer shown");
    return h(
      "button",
      { type: "button", class: "link talk-mention mention-prompt", title: "Open this prompt's thread", dataset: { prompt: id }, onclick: () => room.openPromptThread(id) },
      h("q", { class: "clamp", style: "--lines: 2", dir: "auto" }, prompt.text),
    );
  }

  function promptOfImage(image) {
    const render = state.renders.get(image.render);
    return render ? state.prompts.get(render.prompt) : null;
  }

  /* The text with this site's own addresses as links (a full URL of this origin, or a path
   * from its root); any other address stays text: a chat is no place to be led off the site. */
  function textWithLinks(text) {
    const parts = [];
    for (const piece of String(text).split(/(\s+)/)) {
      const core = piece.replace(/[.,;:!?)\]}'"”’»]+$/, "");
      const url = ownUrl(core);
      if (!url) {
        parts.push(piece);
        continue;
      }
      parts.push(h("a", { href: url.href, target: "_blank", rel: "noopener", class: "talk-link" }, core), piece.slice(core.length));
    }
    return parts;
  }

  function ownUrl(text) {
    if (text.length < 2 || !/^(https?:\/\/|\/)/i.test(text)) return null;
    try {
      // Resolved, so that "//elsewhere" and "/\elsewhere" show where they really lead.
      const url = new URL(text, location.origin);
      return url.origin === location.origin ? url : null;
    } catch (_) {
      return null;
    }
  }

  /* A line of mine not yet answered: sending, waiting for the connection, or refused (with the
   * server's reason, its text, and a way to write it again). */
  function pendingItem(clientId, item) {
    const failed = item.status === "failed";
    const status = failed ? "not sent: " + item.error : item.status === "waiting" ? "waiting for the connection…" : "sending…";
    return h(
      "li",
      { class: "talk-line mine pending" + (failed ? " failed" : ""), dataset: { pending: clientId } },
      metaLine(state.me && state.me.id, null, h("span", { class: "talk-status" }, status)),
      item.message.type === "chat.send" ? mentionOf(item.message) : null,
      h("p", { class: "talk-text", dir: "auto" }, item.message.text),
      failed
        ? h(
            "p",
            { class: "talk-retry" },
            h("button", { type: "button", class: "link", onclick: () => restore(clientId) }, "Edit and send again"),
            h("button", { type: "button", class: "link", onclick: () => dismiss(clientId) }, "Dismiss"),
          )
        : null,
    );
  }

  function pendingItems(type, kind, id) {
    return [...ui.pending]
      .filter(([, item]) => item.message.type === type && (!kind || item.message[kind] === id))
      .map(([clientId, item]) => ({ key: "p" + clientId, sig: JSON.stringify([item.status, item.error]), build: () => pendingItem(clientId, item) }));
  }

  /* What a message's line shows besides the message: names, roles, whether I moderate, what it
   * mentions. The line is rebuilt only when this changes, so the others keep their place. */
  function messageEntry(message, previous = null) {
    const author = state.members.get(message.author) || {};
    const image = message.image != null ? state.images.get(message.image) : null;
    const prompt = message.prompt != null ? state.prompts.get(message.prompt) : null;
    const continued = continues(message, previous);
    const sig = JSON.stringify([message, continued, author.name, author.role, PH.mayModerate(state.me), state.me && state.me.id, image && image.url, prompt && prompt.text]);
    return { key: "m" + message.id, sig, build: () => messageItem(message, continued) };
  }

  // Lines of one author less than this apart read as one run: only the first says who and when.
  const RUN_MS = 3 * 60 * 1000;

  function continues(message, previous) {
    if (!previous || previous.author !== message.author || previous.hidden || message.hidden) return false;
    const gap = new Date(message.at) - new Date(previous.at);
    return gap >= 0 && gap < RUN_MS;
  }

  /* Put `entries` ({key, sig, build}) in `list`, in order, reusing the lines that did not change:
   * a new chat line is the only one a screen reader hears, and no text being selected is lost. */
  const built = new WeakMap(); // list -> Map(key -> {sig, node})
  function reconcile(list, entries) {
    const known = built.get(list) || new Map();
    const now = new Map();
    let cursor = list.firstChild;
    for (const entry of entries) {
      const old = known.get(entry.key);
      const node = old && old.sig === entry.sig ? old.node : entry.build();
      now.set(entry.key, { sig: entry.sig, node });
      if (node === cursor) cursor = cursor.nextSibling;
      else list.insertBefore(node, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    built.set(list, now);
    room.fitClamps(list);
  }

  // --- The chat -----------------------------------------------------------------------------------

  function renderChat() {
    const stick = atBottom();
    const lines = PH.chatLines(state);
    const entries = lines.map((message, index) => messageEntry(message, lines[index - 1])).concat(pendingItems("chat.send"));
    reconcile(chat.lines, entries);
    chat.empty.hidden = entries.length > 0 || state.chatEarlier;
    chat.earlier.hidden = !state.chatEarlier;
    if (stick) scrollToEnd();
  }

  function atBottom() {
    const box = chat.scroll;
    return box.scrollHeight - box.scrollTop - box.clientHeight <= BOTTOM_SLACK;
  }

  function scrollToEnd() {
    chat.scroll.scrollTop = chat.scroll.scrollHeight;
  }

  /* A chat line arrived: it scrolls into view if the reader was at the bottom; else, like one
   * that came while the chat was folded or out of sight, it counts as unread. */
  function chatPosted(message) {
    const mine = !!state.me && message.author === state.me.id;
    if (mine) ui.pending.delete(message.client_id);
    const seen = reading();
    renderChat();
    if (mine) scrollToEnd();
    else if (!seen) {
      ui.unread += 1;
      renderUnread();
    }
  }

  // Whether the chat's lines are on the screen now (on a phone they lie below the renders).
  let chatInView = false;
  new IntersectionObserver(
    ([entry]) => {
      chatInView = entry.isIntersecting;
      noteRead();
    },
    { threshold: 0.3 },
  ).observe(chat.scroll);

  function reading() {
    return !ui.chatFolded && chatInView && atBottom() && document.visibilityState === "visible";
  }

  function noteRead() {
    if (!ui.unread || !reading()) return;
    ui.unread = 0;
    renderUnread();
  }

  chat.scroll.addEventListener("scroll", noteRead, { passive: true });
  document.addEventListener("visibilitychange", noteRead);

  function renderUnread() {
    const count = ui.unread;
    const label = count > 99 ? "99+" : String(count);
    for (const badge of [chat.unread, chat.jumpCount]) {
      badge.hidden = !count;
      badge.textContent = label;
    }
    chat.unread.title = `${count} new`;
    chat.jump.setAttribute("aria-label", count ? `Chat, ${count} new` : "Chat");
  }

  // --- Folding ----------------------------------------------------------------------------------

  function readFolded() {
    try {
      return localStorage.getItem(FOLDED_KEY) === "1";
    } catch (_) {
      return false; // storage blocked: the chat starts open
    }
  }

  function setFolded(folded) {
    ui.chatFolded = folded;
    try {
      localStorage.setItem(FOLDED_KEY, folded ? "1" : "0");
    } catch (_) {
      // not remembered: it starts open next time
    }
    renderFold();
    if (!folded) {
      scrollToEnd(); // unfolded at the newest line: what the count said was new
      noteRead();
    }
  }

  function renderFold() {
    const folded = ui.chatFolded;
    chat.body.hidden = folded;
    chat.panel.classList.toggle("folded", folded);
    chat.fold.textContent = folded ? "show" : "hide";
    chat.fold.setAttribute("aria-expanded", String(!folded));
  }

  chat.fold.addEventListener("click", () => setFolded(!ui.chatFolded));

  /* The top bar's Chat: the chat unfolded, in view, at its newest line. */
  function openChat({ focus = false } = {}) {
    if (ui.chatFolded) setFolded(false);
    chat.panel.scrollIntoView({ block: "nearest", behavior: "smooth" });
    scrollToEnd();
    noteRead();
    if (focus && !chat.text.disabled && !chat.form.hidden) chat.text.focus({ preventScroll: true });
  }

  chat.jump.addEventListener("click", () => openChat({ focus: room.hasHover() }));

  // --- Paging back --------------------------------------------------------------------------------

  chat.earlier.addEventListener("click", async () => {
    const oldest = PH.chatLines(state)[0];
    chat.earlier.disabled = true;
    try {
      const before = oldest ? `?before=${oldest.id}` : "";
      const page = await api("GET", `/api/parties/${state.code}/messages${before}`);
      // The line read stays where it was while the older ones come in above it.
      const { scrollHeight, scrollTop } = chat.scroll;
      for (const message of page.messages) if (!state.messages.has(message.id)) state.messages.set(message.id, message);
      state.chatEarlier = !!page.earlier;
      renderChat();
      chat.scroll.scrollTop = scrollTop + chat.scroll.scrollHeight - scrollHeight;
    } catch (error) {
      room.showToast({ code: error.code, message: error.message });
    } finally {
      chat.earlier.disabled = false;
    }
  });

  // --- Writing ----------------------------------------------------------------------------------

  /* Enter sends, Shift+Enter is a new line; not while an input method composes a word. */
  function sendOnEnter(key, send) {
    if (key.key !== "Enter" || key.shiftKey || key.isComposing || key.keyCode === 229) return;
    key.preventDefault();
    send();
  }

  /* The count shows near the limit and says by how much a text is over it, and past the most lines
   * by how many; over either, it is refused, never cut. Characters as the server counts them: code
   * points, after trimming; lines too, after trimming. */
  function countText(textarea, output, button) {
    const text = textarea.value.trim();
    const length = [...text].length;
    const lines = text.split("\n").length;
    const long = length > MAX_TEXT;
    const tall = lines > MAX_LINES;
    const over = long || tall;
    const breaks = lines - MAX_LINES;
    const counts = [
      length >= 0.9 * MAX_TEXT && `${length} / ${MAX_TEXT}` + (long ? `: shorten it by ${length - MAX_TEXT}` : ""),
      tall && `${lines} / ${MAX_LINES} lines: take out ${breaks} line ${breaks === 1 ? "break" : "breaks"}`,
    ].filter(Boolean);
    output.hidden = !counts.length;
    output.dataset.over = String(over);
    output.textContent = counts.join(" · ");
    textarea.setAttribute("aria-invalid", String(over));
    button.disabled = over || textarea.disabled;
    return !over;
  }

  /* Send a chat line or a comment, and show it at once as mine, sending. */
  function sendTalk(message) {
    if (!room.live.send(message)) return false; // refused (offline for good): the toast said so
    const status = ui.waitingIds.has(message.client_id) ? "waiting" : "sending";
    ui.pending.set(message.client_id, { message, status, error: null });
    return true;
  }

  function sendChat() {
    const text = chat.text.value.trim();
    if (!mayWrite() || !text || !countText(chat.text, chat.chars, chat.send)) return;
    const message = { type: "chat.send", text, client_id: room.newClientId(), ...(ui.mention || {}) };
    if (!sendTalk(message)) return;
    chat.text.value = "";
    ui.mention = null;
    renderMention();
    countText(chat.text, chat.chars, chat.send);
    renderChat();
    scrollToEnd();
  }

  chat.form.addEventListener("submit", (submit) => {
    submit.preventDefault();
    sendChat();
  });
  chat.text.addEventListener("keydown", (key) => sendOnEnter(key, sendChat));
  chat.text.addEventListener("input", () => countText(chat.text, chat.chars, chat.send));

  /* Mention an image or a prompt in the chat: the composer shows "about:" it until the line is
   * sent or the mention taken off. */
  function mention(about) {
    ui.mention = about;
    renderMention();
    openChat({ focus: true });
  }

  function renderMention() {
    const about = ui.mention;
    chat.about.hidden = !about;
    if (!about) return chat.about.replaceChildren();
    const image = about.image !== undefined ? state.images.get(about.image) : null;
    const prompt = about.prompt !== undefined ? state.prompts.get(about.prompt) : null;
    if (!image && !prompt) {
      ui.mention = null;
      return renderMention();
    }
    chat.about.replaceChildren(
      h("span", { class: "hint" }, "about:"),
      image
        ? h("img", { src: image.url, alt: (promptOfImage(image) || {}).text || "the image", class: "chat-about-thumb" })
        : h("q", { class: "chat-about-prompt", dir: "auto" }, prompt.text),
      h("button", { type: "button", class: "link", "aria-label": "Take the mention off", title: "Take the mention off", onclick: unmention }, "✕"),
    );
  }

  function unmention() {
    ui.mention = null;
    renderMention();
    chat.text.focus();
  }

  /* A refused line or comment, back in its composer to be fixed (after what is there). */
  function restore(clientId) {
    const item = ui.pending.get(clientId);
    if (!item) return;
    const message = item.message;
    const isChat = message.type === "chat.send";
    const textarea = isChat ? chat.text : room.commentForm(message.image != null ? "image" : "prompt", message.image ?? message.prompt).elements.text;
    textarea.value = textarea.value.trim() ? textarea.value.trimEnd() + "\n" + message.text : message.text;
    if (isChat && (message.image != null || message.prompt != null)) {
      ui.mention = message.image != null ? { image: message.image } : { prompt: message.prompt };
      renderMention();
    }
    dismiss(clientId);
    textarea.dispatchEvent(new Event("input"));
    textarea.focus();
  }

  function dismiss(clientId) {
    ui.pending.delete(clientId);
    renderChat();
    room.refreshThreads();
  }

  /* An error frame: a line or comment of mine the server refused (muted, too fast, too long). */
  function talkRefused(frame) {
    const item = frame.client_id && ui.pending.get(frame.client_id);
    if (!item) return;
    Object.assign(item, { status: "failed", error: frame.message || frame.code });
    renderChat();
    room.refreshThreads();
  }

  /* The socket closed for good: what was not answered will not be. */
  function talkClosed() {
    for (const item of ui.pending.values()) {
      if (item.status !== "failed") Object.assign(item, { status: "failed", error: "the connection closed" });
    }
    renderChat();
    room.refreshThreads();
  }

  /* What the outbox holds changed: those lines say they wait for the connection. */
  function showTalkWaiting(messages) {
    ui.waitingIds = new Set(messages.map((message) => message.client_id).filter(Boolean));
    let changed = false;
    for (const [clientId, item] of ui.pending) {
      const status = ui.waitingIds.has(clientId) ? "waiting" : "sending";
      if (item.status === "failed" || item.status === status) continue;
      item.status = status;
      changed = true;
    }
    if (changed) {
      renderChat();
      room.refreshThreads();
    }
  }

  // --- The pinned question ----------------------------------------------------------------------

  /* Everyone sees the question while one is pinned; a facilitator or the Prompt Master also pins
   * one, changes or unpins it. */
  function renderQuestion() {
    const moderating = PH.mayModerate(state.me);
    const text = state.question;
    if (!moderating) ui.questionEditing = false;
    question.section.hidden = !text && !moderating;
    question.section.classList.toggle("empty", !text);
    question.shown.hidden = !text;
    question.text.textContent = text || "";
    question.actions.hidden = !moderating || ui.questionEditing;
    question.edit.textContent = text ? "Change" : "Pin a question for everyone";
    question.unpin.hidden = !text;
    question.form.hidden = !ui.questionEditing;
  }

  question.edit.addEventListener("click", () => {
    ui.questionEditing = true;
    question.form.elements.text.value = state.question || "";
    renderQuestion();
    question.form.elements.text.focus();
  });
  question.cancel.addEventListener("click", () => {
    ui.questionEditing = false;
    renderQuestion();
  });
  question.unpin.addEventListener("click", () => room.live.send({ type: "question.pin", text: null }));
  // lengths.js refuses a question over its 200 characters before this runs.
  question.form.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const text = question.form.elements.text.value.trim();
    if (!text || !room.live.send({ type: "question.pin", text })) return;
    ui.questionEditing = false;
    renderQuestion();
  });

  // --- Redraws --------------------------------------------------------------------------------

  /* A muted member reads and reacts; a removed one only reads. */
  function renderChatLimits() {
    const removed = !room.mayAct();
    const muted = !removed && !!state.me.muted;
    chat.form.hidden = removed;
    chat.text.disabled = muted;
    countText(chat.text, chat.chars, chat.send);
    chat.empty.textContent = muted || removed ? "Nothing said yet." : "Nothing said yet. Say hello, or mention an image from its buttons.";
    chat.note.hidden = !(muted || removed);
    chat.note.textContent = removed
      ? "You were removed from this party: you can read what was said, not write."
      : "A facilitator muted you: you can read the chat and react, not write.";
  }

  /* Everything the party said, from a (re)loaded snapshot or a change of who is who: the chat and
   * the question here, then the threads and the tree's badges (party-threads.js). */
  function renderTalk() {
    for (const message of state.messages.values()) {
      if (state.me && message.author === state.me.id) ui.pending.delete(message.client_id);
    }
    renderFold();
    renderChat();
    renderMention();
    renderUnread();
    renderChatLimits();
    renderQuestion();
    room.renderThreads();
  }

  Object.assign(room, {
    talkRules,
    mayWrite,
    messageEntry,
    pendingItems,
    reconcile,
    sendOnEnter,
    countText,
    sendTalk,
    mention,
    renderTalk,
    renderChat,
    renderQuestion,
    chatPosted,
    talkRefused,
    talkClosed,
    showTalkWaiting,
  });
})();
