/* The room's outbox, for live.js's follow (load it after live.js): what is sent while the
 * socket is not open waits here and goes in order once it opens, and the prompts, chat lines
 * and comments sent on an open socket are kept until the server answers them, since a socket
 * can read "open" and yet be dead. Nothing in it is dropped silently: what can no longer be
 * sent is said. */
(function () {
  "use strict";

  /* What may wait while the socket is not open (before it first opens, or while it reconnects).
   * Each is something one adds or marks that is still meant, and harmless to send again, when
   * the socket is back: a prompt carries its client_id (the server makes one prompt per id), and
   * a vote, a shortlist or a pick names the value it wants, not "toggle". Chat lines and
   * comments carry a client_id too (one message per id), and a reaction names whether it is on.
   * A message with the same key as one already waiting (a second click) takes its place rather
   * than queuing twice; null keys never replace.
   * The rest act on the room as it looks at the click (mute, remove, a role, steering,
   * accepting or setting aside a proposal, cancelling a render, hiding a message, pinning the
   * question): by the time the socket is back the room may have moved on, so they are refused
   * at once, with a toast, rather than sent late. */
  const KEYS = {
    "prompt.submit": (message) => message.client_id && "prompt:" + message.client_id,
    "prompt.propose": (message) => message.client_id && "prompt:" + message.client_id,
    // A sweep carries its client_id as a prompt does: the server makes one sweep per id.
    "sweep.submit": (message) => message.client_id && "sweep:" + message.client_id,
    vote: (message) => "vote:" + message.image,
    shortlist: (message) => "shortlist:" + message.image,
    pick: (message) => "pick:" + message.image,
    "association.add": () => null,
    "palette.add": () => null,
    "chat.send": (message) => message.client_id && "chat:" + message.client_id,
    "comment.add": (message) => message.client_id && "comment:" + message.client_id,
    "reaction.set": (message) =>
      `reaction:${message.image != null ? "image:" + message.image : "prompt:" + message.prompt}:${message.reaction}`,
  };
  // What is kept after it was written on an open socket until the server answers it: what makes
  // one thing per client_id (a prompt, a sweep, a chat line, a comment), whose answer is the event that
  // carries the client_id (or an error frame naming it).
  const ANSWERED = new Set(["prompt.submit", "prompt.propose", "sweep.submit", "chat.send", "comment.add"]);
  // Sent all at once on open: kept under the server's burst of messages per connection
  // (PARTYHUB_WS_MESSAGE_BURST, 30), which refuses the rest with rate_limited.
  const MAX = 20;

  function awaitsAnswer(message) {
    return ANSWERED.has(message.type) && !!message.client_id;
  }

  /* isOpen(): whether the socket is open now; write(text): onto it; onChange(messages): what
   * waits changed; refuse(message): tell the person something was not or will not be sent. */
  function createOutbox({ isOpen, write, onChange, refuse }) {
    let closed = false; // for good (signed out, removed, no party): nothing will be sent any more
    const waiting = []; // [{key, message}], oldest first
    // Prompts, chat lines and comments sent on the socket and not answered yet (client_id ->
    // message, in the order sent). When the socket closes they go back to the front of the
    // outbox, to be sent again; a repeat of one the server did take changes nothing (one per
    // client_id). The answer is the event carrying its client_id, or an error frame naming it.
    const unanswered = new Map();

    function changed() {
      onChange(waiting.map((item) => item.message));
    }

    /* Send a message now, or keep it until the socket opens; true unless refused. */
    function send(message) {
      if (isOpen()) {
        transmit(message);
        return true;
      }
      const keyOf = KEYS[message.type];
      if (closed || !keyOf) return refuse("Not connected; try again once the room is live.");
      const key = keyOf(message);
      const index = key ? waiting.findIndex((item) => item.key === key) : -1;
      if (index >= 0) waiting[index] = { key, message };
      else if (waiting.length >= MAX) return refuse("Not connected, and too much is waiting to be sent already.");
      else waiting.push({ key, message });
      changed();
      return true;
    }

    /* Onto the open socket; a prompt, chat line or comment is kept until it is answered. */
    function transmit(message) {
      // A second click on the same prompt keeps the first one's place: the server takes the first.
      if (awaitsAnswer(message) && !unanswered.has(message.client_id)) unanswered.set(message.client_id, message);
      write(JSON.stringify(message));
    }

    /* The socket opened: what waited goes out, oldest first. */
    function flush() {
      if (!waiting.length) return;
      while (waiting.length && isOpen()) transmit(waiting.shift().message);
      changed();
    }

    /* The server answered the message with this client_id: it needs no sending again. */
    function answered(clientId) {
      unanswered.delete(clientId);
    }

    /* The socket closed: the messages it never answered go back to the front, in the order they
     * were sent, ahead of what was kept while it was not open (sent later). What no longer fits
     * under MAX is said to be lost rather than dropped silently. */
    function socketClosed() {
      if (!unanswered.size) return;
      const back = [...unanswered.values()].map((message) => ({ key: KEYS[message.type](message), message }));
      unanswered.clear();
      // A click on the same prompt while the socket was closing waits already: it goes once.
      const later = waiting.filter((item) => !back.some((sent) => sent.key === item.key));
      waiting.splice(0, waiting.length, ...back, ...later);
      const lost = waiting.splice(MAX).length;
      changed();
      if (lost) refuse(`The connection dropped: ${lost === 1 ? "1 action was" : lost + " actions were"} not sent.`);
    }

    /* Nothing will be sent any more: say what is lost rather than drop it silently. */
    function closeForGood() {
      closed = true;
      if (!waiting.length) return;
      const count = waiting.length;
      waiting.length = 0;
      changed();
      refuse(`The connection closed: ${count === 1 ? "1 action was" : count + " actions were"} not sent.`);
    }

    return { send, flush, answered, socketClosed, closeForGood };
  }

  window.PartyHub.createOutbox = createOutbox;
})();
