/* Home page: start a party (POST /api/parties) or go to one by its join code. */
(function () {
  "use strict";
  const { api } = window.PartyHub;

  const startForm = document.getElementById("start-form");
  const joinForm = document.getElementById("join-form");

  function showError(form, message) {
    const box = form.querySelector(".form-error");
    box.textContent = message;
    box.hidden = !message;
  }

  startForm.addEventListener("submit", async (submit) => {
    submit.preventDefault();
    const data = new FormData(startForm);
    const body = {
      topic: data.get("topic").trim(),
      name: data.get("name").trim(),
      public: data.has("public"),
      steered: data.has("steered"),
    };
    const title = data.get("title").trim();
    if (title) body.title = title;
    const button = startForm.querySelector("button[type=submit]");
    button.disabled = true;
    showError(startForm, "");
    try {
      const party = await api("POST", "/api/parties", body);
      location.assign(`/p/${party.code}/`);
    } catch (error) {
      showError(startForm, error.message);
      button.disabled = false;
    }
  });

  const codeInput = joinForm.elements.code;
  // Codes are shown in capitals on the projector; people type them any way they like.
  codeInput.addEventListener("input", () => {
    codeInput.value = codeInput.value.toUpperCase().replace(/[^A-Z0-9]/g, "");
  });

  joinForm.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const code = codeInput.value.trim().toUpperCase();
    if (code.length === 6) location.assign(`/p/${encodeURIComponent(code)}/`);
  });
})();
