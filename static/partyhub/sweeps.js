/* Sweeps, for the room and the stage (load it after live.js): one prompt drawn across styles,
 * artists, techniques, periods or modifiers of the palette, or across seeds, guidance or steps,
 * as a grid whose every cell is a prompt of its own with its own render (partyhub/models/sweep.py).
 * Here: which sweep a render is a cell of, the grid's labels and cells, and the grid drawn large
 * and read-only for the stage. The room's grid card and the composer's sweep are in
 * party-sweeps.js. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const { h } = PH;

  // The palette's kinds (a value is words added to the prompt); the other axes are parameters.
  // partyhub/models/sweep.py's, carried by the page ({% sweep_rules %}).
  const RULES = JSON.parse(document.getElementById("sweep-rules").textContent);
  const TEXT_AXES = new Set(RULES.text_axes);
  const ACTIVE = new Set(["queued", "running"]);

  /* The sweep a render is a cell of, or null. */
  function sweepOf(state, render) {
    const prompt = render && state.prompts.get(render.prompt);
    return (prompt && prompt.sweep != null && state.sweeps.get(prompt.sweep)) || null;
  }

  /* A value as the grid's header says it: a palette entry as it is written, a parameter with its
   * name ("seed 7", "steps 20"), which a bare number would not say. */
  function label(axis, value) {
    return TEXT_AXES.has(axis) ? String(value) : `${axis} ${value}`;
  }

  /* "artist × seed", or "style" for a sweep of one row. */
  function axesName(sweep) {
    return sweep.y ? `${sweep.x.axis} × ${sweep.y.axis}` : sweep.x.axis;
  }

  /* The grid: its column labels, and its rows, each with its label (null without a y axis) and
   * its cells in column order, each cell {x, y, label, prompt, render} (render: the cell's
   * newest, or null before render.queued). */
  function grid(state, sweep) {
    let renders = rendersByPrompt(state);
    // A snapshot loaded again replaces every render with one of the same id: index them anew.
    const stale = (cell) => renders.has(cell.prompt) && state.renders.get(renders.get(cell.prompt).id) !== renders.get(cell.prompt);
    if (sweep.cells.some(stale)) renders = rendersByPrompt(state, true);
    const columns = sweep.x.values.map((value) => label(sweep.x.axis, value));
    const rows = (sweep.y ? sweep.y.values : [null]).map((value, index) => ({
      y: sweep.y ? index : null,
      label: sweep.y ? label(sweep.y.axis, value) : null,
      cells: [],
    }));
    for (const cell of sweep.cells) {
      const row = rows[cell.y === null ? 0 : cell.y];
      if (!row) continue;
      row.cells[cell.x] = { x: cell.x, y: cell.y, label: columns[cell.x], prompt: cell.prompt, render: renders.get(cell.prompt) || null };
    }
    return { columns, rows, cells: rows.flatMap((row) => row.cells.filter(Boolean)) };
  }

  /* prompt id -> its newest render, made again only once an event or a snapshot came (a grid
   * card is placed by its score among every card, many times over in one redraw). */
  const indexes = new WeakMap(); // state -> {key, renders}
  function rendersByPrompt(state, anew = false) {
    const key = `${state.lastSeq}:${state.renders.size}`;
    const known = indexes.get(state);
    if (known && known.key === key && !anew) return known.renders;
    const renders = new Map();
    for (const render of state.renders.values()) {
      const newest = renders.get(render.prompt);
      if (!newest || render.id > newest.id) renders.set(render.prompt, render);
    }
    indexes.set(state, { key, renders });
    return renders;
  }

  /* How far the grid is: cells done, still to come, and in all. */
  function tally(cells) {
    const active = cells.filter((cell) => !cell.render || ACTIVE.has(cell.render.status)).length;
    const done = cells.filter((cell) => cell.render && cell.render.status === "done").length;
    return { done, active, total: cells.length };
  }

  /* The images of every cell, in the grid's order. */
  function images(state, cells) {
    return cells.flatMap((cell) => (cell.render ? cell.render.images : [])).map((id) => state.images.get(id)).filter(Boolean);
  }

  /* The sweep the stage shows, if what it would show is a cell of one: the render forming, else
   * the one whose image came last. */
  function onStage(state, forming) {
    if (forming) return sweepOf(state, forming);
    let newest = null;
    for (const id of state.images.keys()) if (newest === null || id > newest) newest = id;
    return newest === null ? null : sweepOf(state, state.renders.get(state.images.get(newest).render));
  }

  // --- The grid, large and read-only (the stage) -------------------------------------------------

  /* The columns of a sweep of one axis, laid out nearly square (6 values: 3 × 2, 8: 4 × 2)
   * rather than in one long row, so that each picture stays large; each cell then carries its
   * own label. */
  function flatColumns(count) {
    return Math.ceil(count / Math.ceil(count / 4));
  }

  /* Draw the sweep into `container`, a labelled grid that fills it. Built when the sweep first
   * shows (`shownKey`, what the container showed, differs); after that a cell changes only when
   * what it shows does, and a preview only swaps its picture, so progress frames never make the
   * projector blink. Returns the new key of what the container shows. */
  function drawBoard(container, state, sweep, shownKey) {
    const key = "sweep:" + sweep.id;
    const layout = grid(state, sweep);
    let board = container.querySelector(".sweep-board");
    if (shownKey !== key || !board) {
      const twoAxes = !!sweep.y;
      const columns = twoAxes ? layout.columns.length : flatColumns(layout.columns.length);
      const rows = twoAxes ? layout.rows.length : Math.ceil(layout.columns.length / columns);
      const heads = twoAxes
        ? [h("div", { class: "sweep-board-corner", "aria-hidden": "true" }), ...layout.columns.map((text) => h("div", { class: "sweep-board-head col" }, text))]
        : [];
      const body = layout.rows.flatMap((row) => [
        twoAxes ? h("div", { class: "sweep-board-head row" }, row.label) : null,
        ...row.cells.filter(Boolean).map((cell) =>
          h(
            "figure",
            { class: "sweep-board-cell", dataset: { prompt: cell.prompt, x: cell.x, y: cell.y === null ? "" : cell.y } },
            twoAxes ? null : h("figcaption", { class: "sweep-board-head" }, cell.label),
            h("div", { class: "sweep-board-picture" }),
          ),
        ),
      ]);
      board = h(
        "div",
        {
          class: "sweep-board" + (twoAxes ? "" : " flat"),
          style: `--cols: ${columns}; --rows: ${rows}`,
          dataset: { sweep: sweep.id },
          role: "img",
          "aria-label": `“${sweep.text}” across ${axesName(sweep)}`,
        },
        heads,
        body,
      );
      container.replaceChildren(board);
    }
    for (const cell of layout.cells) {
      const figure = board.querySelector(`.sweep-board-cell[data-prompt="${cell.prompt}"]`);
      if (figure) showCell(figure.querySelector(".sweep-board-picture"), state, cell);
    }
    return key;
  }

  function showCell(node, state, cell) {
    const render = cell.render;
    const progress = render && state.progress.get(render.id);
    const image = render && render.images.length ? state.images.get(render.images[0]) : null;
    let view;
    if (image) view = { key: "image:" + image.id, picture: image.url };
    else if (render && render.status === "running" && progress && progress.preview) view = { key: "preview:" + render.id, preview: progress.preview };
    else view = { key: "text:" + cellWords(render, progress) };
    node.dataset.state = image ? "done" : render ? render.status : "queued";
    if (node.dataset.key === view.key) {
      const img = node.querySelector("img.preview");
      if (view.preview && img && img.getAttribute("src") !== view.preview) img.src = view.preview;
      return;
    }
    node.dataset.key = view.key;
    if (view.picture) node.replaceChildren(h("img", { class: "sweep-board-img", src: view.picture, alt: cell.label, dataset: { image: image.id } }));
    else if (view.preview) node.replaceChildren(h("img", { class: "preview sweep-board-img", src: view.preview, alt: "" }));
    else node.replaceChildren(h("span", { class: "sweep-board-wait" }, view.key.slice(5)));
  }

  function cellWords(render, progress) {
    if (!render || render.status === "queued") return "waiting";
    if (render.status === "running") return progress ? `step ${progress.step} of ${progress.steps}` : "rendering";
    return render.status; // failed, cancelled, filtered
  }

  PH.sweeps = { TEXT_AXES, of: sweepOf, label, axesName, grid, tally, images, onStage, flatColumns, drawBoard };
})();
