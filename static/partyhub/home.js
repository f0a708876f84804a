/* Home page: start a party (POST /api/parties) or go to one by its join code. The join form is
 * also on the page for a code no party has (partyhub/no_party.html), which has no start form. */
(function () {
  "use strict";
  const { api, oneLineNotice } = window.PartyHub;

  // The offline model's notice folds to one line, as in the room; dismissed there, gone here too.
  const notice = document.getElementById("model-notice");
  if (notice) {
    notice.classList.add("notice-line");
    oneLineNotice(notice, "partyhub:notice-dismissed:" + notice.dataset.model, notice.dataset.title, notice.dataset.note);
  }

  const startForm = document.getElementById("start-form");
  const joinForm = document.getElementById("join-form");

  function showError(form, message) {
    const box = form.querySelector(".form-error");
    box.textContent = message;
    box.hidden = !message;
  }

  if (startForm) {
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
  }

  const codeInput = joinForm.elements.code;
  const joinButton = joinForm.querySelector("button[type=submit]");
  const ALPHABET = codeInput.dataset.alphabet;
  const LENGTH = Number(codeInput.dataset.length);

  /* What people paste or type, as a code: the code of a pasted room or gallery link; else the text
   * in capitals without its spaces, dashes and dots. Nothing is cut to length here: a code of
   * the wrong length is said to be one (codeProblem), never shortened silently. */
  function cleanCode(text) {
    const link = text.match(/\/[pg]\/([A-Za-z0-9]+)(?:\/[\w./-]*)?(?:[?#]\S*)?\s*$/);
    if (link) return link[1].toUpperCase();
    return text.toUpperCase().replace(/[^A-Z0-9]/g, "");
  }

  /* Why a cleaned code cannot be any party's, or null. */
  function codeProblem(code) {
    if (!code) return "Type the party's join code: it is on the party's screen.";
    // What cleanCode leaves that the alphabet lacks is 0, O, 1, I or L.
    if ([...code].some((c) => !ALPHABET.includes(c))) {
      return "Join codes have no 0, O, 1, I or L (they look alike): check the code on the party's screen.";
    }
    if (code.length !== LENGTH) {
      return `A join code has ${LENGTH} characters; ${code} has ${code.length}.`;
    }
    return null;
  }

  /* Clean in place as people type or paste, keeping the caret where it was in what they typed. */
  function cleanInput() {
    const { value, selectionStart } = codeInput;
    const cleaned = cleanCode(value);
    if (cleaned !== value) {
      const before = cleanCode(value.slice(0, selectionStart ?? value.length));
      const caret = cleaned.startsWith(before) ? before.length : cleaned.length;
      codeInput.value = cleaned;
      codeInput.setSelectionRange(caret, caret);
    }
    // A finished code that cannot be right is said at once; one still being typed is not.
    const problem = codeProblem(cleaned);
    showError(joinForm, cleaned.length >= LENGTH && problem ? problem : "");
    codeInput.setAttribute("aria-invalid", String(!!(cleaned.length >= LENGTH && problem)));
  }

  codeInput.addEventListener("input", cleanInput);
  if (codeInput.value) cleanInput(); // the no-party page shows the code that was tried

  joinForm.addEventListener("submit", async (submit) => {
    submit.preventDefault();
    const code = cleanCode(codeInput.value);
    codeInput.value = code;
    const problem = codeProblem(code);
    if (problem) return refuse(problem);
    joinButton.disabled = true;
    showError(joinForm, "");
    // Ask before going: an unknown code must not lead to an error page. HEAD of the room's own
    // page answers as the room does (the room, or its join form for someone not yet in it:
    // 200; no such party: 404), with no body and nothing refused on the way.
    let status;
    try {
      status = (await fetch(`/p/${code}/`, { method: "HEAD", credentials: "same-origin" })).status;
    } catch (error) {
      return refuse(`Could not check the code (${error.message}). Try again in a moment.`);
    }
    if (status === 404) {
      return refuse(`No party has the code ${code}. Check it on the party's screen, or ask the host for the link.`);
    }
    if (status !== 200) {
      // The room would fail too (the server down or overloaded): say so here instead.
      return refuse(`Could not check the code (the server answered ${status}). Try again in a moment.`);
    }
    location.assign(`/p/${code}/`);
  });

  // Back from the room (the page may come from the back-forward cache): the buttons work again.
  window.addEventListener("pageshow", () => {
    for (const button of document.querySelectorAll("form button[type=submit]")) button.disabled = false;
  });

  function refuse(message) {
    joinButton.disabled = false;
    showError(joinForm, message);
    codeInput.setAttribute("aria-invalid", "true");
    codeInput.focus();
    codeInput.select();
  }
})();
