/* The Prompt Master's Publish / Unpublish button in the room's top bar: puts the party's
 * read-only public gallery up at /g/<code>/ or takes it down (POST /api/parties/<code>/publish).
 * The server decides; the button shows what it answered. Needs live.js (PartyHub.api). */
(function () {
  "use strict";

  const button = document.getElementById("publish-toggle");
  const link = document.getElementById("gallery-link");
  if (!button || !window.PartyHub) return;

  function show(published) {
    button.dataset.published = String(published);
    button.textContent = published ? "Unpublish" : "Publish";
    button.setAttribute("aria-pressed", String(published));
    if (link) link.hidden = !published;
  }

  button.addEventListener("click", async () => {
    const published = button.dataset.published !== "true";
    if (!published && !window.confirm("Take the public gallery down? Its link will stop working.")) return;
    button.disabled = true;
    try {
      const answer = await window.PartyHub.api("POST", `/api/parties/${button.dataset.code}/publish`, { published });
      show(answer.published);
      if (answer.published && link) link.href = answer.url;
    } catch (error) {
      window.alert(`Could not ${published ? "publish" : "unpublish"}: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });

  show(button.dataset.published === "true");
})();
