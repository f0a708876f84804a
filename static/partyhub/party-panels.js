/* The party room's side panels (after party-room.js): the people, their roles and who is online,
 * the prompt tree, the proposals of a steered party, the associations and the palette. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const room = PH.room;
  if (!room) return; // the join form's page: party-room.js set no room up
  const { h } = PH;
  const { state, el } = room;

  // --- People ---------------------------------------------------------------------------------

  /* Everyone not removed, in the order they came, each with a dot: green while they have the
   * room open (presence, from the server), hollow while they are away. */
  function renderMembers() {
    const acting = room.mayAct();
    const iAmMaster = acting && state.me.role === "prompt_master";
    const iModerate = acting && (state.me.role === "prompt_master" || state.me.role === "facilitator");
    const members = [...state.members.values()].filter((member) => !member.removed);
    const online = members.filter((member) => state.online.has(member.id)).length;
    el.onlineCount.textContent = members.length ? `· ${online} of ${members.length} here` : "";
    renderPeopleSummary(members);
    el.members.replaceChildren(
      ...members.map((member) => {
        const isMe = state.me && member.id === state.me.id;
        const here = state.online.has(member.id);
        const moderated = iModerate && !isMe && member.role !== "prompt_master";
        return h(
          "li",
          { class: "member" + (here ? " online" : " away"), dataset: { member: member.id, online: String(here) } },
          h(
            "span",
            { class: "member-name" },
            h("span", { class: "presence-dot", title: here ? "here now" : "away", "aria-hidden": "true" }),
            member.name,
            h("span", { class: "visually-hidden" }, here ? " (here now)" : " (away)"),
            isMe ? h("span", { class: "hint" }, " (you)") : null,
            member.muted ? h("span", { class: "badge muted" }, "muted") : null,
          ),
          iAmMaster && !isMe ? roleSelect(member) : h("span", { class: "role role-" + member.role }, PH.ROLE_TITLES[member.role] || member.role),
          moderated ? moderationButtons(member) : null,
        );
      }),
    );
  }

  /* The one line a narrow screen shows while the list is folded: who is here first, then who is
   * away, each with their dot; the CSS cuts it with an ellipsis when the names do not fit. */
  function renderPeopleSummary(members) {
    const here = members.filter((member) => state.online.has(member.id));
    const away = members.filter((member) => !state.online.has(member.id));
    const name = (member, where) =>
      h(
        "span",
        { class: where },
        h("span", { class: "presence-dot", "aria-hidden": "true" }),
        member.name,
        h("span", { class: "visually-hidden" }, where === "here" ? " (here now); " : " (away); "),
      );
    el.peopleSummary.replaceChildren(...here.map((member) => name(member, "here")), ...away.map((member) => name(member, "away")));
  }

  el.peopleToggle.addEventListener("click", () => {
    const open = el.people.classList.toggle("open");
    el.peopleToggle.setAttribute("aria-expanded", String(open));
    el.peopleToggle.textContent = open ? "hide" : "show all";
  });

  /* A facilitator's (and the Prompt Master's) controls: the server refuses them to anyone else. */
  function moderationButtons(member) {
    const mute = h("button", { type: "button", class: "small" }, member.muted ? "Unmute" : "Mute");
    mute.addEventListener("click", () => room.live.send({ type: "member.mute", member: member.id, muted: !member.muted }));
    const remove = h("button", { type: "button", class: "small danger" }, "Remove");
    remove.addEventListener("click", () => {
      if (confirm(`Remove ${member.name} from the party?`)) room.live.send({ type: "member.remove", member: member.id });
    });
    return h("span", { class: "member-actions" }, mute, remove);
  }

  /* A muted member watches and votes; a removed one only watches what was there when they left
   * (their socket is closed). The composer and the association form say why they wait, and who
   * did it when the event said so, whoever it was (a facilitator or the Prompt Master). */
  function renderMyLimits() {
    const me = state.me;
    const removed = !!(me && me.removed);
    const muted = !!(me && me.muted) && !removed;
    for (const form of [el.composer, el.associationForm]) {
      for (const control of form.querySelectorAll("button[type=submit], textarea, input[type=text], input:not([type])")) {
        control.disabled = muted || removed;
      }
    }
    room.updateSubmit(); // over the character limit keeps Render disabled too
    // Who did it, when an event of this visit said so ("Fay removed you"); else "You were removed".
    const who = state.moderatedBy[removed ? "removed" : "muted"];
    const did = (verb, what) => (who ? `${PH.memberName(state, who)} ${verb} you${what}` : `You were ${verb}${what}`);
    el.composer.classList.toggle("locked", muted || removed);
    el.mutedNote.hidden = !(muted || removed);
    el.mutedNote.classList.toggle("removed", removed);
    el.mutedNote.textContent = removed
      ? did("removed", " from this party") + ": you can no longer write prompts, vote or add associations."
      : did("muted", "") + ": you can watch and vote, not add prompts or associations.";
  }

  function roleSelect(member) {
    const select = h(
      "select",
      { class: "role-select", "aria-label": "Role of " + member.name },
      Object.entries(PH.ROLE_TITLES).map(([role, title]) =>
        h("option", { value: role, selected: role === member.role }, role === "prompt_master" ? title + " (hand over)" : title),
      ),
    );
    select.addEventListener("change", () => {
      const role = select.value;
      select.value = member.role; // the role.changed event, not this select, is the truth
      if (role === "prompt_master" && !confirm(`Hand the Prompt Master role to ${member.name}?`)) return;
      room.live.send({ type: "role.set", member: member.id, role });
    });
    return select;
  }

  // --- Prompt tree ----------------------------------------------------------------------------

  /* The server draws the tree (partyhub/tree.py) so the room, the gallery and the export show
   * the same one; redrawn at most every half second while prompts and renders pour in. */
  let treeTimer = null;
  let treeFetching = false;
  // The sweeps whose groups show their cells; every other group is folded to its one row.
  const openSweeps = new Set();

  function renderTree() {
    el.treeEmpty.hidden = state.prompts.size > 0;
    if (!state.prompts.size) return el.tree.replaceChildren();
    if (!treeTimer) treeTimer = setTimeout(fetchTree, 500);
  }

  async function fetchTree() {
    if (treeFetching) return (treeTimer = setTimeout(fetchTree, 500));
    treeTimer = null;
    treeFetching = true;
    try {
      // Drawn at the panel's width, so its text is not scaled down.
      const width = Math.max(200, Math.min(2000, Math.round(el.tree.clientWidth) || 360));
      const response = await fetch(`/api/parties/${state.code}/tree.svg?width=${width}`, { credentials: "same-origin" });
      if (response.ok) {
        // The server escapes every prompt; parsed as SVG, never as HTML.
        const svg = new DOMParser().parseFromString(await response.text(), "image/svg+xml").documentElement;
        svg.removeAttribute("width");
        svg.removeAttribute("height");
        svg.classList.add("pt-clickable");
        const tree = document.importNode(svg, true);
        foldSweeps(tree);
        el.tree.replaceChildren(tree);
        room.decorateTree(); // each node's comments and reactions
      }
    } finally {
      treeFetching = false;
    }
  }

  /* tree.py draws every sweep's group open, its cells (and what hangs under them) in the rows
   * after it. Here a group is closed until it is clicked: the rows under a closed group are
   * hidden, the rows below move up by the room they took, and so do the ends of the lines. The
   * drawing's own places are kept (data-origin), so a group opens and closes without a fetch. */
  function foldSweeps(svg) {
    const rows = [...svg.querySelectorAll("g.pt-node[data-row]")];
    const edges = [...svg.querySelectorAll("path.pt-edge[data-to]")];
    const byRow = new Map(rows.map((row) => [row.dataset.row, row]));
    const parentOf = new Map(edges.map((edge) => [edge.dataset.to, edge.dataset.from]));
    const closed = (index) => {
      const sweep = byRow.get(index).dataset.sweep;
      return sweep !== undefined && !openSweeps.has(Number(sweep));
    };
    const folded = (index) => {
      for (let up = parentOf.get(index); up !== undefined; up = parentOf.get(up)) if (closed(up)) return true;
      return false;
    };
    const origin = (node, attribute) => {
      if (!node.dataset.origin) node.dataset.origin = node.getAttribute(attribute);
      return node.dataset.origin.match(/-?[\d.]+/g).map(Number);
    };
    const moved = new Map(); // row -> how far up it moved
    let gone = 0;
    let bottom = 0;
    rows.forEach((row, at) => {
      const [x, y] = origin(row, "transform");
      const hide = folded(row.dataset.row);
      row.style.display = hide ? "none" : "";
      if (hide) {
        const next = rows[at + 1];
        if (next) gone += origin(next, "transform")[1] - y;
        return;
      }
      moved.set(row.dataset.row, gone);
      row.setAttribute("transform", `translate(${x},${y - gone})`);
      bottom = y - gone + Number(row.querySelector("rect.pt-box").getAttribute("height"));
      if (row.dataset.sweep === undefined) return;
      const open = openSweeps.has(Number(row.dataset.sweep));
      row.querySelector(".pt-toggle").textContent = open ? "▾ " : "▸ ";
      row.setAttribute("role", "button");
      row.setAttribute("tabindex", "0");
      row.setAttribute("aria-expanded", String(open));
    });
    for (const edge of edges) {
      const hide = folded(edge.dataset.to);
      edge.style.display = hide ? "none" : "";
      if (hide) continue;
      const [elbow, from, to, x] = origin(edge, "d"); // tree.py's "M{elbow},{from} V{to} H{x}"
      edge.setAttribute("d", `M${elbow},${from - moved.get(edge.dataset.from)} V${to - moved.get(edge.dataset.to)} H${x}`);
    }
    // Its top as it is: party-threads.js's decorateTree makes room above the first node.
    const [left, top, width] = svg.getAttribute("viewBox").split(/\s+/).map(Number);
    svg.setAttribute("viewBox", `${left} ${top} ${width} ${bottom - top}`);
  }

  function toggleSweep(group) {
    const sweep = Number(group.dataset.sweep);
    if (!openSweeps.delete(sweep)) openSweeps.add(sweep);
    const svg = group.closest("svg");
    if (svg) foldSweeps(svg);
  }

  el.tree.addEventListener("click", (click) => {
    if (click.target.closest(".pt-talk")) return; // its 💬 opens its thread (party-threads.js)
    const group = click.target.closest("[data-sweep]");
    if (group) return toggleSweep(group);
    const node = click.target.closest("[data-prompt]");
    if (node) room.refine(Number(node.dataset.prompt));
  });

  el.tree.addEventListener("keydown", (key) => {
    const group = (key.key === "Enter" || key.key === " ") && key.target.closest("[data-sweep]");
    if (!group) return;
    key.preventDefault(); // a space would scroll the page
    toggleSweep(group);
  });

  // --- Proposals ------------------------------------------------------------------------------

  function renderProposals() {
    const waiting = [...state.prompts.values()].filter((p) => p.status === "proposed").sort((a, b) => a.id - b.id);
    const iAmMaster = !!state.me && state.me.role === "prompt_master";
    el.proposalsPanel.hidden = waiting.length === 0;
    // Only the one who decides gets them above the renders on a narrow screen (app.css).
    el.proposalsPanel.classList.toggle("deciding", iAmMaster);
    el.proposals.replaceChildren(
      ...waiting.map((prompt) => {
        const parent = state.prompts.get(prompt.parent);
        return h(
          "li",
          { class: "proposal", dataset: { prompt: prompt.id } },
          room.clamped("p", "proposal-text", prompt.text),
          h(
            "p",
            { class: "hint" },
            "by " + PH.memberName(state, prompt.author) + (parent ? " · refines “" + parent.text + "”" : ""),
          ),
          iAmMaster
            ? h(
                "div",
                { class: "proposal-actions" },
                h("button", { type: "button", class: "small primary", onclick: () => room.live.send({ type: "proposal.accept", prompt: prompt.id }) }, "Accept and render"),
                h("button", { type: "button", class: "small", onclick: () => room.live.send({ type: "proposal.set_aside", prompt: prompt.id }) }, "Set aside"),
              )
            : null,
        );
      }),
    );
    room.fitClamps(el.proposals);
  }

  // --- Associations ---------------------------------------------------------------------------

  /* One word per distinct text (without case); its count is how many people said it. */
  function renderAssociations() {
    const words = new Map();
    for (const association of state.associations.values()) {
      const key = association.text.toLowerCase();
      const word = words.get(key) || { text: association.text, authors: [] };
      word.authors.push(PH.memberName(state, association.author));
      words.set(key, word);
    }
    const ranked = [...words.values()].sort((a, b) => b.authors.length - a.authors.length || a.text.localeCompare(b.text));
    const most = ranked.length ? ranked[0].authors.length : 1;
    el.associations.replaceChildren(
      ...ranked.map((word) =>
        h(
          "button",
          {
            type: "button",
            class: "word",
            style: `font-size: ${(0.85 + (1.2 * (word.authors.length - 1)) / Math.max(most - 1, 1)).toFixed(2)}rem`,
            title: "Said by " + word.authors.join(", ") + " · click to add to your prompt",
            dataset: { count: word.authors.length },
            onclick: () => appendToPrompt(word.text),
          },
          word.text,
          h("span", { class: "word-count" }, String(word.authors.length)),
        ),
      ),
    );
  }

  // --- Palette --------------------------------------------------------------------------------

  function renderPalette() {
    const kinds = new Map();
    for (const entry of state.palette) {
      if (!kinds.has(entry.kind)) kinds.set(entry.kind, []);
      kinds.get(entry.kind).push(entry);
    }
    el.palette.replaceChildren(
      ...[...kinds].map(([kind, entries]) =>
        h(
          "div",
          { class: "palette-kind" },
          h("p", { class: "eyebrow" }, kind),
          h(
            "div",
            { class: "chips" },
            entries.map((entry) =>
              h("button", { type: "button", class: "chip" + (entry.builtin ? "" : " own"), title: "Add to your prompt", onclick: () => appendToPrompt(entry.text) }, entry.text),
            ),
          ),
        ),
      ),
    );
    el.paletteForm.hidden = !(state.me && state.me.role === "prompt_master");
  }

  el.paletteForm.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const form = el.paletteForm.elements;
    const text = form.text.value.trim();
    if (text && room.live.send({ type: "palette.add", kind: form.kind.value, text })) form.text.value = "";
  });

  function appendToPrompt(text) {
    const current = el.text.value.trim();
    el.text.value = current ? `${current}, ${text}` : text;
    el.text.focus();
    room.countTokensSoon(); // a click can take the prompt past the model's limit: say so at once
  }

  el.associationForm.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const input = el.associationForm.elements.text;
    const text = input.value.trim();
    if (text && room.live.send({ type: "association.add", text })) input.value = "";
  });

  Object.assign(room, { renderMembers, renderMyLimits, renderTree, renderProposals, renderAssociations, renderPalette });
})();
