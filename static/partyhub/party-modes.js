/* The party room's composer modes (after party-room.js): a redraw, repaint or variation of a source
 * image (one of the party's or an upload), the mask painted for a repaint, and a walk. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const room = PH.room;
  if (!room) return; // the join form's page: party-room.js set no room up
  const { state, ui, el } = room;

  // --- Modes: a source image, a painted mask, a walk ------------------------------------------

  const SOURCE_MODES = new Set(["img2img", "inpaint", "variation"]);
  const MODE_NAMES = { img2img: "redrawn", inpaint: "repainted", variation: "varied", walk: "walk" };
  // The server's default strength per mode (generation/params.py), shown as the placeholder.
  const DEFAULT_STRENGTH = { img2img: 0.6, inpaint: 1.0, variation: 0.3 };

  for (const radio of el.composer.elements.mode) {
    radio.addEventListener("change", () => setMode(radio.value));
  }

  // Samplers that add noise at every step: a walk's frames all take its start seed's, so it
  // ends near, not at, its end image (docs/protocol.md, Modes).
  const NOISY_SAMPLERS = new Set(["Euler a", "LCM"]);
  const walkSamplerNote = document.getElementById("walk-sampler-note");
  function showWalkSamplerNote() {
    walkSamplerNote.hidden = ui.mode !== "walk" || !NOISY_SAMPLERS.has(room.field("sampler").value);
  }
  room.field("sampler").addEventListener("change", showWalkSamplerNote);
  room.field("model").addEventListener("change", showWalkSamplerNote);

  function setMode(mode) {
    ui.mode = mode;
    el.composer.elements.mode.value = mode;
    el.source.hidden = !SOURCE_MODES.has(mode);
    el.walk.hidden = mode !== "walk";
    // A variation varies an image of the party (it needs its seed); uploads have none.
    el.sourceUpload.hidden = mode === "variation";
    if (mode === "variation" && ui.source && ui.source.kind !== "image") setSource(null);
    room.field("strength").placeholder = DEFAULT_STRENGTH[mode] ?? "";
    room.field("strength").value = "";
    showSource();
    showWalkSamplerNote();
    room.renderComposerMode(); // a sweep draws from text alone (party-sweeps.js)
  }

  function useImage(image, render) {
    if (ui.mode === "walk") return walkFrom(image, render);
    setSource({ kind: "image", id: image.id, url: image.url, width: image.width, height: image.height });
    if (!SOURCE_MODES.has(ui.mode)) setMode("img2img");
    const prompt = state.prompts.get(render.prompt);
    if (prompt && !el.text.value.trim()) el.text.value = prompt.text;
    room.countTokensSoon();
    el.composer.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  /* "Use" in walk mode: the walk starts at that image. Its prompt, seed and parameters go into
   * the composer, so the walk's first frame is that very image and the server files the walk
   * under its prompt in the tree (Prompt.source_for). Only an image rendered from text alone
   * can be made again from its prompt and seed. */
  const walkFromNote = document.getElementById("walk-from");
  const walkFromDefault = walkFromNote.textContent;
  function walkFrom(image, render) {
    const p = render.params || {};
    if ((p.mode || "txt2img") !== "txt2img") {
      const made = MODE_NAMES[p.mode] === "walk" ? "a walk's frame" : MODE_NAMES[p.mode];
      room.showToast({ code: "invalid_param", message: `A walk starts at an image made from its prompt alone; this one is ${made}. Use it to redraw or vary instead.` });
      return;
    }
    const prompt = state.prompts.get(render.prompt);
    if (prompt) el.text.value = prompt.text;
    const model = room.field("model");
    if (model.value !== p.model) {
      model.value = p.model;
      model.dispatchEvent(new Event("change")); // that model's samplers and limits
    }
    const values = { ...p, seed: image.seed };
    for (const name of ["sampler", "width", "height", "steps", "guidance", "seed", "negative"]) {
      if (values[name] === undefined || values[name] === null) continue;
      room.field(name).value = values[name];
      ui.touched.add(name);
    }
    showWalkSamplerNote();
    walkFromNote.textContent = `Starts at the image you picked (seed ${image.seed}): its prompt and parameters are in the composer.`;
    room.countTokensSoon();
    el.composer.scrollIntoView({ behavior: "smooth", block: "start" });
  }
  // Typing another prompt starts the walk elsewhere: the note no longer holds.
  el.text.addEventListener("input", () => (walkFromNote.textContent = walkFromDefault));

  function setSource(source) {
    ui.source = source;
    showSource();
  }

  function showSource() {
    const source = ui.source;
    el.sourceEmpty.hidden = !!source;
    el.sourceFrame.hidden = !source;
    const painting = !!source && ui.mode === "inpaint";
    el.maskCanvas.hidden = !painting;
    el.maskClear.hidden = !painting;
    el.maskHint.hidden = !painting;
    if (!source) return;
    if (el.sourceImg.getAttribute("src") !== source.url) {
      el.sourceImg.src = source.url;
      // The mask is painted at the source's own size, whatever size it is shown at.
      el.maskCanvas.width = source.width;
      el.maskCanvas.height = source.height;
      clearMask();
    }
  }

  // A picture is fitted to the chosen model as it is uploaded, padded or cropped as chosen, and
  // what was done is shown ("Fitted 300×200 → 256×176 by …"): the model takes only some sizes.
  const fitted = document.getElementById("source-fitted");
  el.sourceFile.addEventListener("change", async () => {
    const file = el.sourceFile.files[0];
    if (!file) return;
    fitted.hidden = true;
    try {
      const fit = { fit: document.getElementById("source-fit").value, model: room.field("model").value };
      const upload = await uploadImage(file, "image.png", fit);
      setSource({ kind: "upload", id: upload.upload, url: upload.url, width: upload.width, height: upload.height });
      fitted.textContent = upload.fit ? upload.fit.message : "";
      fitted.dataset.url = upload.url;
      fitted.hidden = !upload.fit;
    } catch (error) {
      room.showToast({ code: error.code, message: error.message });
    } finally {
      el.sourceFile.value = "";
    }
  });
  // The note is about that upload: another source ("Use" on an image) takes it away.
  el.sourceImg.addEventListener("load", () => {
    if (el.sourceImg.getAttribute("src") !== fitted.dataset.url) fitted.hidden = true;
  });

  async function uploadImage(blob, name = "image.png", fields = {}) {
    const form = new FormData();
    form.append("image", blob, blob.name || name);
    for (const [key, value] of Object.entries(fields)) if (value) form.append(key, value);
    const response = await fetch(`/api/parties/${state.code}/uploads`, {
      method: "POST",
      body: form,
      credentials: "same-origin",
      headers: { "X-CSRFToken": PH.cookie("csrftoken"), Accept: "application/json" },
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data && data.error) || { code: "http_" + response.status, message: response.statusText };
      throw Object.assign(new Error(error.message), { code: error.code });
    }
    return data;
  }

  // Painting: white strokes on a transparent canvas over the image; sent as white on black.
  function clearMask() {
    el.maskCanvas.getContext("2d").clearRect(0, 0, el.maskCanvas.width, el.maskCanvas.height);
    ui.maskPainted = false;
  }

  function paintAt(pointer) {
    const canvas = el.maskCanvas;
    const box = canvas.getBoundingClientRect();
    const x = ((pointer.clientX - box.left) / box.width) * canvas.width;
    const y = ((pointer.clientY - box.top) / box.height) * canvas.height;
    const context = canvas.getContext("2d");
    context.fillStyle = "rgba(255, 255, 255, 1)";
    context.beginPath();
    context.arc(x, y, Math.max(canvas.width, canvas.height) / 16, 0, 2 * Math.PI);
    context.fill();
    ui.maskPainted = true;
  }

  el.maskCanvas.addEventListener("pointerdown", (pointer) => {
    el.maskCanvas.setPointerCapture(pointer.pointerId);
    paintAt(pointer);
  });
  el.maskCanvas.addEventListener("pointermove", (pointer) => {
    if (pointer.buttons) paintAt(pointer);
  });
  el.maskClear.addEventListener("click", clearMask);

  function maskBlob() {
    const mask = document.createElement("canvas");
    mask.width = el.maskCanvas.width;
    mask.height = el.maskCanvas.height;
    const context = mask.getContext("2d");
    context.fillStyle = "#000";
    context.fillRect(0, 0, mask.width, mask.height);
    context.drawImage(el.maskCanvas, 0, 0);
    return new Promise((resolve) => mask.toBlob(resolve, "image/png"));
  }

  /* The params of the chosen mode; uploads the painted mask first for a repaint. */
  async function modeParams() {
    const mode = ui.mode;
    if (mode === "txt2img") return {};
    const refuse = (message) => Promise.reject(Object.assign(new Error(message), { code: "invalid_param" }));
    const params = { mode };
    if (mode === "walk") {
      const walkTo = room.field("walk_to").value.trim();
      const walkSeed = room.field("walk_seed").value.trim();
      if (walkTo) params.walk_to = walkTo;
      if (walkSeed) params.walk_seed = Number(walkSeed);
      params.frames = Number(room.field("frames").value);
      return params;
    }
    if (!ui.source) return refuse("Pick a source image first: “Use” on an image, or upload one.");
    params[ui.source.kind === "image" ? "init_image" : "init_upload"] = ui.source.id;
    const strength = room.field("strength").value.trim();
    if (strength) params.strength = Number(strength);
    if (mode === "inpaint") {
      if (!ui.maskPainted) return refuse("Paint over the part of the image to repaint.");
      params.mask = (await uploadImage(await maskBlob(), "mask.png")).upload;
    }
    // With a source the size follows it, unless someone set it on purpose.
    for (const name of ["width", "height"]) if (!ui.touched.has(name)) delete params[name];
    return params;
  }

  Object.assign(room, { MODE_NAMES, useImage, modeParams });
})();
