/* Text limits that never cut. A field with data-max-chars="N" has no maxlength, which would cut a
 * long paste silently. Past N characters (code points after trimming, as the server counts) a
 * count shows under it in red ("205 / 200 characters: shorten it by 5"), and its form does not
 * submit until it is shortened. Every page loads it (base.html). */
(function () {
  "use strict";
  const number = (n) => n.toLocaleString("en-US");
  const notes = new WeakMap(); // input -> its count, made the first time it is over

  function check(input) {
    const max = Number(input.dataset.maxChars);
    const length = [...input.value.trim()].length;
    const over = length > max;
    let note = notes.get(input);
    if (!note || !note.isConnected) {
      if (!over) return true;
      note = document.createElement("span");
      note.className = "hint chars chars-over";
      note.dataset.over = "true";
      note.setAttribute("role", "status");
      // Under the row, not inside it, where the field shares a line with its button.
      (input.closest(".inline-form") || input).after(note);
      notes.set(input, note);
    }
    note.hidden = !over;
    note.textContent = over ? `${number(length)} / ${number(max)} characters: shorten it by ${number(length - max)}` : "";
    input.setCustomValidity(over ? `At most ${number(max)} characters; this has ${number(length)}.` : "");
    input.setAttribute("aria-invalid", String(over));
    return !over;
  }

  document.addEventListener("input", (event) => {
    if (event.target.matches && event.target.matches("[data-max-chars]")) check(event.target);
  });
  // Before the form's own handlers (capture), forms with novalidate and scripted ones included.
  document.addEventListener(
    "submit",
    (event) => {
      for (const input of event.target.querySelectorAll("[data-max-chars]")) {
        if (check(input)) continue;
        event.preventDefault();
        event.stopImmediatePropagation();
        input.focus();
        return;
      }
    },
    true,
  );
})();
