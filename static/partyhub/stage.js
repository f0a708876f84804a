/* The stage: a projector view of the party. The newest finished image fills the screen; the join
 * code and the running render's progress stay in view. Read-only: it follows the same events. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const { h } = PH;

  const stage = document.getElementById("stage");
  const state = PH.createState(stage.dataset.code);
  const el = {
    image: document.getElementById("stage-image"),
    prompt: document.getElementById("stage-prompt"),
    author: document.getElementById("stage-author"),
    running: document.getElementById("stage-running"),
    runningText: document.getElementById("stage-running-text"),
    progress: document.getElementById("stage-progress"),
    connection: document.getElementById("connection"),
  };
  let shownImage = null;

  document.getElementById("stage-url").textContent = location.host;

  PH.follow(state, {
    onReset: draw,
    onEvent: draw,
    onProgress: drawRunning,
    onStatus: (name, detail) => PH.showConnection(el.connection, name, detail),
  });

  function draw() {
    drawNewestImage();
    drawRunning();
  }

  function drawNewestImage() {
    const ids = [...state.images.keys()];
    if (!ids.length) return;
    const image = state.images.get(Math.max(...ids));
    const prompt = state.prompts.get(state.renders.get(image.render).prompt);
    // Only swap the <img> when a newer image arrives: votes must not make the projector blink.
    if (shownImage !== image.id) {
      shownImage = image.id;
      el.image.replaceChildren(h("img", { src: image.url, alt: prompt.text }));
    }
    el.prompt.textContent = prompt.text;
    el.author.textContent = "by " + PH.memberName(state, prompt.author) + (image.votes ? ` · ♥ ${image.votes}` : "");
  }

  function drawRunning() {
    const active = [...state.renders.values()].filter((r) => r.status === "running" || r.status === "queued");
    const running = active.filter((r) => r.status === "running").sort((a, b) => b.id - a.id)[0];
    el.running.hidden = !running;
    if (!running) return;
    const prompt = state.prompts.get(running.prompt);
    const progress = state.progress.get(running.id);
    const waiting = active.length - 1;
    el.runningText.textContent = prompt.text + (waiting > 0 ? `  (+${waiting} waiting)` : "");
    el.progress.style.width = progress && progress.steps ? `${(100 * progress.step) / progress.steps}%` : "0%";
    // While nothing newer is finished, the projector shows the picture forming.
    if (progress && progress.preview && shownImage === null) {
      el.image.replaceChildren(h("img", { class: "preview", src: progress.preview, alt: "the image forming" }));
    }
  }
})();
