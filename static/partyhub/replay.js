/* Replay: scrub through a party's archive. A slider and play/pause move through the timeline
 * entries (partyhub/timeline.py: {seq, at, type, who, text, images}); at position k the first k
 * entries show, with every image that had appeared by then and the latest one large.
 *
 * Stands alone: no server, no other script. The replay page and the export's index.html (opened
 * from file://) both use it:
 *
 *   <div data-replay="replay-data"></div>
 *   <script type="application/json" id="replay-data">{"entries": [...], "images": {"12": "images/r3-0.png"}}</script>
 *   <script src="replay.js"></script>
 *
 * mounts every `[data-replay]` element with the JSON in the script it names; or call
 * `PartyHubReplay.mount(element, {entries, images})` yourself. `images` maps image ids to URLs;
 * images it does not list are left out. mount() returns {seek(k), play(), pause(), position()}.
 *
 * An image joins the thumbnails at its first entry (its render's); a later entry about it (a
 * comment, a mention, a reaction) brings it back onto the stage. Chat lines and comments (entries
 * with `said`) read as conversation: the name isolated in <bdi>, the words in their writer's own
 * direction (dir="auto"), a hidden message's as a muted "(hidden)".
 *
 * A sweep reads as one: timeline.py gives it one entry ("Ann swept “a chair” across 3 artists ×
 * 2 seeds") and names the cell in each of its renders' entries; those entries carry `sweep`, and
 * are marked with the sweep's bar (data-sweep) so the eye finds them among the others.
 */
(function () {
  "use strict";

  const STEP_MS = 700; // one entry per step while playing
  const STYLE_ID = "partyhub-replay-style";
  // Defaults only (:where() has no specificity): the page's own stylesheet wins wherever it says more.
  const STYLE = `
:where(.replay) { display: grid; gap: 1rem; }
.replay [hidden] { display: none !important; }
:where(.replay-controls) { display: flex; align-items: center; gap: .8rem; }
:where(.replay-play) { flex: none; min-width: 5.5rem; }
.replay .replay-slider { flex: 1; min-width: 0; margin: 0; padding: 0; border: 0; background: none; accent-color: var(--accent, #8b5cf6); }
:where(.replay-position) { flex: none; font-variant-numeric: tabular-nums; opacity: .75; font-size: .9rem; }
:where(.replay-body) { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1rem; align-items: start; }
:where(.replay-stage) { margin: 0; display: grid; gap: .6rem; }
:where(.replay-latest) { display: flex; align-items: center; justify-content: center; min-height: 12rem;
  border: 1px solid rgb(128 128 128 / 30%); border-radius: 10px; padding: .5rem; }
:where(.replay-latest img) { display: block; width: min(100%, 32rem); max-height: 60vh; height: auto; object-fit: contain; border-radius: 6px; }
:where(.replay-latest p) { opacity: .7; margin: 0; }
:where(.replay-thumbs) { display: flex; flex-wrap: wrap; gap: .4rem; }
.replay .replay-thumb { padding: 0; border: 2px solid transparent; border-radius: 6px; background: none; cursor: pointer; line-height: 0; }
:where(.replay-thumb img) { display: block; width: 4rem; height: 4rem; object-fit: cover; border-radius: 4px; }
.replay .replay-thumb.latest { border-color: var(--accent, #8b5cf6); }
:where(.replay-entries) { list-style: none; margin: 0; padding: 0; max-height: 70vh; overflow: auto; position: relative;
  border: 1px solid rgb(128 128 128 / 30%); border-radius: 10px; }
:where(.replay-entry) { display: flex; gap: .7rem; padding: .35rem .7rem; cursor: pointer; overflow-wrap: anywhere; }
:where(.replay-entry + .replay-entry) { border-top: 1px solid rgb(128 128 128 / 15%); }
:where(.replay-entry time) { flex: none; min-width: 3.5rem; opacity: .65; font-variant-numeric: tabular-nums; }
:where(.replay-entry.current) { background: rgb(139 92 246 / 18%); }
:where(.replay-entry.has-images .replay-text)::after { content: " ◆"; color: var(--accent, #8b5cf6); }
:where(.replay-entry.replay-talk) { background: rgb(128 128 128 / 7%); }
:where(.replay-entry.replay-talk.current) { background: rgb(139 92 246 / 18%); }
:where(.replay-entry.replay-talk .replay-text)::after { content: none; }
:where(.replay-entry.replay-sweep) { box-shadow: inset 3px 0 0 rgb(139 92 246 / 55%); }
:where(.replay-who) { font-weight: 600; }
:where(.replay-about) { opacity: .7; }
:where(.replay-said) { white-space: pre-wrap; }
:where(.replay-said.hidden) { font-style: italic; opacity: .6; }
@media (max-width: 48rem) { :where(.replay-body) { grid-template-columns: minmax(0, 1fr); } }
`;

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function addStyle() {
    if (document.getElementById(STYLE_ID)) return;
    document.head.append(h("style", { id: STYLE_ID }, STYLE));
  }

  /* "+1:05", "+1:02:03": how long after `start` (ms) a time is; "" if either is unreadable. */
  function since(start, at) {
    const ms = Date.parse(at) - start;
    if (!Number.isFinite(ms)) return "";
    const total = Math.max(0, Math.round(ms / 1000));
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const seconds = String(total % 60).padStart(2, "0");
    return hours ? `+${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `+${minutes}:${seconds}`;
  }

  /* A chat line or a comment: timeline.py gives it `said` (null once hidden). */
  function isTalk(entry) {
    return Object.prototype.hasOwnProperty.call(entry, "said");
  }

  /* "Ann on image 12: the light!" as name, what it is about, and the words. `text` is
   * `${who}${about}: ${said}`; anything else (an older timeline) shows as the plain line. */
  function talkText(entry) {
    const said = entry.said === null ? "(hidden)" : String(entry.said);
    const who = String(entry.who || "");
    const text = String(entry.text);
    const tail = `: ${said}`;
    if (!who || !text.startsWith(who) || !text.endsWith(tail) || text.length < who.length + tail.length) {
      return h("span", { class: "replay-text" }, text);
    }
    return h(
      "span",
      { class: "replay-text" },
      h("bdi", { class: "replay-who" }, who),
      h("span", { class: "replay-about" }, text.slice(who.length, text.length - tail.length)),
      ": ",
      entry.said === null
        ? h("span", { class: "replay-said hidden" }, said)
        : h("bdi", { class: "replay-said", dir: "auto" }, said),
    );
  }

  function mount(root, data) {
    addStyle();
    const entries = Array.isArray(data && data.entries) ? data.entries : [];
    const urls = (data && data.images) || {};
    const start = entries.length ? Date.parse(entries[0].at) : NaN;
    let position = entries.length; // the whole party, until someone scrubs
    let timer = null;

    const urlOf = (id) => urls[id] || urls[String(id)];
    // Every entry that shows images: [{id, url, index}] in order, index = the entry's. An image's
    // first is where it appeared (its thumbnail); later ones only bring it back onto the stage.
    const shownAt = [];
    const appeared = [];
    const firstIndex = new Map();
    entries.forEach((entry, index) => {
      for (const id of entry.images || []) {
        const url = urlOf(id);
        if (!url) continue;
        const image = { id, url, index };
        shownAt.push(image);
        if (!firstIndex.has(String(id))) {
          firstIndex.set(String(id), index);
          appeared.push(image);
        }
      }
    });

    const play = h("button", { type: "button", class: "replay-play", onclick: () => (timer ? pause() : playFrom()) }, "▶ Play");
    const slider = h("input", {
      type: "range",
      class: "replay-slider",
      min: 0,
      max: entries.length,
      step: 1,
      value: position,
      "aria-label": "Position in the party",
      oninput: () => {
        pause();
        seek(Number(slider.value));
      },
    });
    const label = h("output", { class: "replay-position", "aria-live": "polite" });
    const latest = h("div", { class: "replay-latest" });
    const caption = h("figcaption", { class: "replay-caption" });
    const thumbs = h("div", { class: "replay-thumbs" });
    const items = entries.map((entry, index) =>
      h(
        "li",
        {
          class:
            "replay-entry" +
            (entry.images && entry.images.length ? " has-images" : "") +
            (isTalk(entry) ? " replay-talk" : "") +
            (entry.sweep != null ? " replay-sweep" : ""),
          dataset: { seq: entry.seq, type: entry.type, index, ...(entry.sweep != null ? { sweep: entry.sweep } : {}) },
          title: [entry.who, entry.at].filter(Boolean).join(" · "),
          onclick: () => {
            pause();
            seek(index + 1);
          },
        },
        h("time", { datetime: entry.at }, since(start, entry.at)),
        isTalk(entry) ? talkText(entry) : h("span", { class: "replay-text" }, entry.text),
      ),
    );
    const list = h("ol", { class: "replay-entries", "aria-label": "What happened" }, items);

    root.replaceChildren(
      h(
        "div",
        { class: "replay" },
        h("div", { class: "replay-controls" }, play, slider, label),
        h("div", { class: "replay-body" }, h("figure", { class: "replay-stage" }, latest, caption, thumbs), list),
      ),
    );

    function seek(k) {
      position = Math.max(0, Math.min(entries.length, Math.round(k) || 0));
      slider.value = String(position);
      root.dataset.position = String(position);
      items.forEach((item, index) => {
        item.hidden = index >= position;
        item.classList.toggle("current", index === position - 1);
      });
      const current = items[position - 1];
      if (current) list.scrollTop = current.offsetTop - list.clientHeight / 2 + current.offsetHeight / 2;
      const when = position ? since(start, entries[position - 1].at) : "+0:00";
      label.textContent = `${position} / ${entries.length} · ${when}`;
      drawImages(
        appeared.filter((image) => image.index < position),
        shownAt.filter((image) => image.index < position).pop(),
      );
    }

    /* The images that had appeared by now, newest first; `newest` (the last shown) large. */
    function drawImages(shown, newest) {
      if (!newest) {
        latest.replaceChildren(h("p", {}, "No images yet at this point."));
        caption.textContent = "";
      } else {
        const entry = entries[newest.index];
        // Described by the entry it appeared with (its render's), not a comment's words.
        const alt = entries[firstIndex.get(String(newest.id))].text;
        latest.replaceChildren(h("img", { src: newest.url, alt, dataset: { image: newest.id } }));
        caption.textContent = `${since(start, entry.at)} · ${entry.text}`;
      }
      thumbs.replaceChildren(
        ...shown
          .slice()
          .reverse()
          .map((image) =>
            h(
              "button",
              {
                type: "button",
                class: "replay-thumb" + (newest && String(image.id) === String(newest.id) ? " latest" : ""),
                dataset: { image: image.id },
                title: `Go to when it appeared (${since(start, entries[image.index].at)})`,
                onclick: () => {
                  pause();
                  seek(image.index + 1);
                },
              },
              h("img", { src: image.url, alt: "", loading: "lazy" }),
            ),
          ),
      );
    }

    function playFrom() {
      if (!entries.length) return;
      if (position >= entries.length) seek(0);
      play.textContent = "❚❚ Pause";
      root.dataset.playing = "true";
      timer = setInterval(() => {
        seek(position + 1);
        if (position >= entries.length) pause();
      }, STEP_MS);
    }

    function pause() {
      if (timer) clearInterval(timer);
      timer = null;
      play.textContent = "▶ Play";
      delete root.dataset.playing;
    }

    seek(position);
    return { seek, play: playFrom, pause, position: () => position };
  }

  function mountAll() {
    for (const root of document.querySelectorAll("[data-replay]")) {
      const source = document.getElementById(root.dataset.replay);
      if (!source || root.dataset.mounted) continue;
      root.dataset.mounted = "true";
      mount(root, JSON.parse(source.textContent));
    }
  }

  window.PartyHubReplay = { mount };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
