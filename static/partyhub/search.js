/* The search box (templates/partyhub/_search.html): in the party room it searches the party's
 * images, on /search/ every published gallery's. The text box sends `q` (words of the prompt),
 * or `like` when "by meaning" is on; the toggle is off with a note when the server has no CLIP
 * model (data-clip, and the `clip` flag of every answer). Results are thumbnails with their
 * prompt, author and seed; in the galleries each links to its party's gallery /g/<code>/.
 * By meaning, only images over the CLIP model's cut-off are matches; the answer's `nearest`
 * (below it) are shown apart, dimmed and labelled "not close", never as matches. */
(function () {
  "use strict";
  const { h, api } = window.PartyHub;

  for (const box of document.querySelectorAll("[data-search-url]")) setUp(box);

  function setUp(box) {
    const form = box.querySelector(".search-form");
    const meaning = form.elements.meaning;
    const note = box.querySelector(".search-clip-note");
    const error = box.querySelector(".form-error");
    const count = box.querySelector(".search-count");
    const results = box.querySelector(".search-results");
    const nearBox = box.querySelector(".search-nearest");
    const nearest = box.querySelector(".search-nearest-results");
    const galleries = box.dataset.scope === "galleries";

    function showClip(clip) {
      meaning.disabled = !clip;
      if (!clip) meaning.checked = false;
      note.hidden = clip;
    }
    showClip(box.dataset.clip === "1");

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const params = new URLSearchParams();
      const text = form.elements.text.value.trim();
      if (text) params.set(meaning.checked ? "like" : "q", text);
      for (const name of ["author", "seed", "model"]) {
        const value = form.elements[name].value.trim();
        if (value) params.set(name, value);
      }
      error.hidden = true;
      box.setAttribute("aria-busy", "true");
      try {
        const data = await api("GET", `${box.dataset.searchUrl}?${params}`);
        showClip(data.clip);
        const near = data.nearest || [];
        results.replaceChildren(...data.results.map((image) => hit(image, false)));
        nearest.replaceChildren(...near.map((image) => hit(image, true)));
        nearBox.hidden = !near.length;
        const cutoff = params.has("like") && data.min_similarity != null;
        const unknown = (data.unknown_words || []).map((word) => `“${word}”`).join(", ");
        count.textContent = countText(data.results.length, params.has("like"), cutoff, near.length);
        if (unknown) count.textContent += ` The CLIP model does not know ${unknown}.`;
        count.hidden = false;
      } catch (err) {
        if (err.code === "search_unavailable") showClip(false);
        results.replaceChildren();
        nearest.replaceChildren();
        nearBox.hidden = true;
        count.hidden = true;
        error.textContent = err.message;
        error.hidden = false;
      } finally {
        box.removeAttribute("aria-busy");
      }
    });

    function hit(image, notClose) {
      const meta = [image.author, `seed ${image.seed}`, image.model];
      if (galleries) meta.unshift(image.party);
      if (image.votes) meta.push(`★ ${image.votes}`);
      if (notClose) meta.push("not close");
      if (image.score !== null) meta.push(`similarity ${image.score.toFixed(2)}`);
      const classes = ["search-hit", image.picked && "picked", notClose && "not-close"];
      return h(
        "figure",
        { class: classes.filter(Boolean).join(" "), dataset: { image: image.id } },
        h(
          "a",
          galleries ? { href: `/g/${image.party}/` } : { href: image.url, target: "_blank", rel: "noopener" },
          h("img", { src: image.url, alt: image.prompt, loading: "lazy", width: image.width, height: image.height }),
        ),
        h("figcaption", null, h("q", { class: "search-prompt" }, image.prompt), h("span", { class: "card-meta" }, meta.join(" · "))),
      );
    }
  }

  function countText(n, byMeaning, cutoff, nearest) {
    if (cutoff) {
      if (n) return n === 1 ? "1 close match." : `${n} close matches, the closest first.`;
      return nearest ? "No close matches." : "Nothing found.";
    }
    if (!n) return "Nothing found.";
    const images = n === 1 ? "1 image" : `${n} images`;
    return byMeaning ? `${images}, the most alike first.` : `${images}, the newest first.`;
  }
})();
