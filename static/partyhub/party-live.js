/* The party room's last script: which event redraws which part of the room, then it starts
 * following the party and loads the models. Last, so every part's functions are on PartyHub.room
 * before the first snapshot or event can arrive. */
(function () {
  "use strict";
  const PH = window.PartyHub;
  const room = PH.room;
  if (!room) return; // the join form's page: party-room.js set no room up
  const { state, el } = room;

  // --- Live events ----------------------------------------------------------------------------

  // The connection's state and what waits in the outbox show together in the top bar.
  const connection = { name: "connecting", detail: undefined, waiting: 0 };

  function showConnection() {
    PH.showConnection(el.connection, connection.name, connection.detail, connection.waiting);
  }

  room.live = PH.follow(state, {
    onReset: renderAll,
    onEvent,
    onProgress: (frame) => room.updateCard(frame.render),
    onError: (frame) => {
      room.talkRefused(frame); // a chat line or comment of mine: it stays in view, "not sent"
      room.showToast(frame);
    },
    onStatus: (name, detail) => {
      Object.assign(connection, { name, detail });
      showConnection();
      if (name === "closed") room.talkClosed();
    },
    onPresence: () => room.renderMembers(),
    onOutbox: (messages) => {
      connection.waiting = messages.length;
      showConnection();
      room.showWaiting(messages);
      room.showTalkWaiting(messages);
    },
  });

  function onEvent(event) {
    switch (event.type) {
      case "member.joined":
      case "role.changed":
      case "member.muted":
        room.renderMembers();
        room.renderCards(); // names and what I may do (pick, cancel) show on every card
        room.renderMyLimits();
        room.renderComposerMode();
        room.renderProposals();
        room.renderPalette();
        room.renderPublishing();
        room.renderTalk(); // names and roles in the chat; who may write, hide and pin
        break;
      case "party.published":
        room.renderPublishing();
        break;
      case "member.removed":
        room.renderMembers();
        if (state.me && event.member.id === state.me.id) {
          // Whoever removed me (a facilitator or the Prompt Master): the room is read-only now.
          room.renderMyLimits();
          room.renderCards();
          room.renderPalette();
          room.renderTalk();
        }
        break;
      case "prompt.added":
      case "prompt.proposed":
        room.renderTree();
        room.renderProposals();
        if (state.me && event.prompt.author === state.me.id) room.clearComposerIfSent(event.prompt);
        break;
      case "proposal.accepted":
      case "proposal.set_aside":
        room.renderTree();
        room.renderProposals();
        break;
      case "party.steered":
        room.renderComposerMode();
        break;
      case "palette.added":
        room.renderPalette();
        room.renderSweepControls(); // its chips to sweep across
        break;
      case "sweep.added":
        room.sweepAdded(event.sweep); // its card comes with its cells' render.queued
        break;
      case "render.queued":
        room.updateCard(event.render.id);
        break;
      case "render.done":
        room.updateCard(event.render);
        room.renderTree(); // thumbnails
        break;
      case "render.retrying":
      case "render.failed":
      case "render.cancelled":
      case "render.filtered":
        room.updateCard(event.render);
        break;
      case "vote.changed":
      case "image.shortlisted":
      case "image.picked": {
        const image = state.images.get(event.image);
        if (image) room.updateCard(image.render);
        break;
      }
      case "association.added":
        room.renderAssociations();
        break;
      case "chat.posted":
        room.chatPosted(event.message);
        break;
      case "comment.added":
      case "message.hidden":
      case "reaction.changed":
        room.talkChanged(event);
        break;
      case "question.pinned":
        room.renderQuestion();
        break;
    }
  }

  function renderAll() {
    room.renderMembers();
    room.renderMyLimits();
    room.renderComposerMode();
    room.renderCards();
    room.renderTree();
    room.renderProposals();
    room.renderAssociations();
    room.renderPalette();
    room.renderPublishing();
    room.renderTalk();
  }

  room.loadModels();
})();
