/* Watching a stream: new images arrive at the top, live, for everyone; nothing is sent back.
 * A reconnect asks for the images after the newest one shown, so none is missed or repeated. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const { h } = PH;
  const root = document.getElementById("stream");
  const grid = document.getElementById("stream-images");
  const empty = document.getElementById("stream-empty");
  const viewers = document.getElementById("viewers");
  const connection = document.getElementById("connection");
  const MAX_SHOWN = 200; // a wall left on all night keeps a bounded page

  document.getElementById("fullscreen").addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else root.requestFullscreen();
  });

  const form = document.getElementById("submit-form");
  if (form) {
    form.addEventListener("submit", async (submit) => {
      submit.preventDefault();
      const status = document.getElementById("submit-status");
      const input = form.elements.text;
      try {
        const answer = await PH.api("POST", `/api/streams/${root.dataset.slug}/prompts`, { text: input.value });
        input.value = "";
        status.textContent = answer.position ? `Queued: ${answer.position} ahead of yours.` : "Rendering next.";
      } catch (error) {
        status.textContent = error.message;
      }
    });
  }

  // Staff hide an image for every viewer; the socket's stream.hidden removes it here too.
  grid.addEventListener("click", async (click) => {
    const button = click.target.closest(".hide-image");
    if (!button) return;
    const id = button.closest("[data-image]").dataset.image;
    try {
      await PH.api("POST", `/api/streams/${root.dataset.slug}/images/${id}/hide`, {});
    } catch (error) {
      alert(error.message);
    }
  });

  if (root.dataset.live !== "1") {
    PH.showConnection(connection, "closed", "history");
    return;
  }

  function newestShown() {
    const first = grid.querySelector("[data-image]");
    return first ? Number(first.dataset.image) : null;
  }

  function show(image) {
    if (grid.querySelector(`[data-image="${image.id}"]`)) return;
    grid.prepend(
      h(
        "figure",
        { class: "stream-shot", dataset: { image: image.id } },
        h("img", { src: image.url, alt: image.prompt }),
        h(
          "figcaption",
          {},
          h("span", { class: "stream-prompt" }, image.prompt),
          " ",
          h("span", { class: "stream-author" }, byline(image)),
          root.dataset.staff === "1" ? [" ", h("button", { type: "button", class: "small hide-image" }, "Hide")] : null,
        ),
      ),
    );
    empty.hidden = true;
    while (grid.children.length > MAX_SHOWN) grid.lastElementChild.remove();
  }

  /* As the page's own template writes it: the autopilot's member is named "autopilot", so its
   * images read "by autopilot" once, whatever the name. */
  function byline(image) {
    return image.autopilot ? "by autopilot" : "by " + image.author;
  }

  let delay = 1;
  function connect() {
    const since = newestShown();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = since === null ? "" : `?since=${since}`;
    const socket = new WebSocket(`${scheme}://${location.host}/ws/streams/${root.dataset.slug}/${query}`);
    PH.showConnection(connection, "connecting");
    socket.onopen = () => {
      delay = 1;
      PH.showConnection(connection, "live");
    };
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.type === "stream.image") show(frame.image);
      else if (frame.type === "stream.hidden") {
        const shot = grid.querySelector(`[data-image="${frame.image}"]`);
        if (shot) shot.remove();
      }
      else if (frame.type === "stream.viewers") viewers.textContent = `${frame.count} watching`;
    };
    socket.onclose = (close) => {
      if (close.code === 4404) return PH.showConnection(connection, "closed", "no such stream");
      PH.showConnection(connection, "reconnecting", delay);
      setTimeout(connect, delay * 1000);
      delay = Math.min(delay * 2, 30);
    };
  }
  connect();
})();
