/* The stage: a projector view of the party. While a render runs, its preview fills the screen as
 * the picture forms; when it is done, its images replace the preview, with their prompt and
 * author. The join QR code and code stay in view. Read-only: it follows the same events. */
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
  };
  // What fills the screen now ("preview:<render>" or "render:<render>:<images>"): the pictures
  // are only swapped when it changes, so votes and progress frames never make the projector blink.
  let shown = null;
  // A public party's outsider polls the archive: no progress frames reach it, so it cannot tell
  // a render that started from one still queued.
  let polling = false;
  const MAX_QUEUED_SHOWN = 8;

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
    if (forming) drawForming(forming);
    else drawNewestRender();
    drawRunning();
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
})();
