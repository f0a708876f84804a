/* PartyHub's shared browser code: DOM and HTTP helpers, the party state and its live connection.
 *
 * Loaded as a plain script (no build step) by the home page, the party room and the stage, after
 * the role titles ({% role_titles %}); it defines one global, `PartyHub`. The room and the stage keep one state object each, fill it from
 * the snapshot and then apply protocol-v1 events to it in seq order.
 */
(function () {
  "use strict";

  // --- DOM ------------------------------------------------------------------------------------

  /* Build an element. Children that are strings become text nodes, so user text is never parsed
   * as HTML. props: `class`, `text`, `on<event>` handlers, `dataset`, anything else an attribute
   * (false/null/undefined leave it out, true sets it empty). */
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === false || value === null || value === undefined) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key in node && typeof value !== "string") node[key] = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // --- HTTP -----------------------------------------------------------------------------------

  function cookie(name) {
    const prefix = name + "=";
    for (const part of document.cookie.split(";")) {
      const item = part.trim();
      if (item.startsWith(prefix)) return decodeURIComponent(item.slice(prefix.length));
    }
    return "";
  }

  /* An API call; resolves to the JSON body, rejects with an Error carrying the API's error code. */
  async function api(method, url, body) {
    const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRFToken"] = cookie("csrftoken");
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null; // an HTML error page from a proxy: fall through to a generic message
    }
    if (!response.ok) {
      const error = (data && data.error) || { code: "http_" + response.status, message: response.statusText };
      throw Object.assign(new Error(error.message || error.code), { code: error.code, status: response.status });
    }
    return data;
  }

  // --- State ----------------------------------------------------------------------------------

  /* The party as the client knows it. Maps keyed by id so an event replayed after a reconnect
   * overwrites, never duplicates. */
  function createState(code) {
    return {
      code,
      topic: "",
      title: "",
      me: null,
      defaults: {}, // the party's overrides of the model's defaults
      members: new Map(),
      prompts: new Map(), // id -> {id, text, parent, author, params, status, children: [ids]}
      renders: new Map(), // id -> {id, prompt, status, params, error, position, images: [ids]}
      images: new Map(), // id -> {id, render, url, seed, ..., votes, voted, picked, note, shortlisted}
      associations: new Map(),
      // id -> {id, author, text, x, y, cells: [{x, y, prompt}], client_id}: one prompt drawn
      // across styles or settings as a grid, each cell a prompt of its own (sweeps.js).
      sweeps: new Map(),
      palette: [], // [{kind, text, builtin}]: built-in entries and the host's additions
      steered: false, // only the Prompt Master renders; the others propose
      published: false, // the public gallery /g/<code>/ is up
      progress: new Map(), // render id -> {step, steps, phase, preview}; live only, never archived
      online: new Set(), // ids of the members with the room open now (presence; never archived)
      // Who muted or removed me ({muted, removed}: member ids), when an event said so.
      moderatedBy: {},
      question: null, // the facilitator's pinned question, or null
      // id -> {id, kind: "chat" | "comment", author, text (null once hidden), image, prompt,
      // hidden, client_id, at}: the chat lines loaded so far and every comment.
      messages: new Map(),
      chatEarlier: false, // older chat lines exist than the oldest loaded (paged back on demand)
      lastSeq: 0,
    };
  }

  function resetState(state, snap) {
    for (const key of ["members", "prompts", "renders", "images", "associations", "progress", "messages", "sweeps"]) {
      state[key].clear();
    }
    state.topic = snap.topic;
    state.title = snap.title;
    state.me = snap.me;
    state.defaults = snap.defaults || {};
    state.palette = snap.palette || [];
    state.steered = !!snap.steered;
    state.published = !!snap.published;
    state.online = new Set(snap.online || []);
    state.moderatedBy = {};
    for (const member of snap.members) state.members.set(member.id, member);
    addPromptTree(state, snap.prompts);
    for (const sweep of snap.sweeps || []) state.sweeps.set(sweep.id, sweep);
    for (const render of snap.renders) state.renders.set(render.id, { ...render, images: [] });
    for (const image of snap.images) addImage(state, image);
    for (const association of snap.associations) state.associations.set(association.id, association);
    state.question = snap.question ?? null;
    for (const message of [...(snap.chat || []), ...(snap.comments || [])]) state.messages.set(message.id, message);
    state.chatEarlier = !!snap.chat_earlier;
    state.lastSeq = snap.last_seq;
  }

  function addPromptTree(state, nodes) {
    for (const node of nodes) {
      addPrompt(state, node);
      addPromptTree(state, node.children);
    }
  }

  function addPrompt(state, prompt) {
    const known = state.prompts.get(prompt.id);
    // An event's prompt carries no reactions: those known (the snapshot's) stay.
    const talk = known ? { reactions: known.reactions, reacted: known.reacted } : { reactions: {}, reacted: [] };
    state.prompts.set(prompt.id, { ...talk, ...prompt, children: known ? known.children : [] });
    const parent = state.prompts.get(prompt.parent);
    if (parent && !parent.children.includes(prompt.id)) parent.children.push(prompt.id);
  }

  function addImage(state, image) {
    const defaults = { votes: 0, voted: false, picked: false, note: "", shortlisted: false, reactions: {}, reacted: [] };
    state.images.set(image.id, { ...defaults, ...image });
    const render = state.renders.get(image.render);
    if (render && !render.images.includes(image.id)) render.images.push(image.id);
  }

  function setPromptStatus(state, id, status) {
    const prompt = state.prompts.get(id);
    if (prompt) prompt.status = status;
  }

  function setMember(state, member) {
    state.members.set(member.id, member);
    if (state.me && state.me.id === member.id) state.me = member;
  }

  /* A facilitator or the Prompt Master muted or removed a member: remember who, if it was me. */
  function moderate(state, event, what) {
    setMember(state, event.member);
    if (state.me && state.me.id === event.member.id) state.moderatedBy[what] = event.by;
  }

  /* A message as it is now (posted, hidden or shown again). A hidden chat line older than the
   * ones loaded stays out: it would show alone above a gap; "Load earlier" brings it in place. */
  function setMessage(state, message, known) {
    if (known && !state.messages.has(message.id)) return;
    state.messages.set(message.id, message);
  }

  /* A reaction's new total on an image or a prompt; `reacted` follows my own. */
  function setReaction(state, event) {
    const target = event.image !== null && event.image !== undefined ? state.images.get(event.image) : state.prompts.get(event.prompt);
    if (!target) return;
    const reactions = { ...target.reactions };
    if (event.count > 0) reactions[event.reaction] = event.count;
    else delete reactions[event.reaction];
    target.reactions = reactions;
    if (state.me && event.member === state.me.id) {
      const others = (target.reacted || []).filter((name) => name !== event.reaction);
      target.reacted = event.on ? [...others, event.reaction] : others;
    }
  }

  function finishRender(state, id, status, extra) {
    const render = state.renders.get(id);
    if (render) Object.assign(render, { status }, extra);
    state.progress.delete(id);
  }

  /* How each archived event changes the state. */
  const reducers = {
    "member.joined": (state, event) => setMember(state, event.member),
    "role.changed": (state, event) => setMember(state, event.member),
    "member.muted": (state, event) => moderate(state, event, "muted"),
    "member.removed": (state, event) => moderate(state, event, "removed"),
    "sweep.added": (state, event) => state.sweeps.set(event.sweep.id, event.sweep),
    "prompt.added": (state, event) => addPrompt(state, event.prompt),
    "prompt.proposed": (state, event) => addPrompt(state, event.prompt),
    "proposal.accepted": (state, event) => setPromptStatus(state, event.prompt, "submitted"),
    "proposal.set_aside": (state, event) => setPromptStatus(state, event.prompt, "set_aside"),
    "render.queued": (state, event) => {
      const render = event.render;
      state.renders.set(render.id, {
        id: render.id,
        prompt: render.prompt,
        params: render.params || {},
        position: render.position,
        status: "queued",
        error: null,
        images: [],
      });
    },
    "render.done": (state, event) => {
      finishRender(state, event.render, "done");
      const render = state.renders.get(event.render);
      if (render && event.animation) render.animation = event.animation; // a walk's WebP
      for (const image of event.images) addImage(state, { render: event.render, ...image });
    },
    "render.retrying": (state, event) => {
      // Its worker died or stalled; another starts it over, so the old progress is void.
      const render = state.renders.get(event.render);
      if (render) Object.assign(render, { status: "running", attempt: event.attempt, maxAttempts: event.max_attempts });
      state.progress.delete(event.render);
    },
    "render.failed": (state, event) => finishRender(state, event.render, "failed", { error: event.error }),
    "render.cancelled": (state, event) => finishRender(state, event.render, "cancelled"),
    "render.filtered": (state, event) => finishRender(state, event.render, "filtered"),
    "vote.changed": (state, event) => {
      const image = state.images.get(event.image);
      if (!image) return;
      image.votes = event.votes;
      if (state.me && event.member === state.me.id) image.voted = event.value === 1;
    },
    "image.picked": (state, event) => {
      const image = state.images.get(event.image);
      if (image) Object.assign(image, { picked: event.picked, picked_by: event.picked ? event.member : null, note: event.note || "" });
    },
    "image.shortlisted": (state, event) => {
      const image = state.images.get(event.image);
      if (image) image.shortlisted = event.shortlisted;
    },
    "association.added": (state, event) => state.associations.set(event.association.id, event.association),
    "palette.added": (state, event) => state.palette.push({ ...event.entry, builtin: false }),
    "party.steered": (state, event) => (state.steered = event.steered),
    "party.published": (state, event) => (state.published = event.published),
    "chat.posted": (state, event) => setMessage(state, event.message, false),
    "comment.added": (state, event) => setMessage(state, event.message, false),
    "message.hidden": (state, event) => setMessage(state, event.message, true),
    "reaction.changed": setReaction,
    "question.pinned": (state, event) => (state.question = event.question),
  };

  /* Apply one archived event; false when it was already applied (seq <= lastSeq) and is dropped. */
  function applyEvent(state, event) {
    if (typeof event.seq !== "number" || event.seq <= state.lastSeq) return false;
    state.lastSeq = event.seq;
    const reduce = reducers[event.type];
    if (reduce) reduce(state, event); // unknown types: protocol v1 may grow, skip them quietly
    return true;
  }

  /* Live progress has no seq. The first frame (step 0) is how the room learns a render started. */
  function applyProgress(state, frame) {
    const render = state.renders.get(frame.render);
    if (!render || !["queued", "running"].includes(render.status)) return false;
    render.status = "running";
    // Frames between two previews carry none: keep showing the last one.
    const previous = state.progress.get(frame.render);
    const preview = frame.preview || (previous && previous.preview) || null;
    state.progress.set(frame.render, { step: frame.step, steps: frame.steps, phase: frame.phase, preview });
    return true;
  }

  // --- Derived views --------------------------------------------------------------------------

  function memberName(state, id) {
    const member = state.members.get(id);
    return member ? member.name : "someone";
  }

  function mayPick(member) {
    return !!member && (member.role === "prompt_master" || member.role === "art_expert");
  }

  /* Who hides messages and pins the question (the server checks it again). */
  function mayModerate(member) {
    return !!member && !member.removed && (member.role === "prompt_master" || member.role === "facilitator");
  }

  /* Chat lines (not comments), oldest first. */
  function chatLines(state) {
    return [...state.messages.values()].filter((message) => message.kind === "chat").sort((a, b) => a.id - b.id);
  }

  /* {role: title}, in Member.Role's order: the page carries them ({% role_titles %}, from
   * partyhub/templatetags/roles.py), so Python's Member.Role labels are the only copy. */
  const ROLE_TITLES = JSON.parse(document.getElementById("role-titles").textContent);

  // --- Live connection ------------------------------------------------------------------------

  const CLOSE_BAD_SINCE = 4400;
  const CLOSE_SIGNED_OUT = 4401;
  const CLOSE_NOT_MEMBER = 4403;
  const CLOSE_NO_PARTY = 4404;
  const MAX_BACKOFF_MS = 30000;
  const POLL_MS = 3000;

  /* Load the snapshot, then follow the party over its WebSocket from the snapshot's last_seq.
   *
   * handlers: onReset() after a (re)loaded snapshot, onEvent(event) for each newly applied event,
   * onProgress(frame), onError(frame) for error frames, onStatus(state, detail) for the indicator,
   * onPresence() when the members online changed (the socket asks for presence frames),
   * onOutbox(messages) when what waits in the outbox changed (outbox.js).
   * Starting the socket at the snapshot's seq means nothing between the two is lost or shown twice.
   * Viewers who are not members (a public party's stage) poll the events API instead.
   */
  function follow(state, handlers) {
    let socket = null;
    let attempt = 0;
    let stopped = false;
    // What is sent while the socket is not open, and the prompts it has not answered (outbox.js).
    const outbox = window.PartyHub.createOutbox({
      isOpen,
      write: (text) => socket.send(text),
      onChange: (messages) => handlers.onOutbox && handlers.onOutbox(messages),
      refuse,
    });

    function status(name, detail) {
      if (name === "closed") outbox.closeForGood();
      if (handlers.onStatus) handlers.onStatus(name, detail);
    }

    async function loadSnapshot() {
      try {
        const snap = await api("GET", `/api/parties/${state.code}`);
        resetState(state, snap);
        for (const prompt of state.prompts.values()) answered(prompt);
        for (const message of state.messages.values()) answered(message);
        for (const sweep of state.sweeps.values()) answered(sweep);
        handlers.onReset();
        attempt = 0;
        if (snap.me) connect();
        else poll(); // a public party's outsider cannot open the socket
      } catch (error) {
        if (error.status === 403 || error.status === 404) return status("closed", error.message);
        retry(loadSnapshot);
      }
    }

    function connect() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const url = `${scheme}://${location.host}/ws/parties/${state.code}/?since=${state.lastSeq}&presence=1`;
      status("connecting");
      socket = new WebSocket(url);
      socket.onopen = () => {
        status("live");
        outbox.flush();
      };
      socket.onmessage = (message) => receive(JSON.parse(message.data));
      socket.onclose = (close) => {
        socket = null;
        if (stopped) return;
        outbox.socketClosed();
        if (close.code === CLOSE_SIGNED_OUT) return status("closed", "You signed out. Reload the page to join again.");
        if (close.code === CLOSE_NOT_MEMBER) {
          return status("closed", state.me && state.me.removed ? "removed from this party" : "You are not a member of this party.");
        }
        if (close.code === CLOSE_NO_PARTY) return status("closed", "This party no longer exists.");
        // Our seq is ahead of the archive (the server's data was reset): start over from a snapshot.
        if (close.code === CLOSE_BAD_SINCE) return retry(loadSnapshot);
        retry(connect);
      };
    }

    function receive(frame) {
      if (frame.type === "error") {
        if (frame.client_id) outbox.answered(frame.client_id);
        return handlers.onError && handlers.onError(frame);
      }
      if (frame.type === "presence") {
        // The whole list each time: it replaces what we knew (docs/protocol.md, presence).
        state.online = new Set(frame.online);
        return handlers.onPresence && handlers.onPresence();
      }
      if (frame.type === "render.progress") {
        if (applyProgress(state, frame) && handlers.onProgress) handlers.onProgress(frame);
        return;
      }
      attempt = 0; // a delivered event proves the connection works: the next drop retries fast
      if (frame.prompt && typeof frame.prompt === "object") answered(frame.prompt);
      if (frame.message && typeof frame.message === "object") answered(frame.message);
      if (frame.sweep && typeof frame.sweep === "object") answered(frame.sweep);
      if (applyEvent(state, frame)) handlers.onEvent(frame);
    }

    /* A prompt, sweep, chat line or comment of mine arrived (an event, or the snapshot): the message
     * with its client_id was taken, and needs no sending again. Ids are per member: another's
     * answers nothing. */
    function answered(made) {
      if (made.client_id && state.me && made.author === state.me.id) outbox.answered(made.client_id);
    }

    async function poll() {
      outbox.closeForGood(); // an outsider has no socket to send on
      status("polling");
      while (!stopped) {
        try {
          const page = await api("GET", `/api/parties/${state.code}/events?since=${state.lastSeq}`);
          for (const event of page.events) receive(event);
          if (page.more) continue;
          status("polling");
        } catch (error) {
          status("offline", error.message);
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    }

    /* Exponential backoff with jitter, so a restarted server is not hit by every room at once. */
    function retry(step) {
      const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** attempt) * (0.75 + Math.random() / 2);
      attempt += 1;
      status("reconnecting", Math.round(delay / 1000));
      setTimeout(() => !stopped && step(), delay);
    }

    function isOpen() {
      return !!socket && socket.readyState === WebSocket.OPEN;
    }

    function refuse(message) {
      if (handlers.onError) handlers.onError({ code: "offline", message });
      return false;
    }

    loadSnapshot();
    return {
      send: outbox.send,
      stop() {
        stopped = true;
        outbox.closeForGood();
        if (socket) socket.close();
      },
    };
  }

  /* Show the connection state in a `.connection` element, and how many messages wait in the
   * outbox (`waiting`) for it to open. */
  function showConnection(node, name, detail, waiting = 0) {
    if (!node) return;
    const labels = {
      connecting: "connecting…",
      live: "live",
      polling: "watching",
      reconnecting: `reconnecting in ${detail}s`,
      offline: "offline",
      closed: detail || "disconnected",
    };
    node.dataset.state = name;
    node.dataset.waiting = String(waiting);
    const label = labels[name] || name;
    node.querySelector(".connection-label").textContent = waiting ? `${label} · ${waiting} waiting to send` : label;
  }

  /* A notice in one line: its title, the rest behind "more", and ✕ that hides it for good on
   * this browser (localStorage `key`). Fills `node` (class notice-line); false when dismissed. */
  function oneLineNotice(node, key, title, note) {
    let dismissed = false;
    try {
      dismissed = localStorage.getItem(key) === "1";
    } catch (_) {
      // storage blocked (a private window's settings): the notice just shows
    }
    node.hidden = dismissed;
    if (dismissed) return false;
    const text = h("span", { class: "notice-text" }, h("strong", {}, title), h("span", { class: "notice-note" }, ": " + note));
    const more = h("button", { type: "button", class: "link", "aria-expanded": "false" }, "more");
    more.addEventListener("click", () => {
      const open = node.classList.toggle("open");
      more.textContent = open ? "less" : "more";
      more.setAttribute("aria-expanded", String(open));
    });
    const dismiss = h("button", { type: "button", class: "link", "aria-label": "Dismiss this notice", title: "Dismiss" }, "✕");
    dismiss.addEventListener("click", () => {
      try {
        localStorage.setItem(key, "1");
      } catch (_) {
        // not remembered: it shows again next time
      }
      node.hidden = true;
    });
    node.classList.remove("open");
    node.replaceChildren(text, more, dismiss);
    return true;
  }

  window.PartyHub = {
    h,
    oneLineNotice,
    api,
    cookie,
    createState,
    applyEvent,
    follow,
    showConnection,
    memberName,
    mayPick,
    mayModerate,
    chatLines,
    ROLE_TITLES,
  };
})();
