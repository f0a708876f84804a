/* The stage: a projector view of the party. While a render runs, its preview fills the screen as
 * the picture forms; when it is done, its images replace the preview, with their prompt and
 * author; a sweep's cells show as its whole grid, labelled, filling in. The join QR code and
 * code stay in view, the pinned question large at the top, and the newest chat lines in a
 * corner (hidden with a button or ?chat=0). Read-only: it follows the same events. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const { h } = PH;

  const stage = document.getElementById("stage");
  const state = PH.createState(stage.dataset.code);
  const el = {
    image: document.getElementById("stage-image"),
    label: document.getElementById("stage-label"),
    prompt: document.getElementById("stage-prompt"),
    author: document.getElementById("stage-author"),
    running: document.getElementById("stage-running"),
    runningLabel: document.getElementById("stage-running-label"),
    runningText: document.getElementById("stage-running-text"),
    progress: document.getElementById("stage-progress"),
    queued: document.getElementById("stage-queued"),
    queuedLabel: document.getElementById("stage-queued-label"),
    queuedList: document.getElementById("stage-queued-list"),
    connection: document.getElementById("connection"),
    question: document.getElementById("stage-question"),
    questionText: document.getElementById("stage-question-text"),
    chat: document.getElementById("stage-chat"),
    chatLines: document.getElementById("stage-chat-lines"),
    chatToggle: document.getElementById("stage-chat-toggle"),
  };
  // What fills the screen now ("preview:<render>" or "render:<render>:<images>"): the pictures
  // are only swapped when it changes, so votes and progress frames never make the projector blink.
  let shown = null;
  // A public party's outsider polls the archive: no progress frames reach it, so it cannot tell
  // a render that started from one still queued.
  let polling = false;
  const MAX_QUEUED_SHOWN = 8;
  // The chat lines the corner shows: enough to follow, few enough to read from the back.
  const CHAT_SHOWN = 5;
  const CHAT_KEY = "partyhub.stage.chat";
  let chatShown = chatWanted();

  PH.follow(state, {
    onReset: draw,
    onEvent: draw,
    onProgress: draw,
    onStatus: (name, detail) => {
      PH.showConnection(el.connection, name, detail);
      if (polling !== (name === "polling")) {
        polling = name === "polling";
        drawRunning();
      }
    },
  });

  function draw() {
    const forming = formingRender();
    const sweep = PH.sweeps.onStage(state, forming);
    if (sweep) drawSweep(sweep);
    else if (forming) drawForming(forming);
    else drawNewestRender();
    drawRunning();
    drawTalk();
  }

  /* A sweep's cell is forming, or came last: its whole grid, labelled, its cells filling in as
   * they render (sweeps.js draws it without blinking). */
  function drawSweep(sweep) {
    shown = PH.sweeps.drawBoard(el.image, state, sweep, shown);
    el.image.dataset.showing = "sweep";
    el.image.dataset.render = "";
    const layout = PH.sweeps.grid(state, sweep);
    const { done, total } = PH.sweeps.tally(layout.cells);
    el.label.hidden = false;
    el.label.textContent = done < total ? `Sweep · ${done} of ${total} done` : `Sweep · ${PH.sweeps.axesName(sweep)}`;
    el.prompt.textContent = sweep.text;
    const votes = PH.sweeps.images(state, layout.cells).reduce((sum, image) => sum + (image.votes || 0), 0);
    el.author.textContent = `by ${PH.memberName(state, sweep.author)}${votes ? ` · ★ ${votes}` : ""}`;
  }

  /* The newest running render that has a preview to show, if any. */
  function formingRender() {
    let newest = null;
    for (const render of state.renders.values()) {
      const progress = state.progress.get(render.id);
      if (render.status === "running" && progress && progress.preview && (!newest || render.id > newest.id)) {
        newest = render;
      }
    }
    return newest;
  }

  function drawForming(render) {
    const progress = state.progress.get(render.id);
    const prompt = state.prompts.get(render.prompt);
    const key = `preview:${render.id}`;
    if (shown !== key) {
      shown = key;
      el.image.dataset.showing = "preview";
      el.image.dataset.render = render.id;
      el.image.replaceChildren(h("img", { class: "preview", src: progress.preview, alt: "the image forming" }));
    } else {
      el.image.querySelector("img").src = progress.preview; // the next preview of the same render
    }
    el.label.hidden = false;
    el.label.textContent = `Forming now · step ${progress.step} of ${progress.steps}`;
    showPrompt(prompt, "");
  }

  /* The render whose images arrived last (the newest image's), all its images large. */
  function drawNewestRender() {
    const ids = [...state.images.keys()];
    if (!ids.length) {
      shown = null;
      el.image.dataset.showing = "";
      el.image.replaceChildren(h("p", { class: "stage-waiting" }, "Waiting for the first image…"));
      el.label.hidden = true;
      showPrompt(null, "");
      return;
    }
    const render = state.renders.get(state.images.get(Math.max(...ids)).render);
    if (!render) return;
    const images = render.images.map((id) => state.images.get(id)).filter(Boolean);
    const prompt = state.prompts.get(render.prompt);
    const key = `render:${render.id}:${render.images.join(",")}`;
    if (shown !== key) {
      shown = key;
      el.image.dataset.showing = "render";
      el.image.dataset.render = render.id;
      const alt = prompt ? prompt.text : "";
      // A walk is shown as its animation; other renders as all their images, side by side.
      const pictures = render.animation
        ? [h("img", { class: "stage-shot", src: render.animation, alt })]
        : images.map((image) => h("img", { class: "stage-shot", src: image.url, alt, dataset: { image: image.id } }));
      el.image.replaceChildren(h("div", { class: `stage-shots count-${Math.min(pictures.length, 9)}` }, pictures));
    }
    el.label.hidden = true;
    const votes = images.reduce((sum, image) => sum + (image.votes || 0), 0);
    showPrompt(prompt, votes ? ` · ★ ${votes}` : "");
  }

  function showPrompt(prompt, extra) {
    el.prompt.textContent = prompt ? prompt.text : "";
    el.author.textContent = prompt ? `by ${PH.memberName(state, prompt.author)}${extra}` : "";
  }

  /* "Rendering now" is only for renders that started: a progress frame came (step 0 is the
   * start), or render.retrying or the snapshot says running. A render.queued alone is waiting:
   * the renderer may be busy with other parties' renders or a stream's. */
  function drawRunning() {
    const renders = [...state.renders.values()];
    const running = renders.filter((r) => r.status === "running").sort((a, b) => b.id - a.id);
    const queued = renders.filter((r) => r.status === "queued").sort((a, b) => a.id - b.id); // next first

    el.running.hidden = !running.length;
    if (running.length) {
      const render = running[0]; // renders that share a forward pass run at once: the newest leads
      const progress = state.progress.get(render.id);
      el.runningLabel.textContent = running.length > 1 ? `Rendering now · ${running.length} at once` : "Rendering now";
      const attempt = render.attempt ? ` · attempt ${render.attempt} of ${render.maxAttempts}` : "";
      el.runningText.textContent = describe(render) + attempt;
      el.progress.style.width = progress && progress.steps ? `${(100 * progress.step) / progress.steps}%` : "0%";
    }

    el.queued.hidden = !queued.length;
    if (queued.length) {
      const what = polling ? "Queued or rendering" : "Waiting to start";
      el.queuedLabel.textContent = queued.length > 1 ? `${what} · ${queued.length}` : what;
      // One run of text, cut at two lines by the stylesheet: the label has the count.
      el.queuedList.replaceChildren(
        ...queued.slice(0, MAX_QUEUED_SHOWN).map((r) => {
          const prompt = state.prompts.get(r.prompt);
          return h("li", { dataset: { render: r.id } }, prompt ? `${prompt.text} (${PH.memberName(state, prompt.author)})` : "");
        }),
      );
    }
  }

  function describe(render) {
    const prompt = state.prompts.get(render.prompt);
    return prompt ? `${prompt.text} · ${PH.memberName(state, prompt.author)}` : "";
  }

  // --- The question and the chat ------------------------------------------------------------------

  function drawTalk() {
    el.question.hidden = !state.question;
    el.questionText.textContent = state.question || "";
    drawChat();
  }

  /* The newest lines; one a facilitator hid leaves the projector at once, no trace of it. Redrawn
   * only when they change: progress frames come many times a second, and the thumbnails must not
   * blink. */
  let chatDrawn = null;
  function drawChat() {
    el.chat.classList.toggle("showing", chatShown);
    el.chatLines.hidden = !chatShown;
    el.chatToggle.textContent = chatShown ? "Hide chat" : "Show chat";
    el.chatToggle.setAttribute("aria-expanded", String(chatShown));
    const lines = PH.chatLines(state).filter((message) => !message.hidden).slice(-CHAT_SHOWN);
    el.chat.classList.toggle("quiet", !lines.length);
    const key = JSON.stringify(lines.map((m) => [m.id, m.text, PH.memberName(state, m.author), m.image != null && !!state.images.get(m.image)]));
    if (key === chatDrawn) return;
    chatDrawn = key;
    el.chatLines.replaceChildren(...lines.map(chatLine));
  }

  function chatLine(message) {
    const image = message.image != null ? state.images.get(message.image) : null;
    const prompt = message.prompt != null ? state.prompts.get(message.prompt) : null;
    return h(
      "li",
      { class: "stage-chat-line", dataset: { message: message.id } },
      image ? h("img", { class: "stage-chat-thumb", src: image.url, alt: "" }) : null,
      h(
        "p",
        { class: "stage-chat-text" },
        h("bdi", { class: "stage-chat-author" }, PH.memberName(state, message.author)),
        " ",
        prompt ? h("q", { dir: "auto" }, prompt.text) : null,
        prompt ? " " : null,
        h("span", { dir: "auto" }, message.text),
      ),
    );
  }

  /* ?chat=0 (or 1) in the address decides for this page; else what was chosen last here. */
  function chatWanted() {
    const asked = new URLSearchParams(location.search).get("chat");
    if (asked === "0" || asked === "1") return asked === "1";
    try {
      return localStorage.getItem(CHAT_KEY) !== "0";
    } catch (_) {
      return true; // storage blocked: shown
    }
  }

  el.chatToggle.addEventListener("click", () => {
    chatShown = !chatShown;
    try {
      localStorage.setItem(CHAT_KEY, chatShown ? "1" : "0");
    } catch (_) {
      // not remembered: the next load decides again
    }
    drawChat();
  });
})();
