// Keyboard shortcuts of the annotation page. The page works without this file: the form is a
// plain POST. Keys are ignored while typing in a text field (Escape leaves the field).
// 1-4 vote at once; the arrows only select a side (Enter then submits); u takes the last vote
// back.
(function () {
  "use strict";
  var VOTE_KEYS = { "1": "left", "2": "right", "3": "tie", "4": "both_bad" };
  var SELECT_KEYS = { "ArrowLeft": "left", "ArrowRight": "right" };

  function form() { return document.getElementById("vote-form"); }

  function pick(value) {
    var f = form();
    if (!f) return null;
    var radio = f.querySelector('input[name="choice"][value="' + value + '"]');
    if (radio) { radio.checked = true; }
    return radio;
  }

  function submit(f) {
    f = f || form();
    if (!f) return;
    var button = f.querySelector("button[type=submit]");
    if (button && button.disabled) return;  // a request is already in flight
    // A fast key press can beat htmx to a freshly swapped form; process it first so the vote
    // still goes through htmx (process is idempotent).
    if (window.htmx) { window.htmx.process(f); }
    if (typeof f.requestSubmit === "function") { f.requestSubmit(button || undefined); }
    else { f.submit(); }
  }

  function toggleGuidelines() {
    var panel = document.getElementById("guidelines");
    if (panel) { panel.open = !panel.open; if (panel.open) panel.scrollIntoView({block: "nearest"}); }
  }

  // The second click of a double click must not land on the next item's Submit button,
  // which has just replaced the first one: ignore clicks on it for a moment after a swap.
  var swappedAt = 0;
  document.addEventListener("htmx:afterSwap", function () {
    swappedAt = Date.now();
    // htmx puts focus back on the element with the same id in the new content (the skip
    // reason box after a skip), which would swallow the next key: give it to the item instead.
    var active = document.activeElement;
    var area = document.getElementById("item-area");
    if (area && (!active || active === document.body || area.contains(active))) {
      if (active && active.blur) active.blur();
      area.focus({preventScroll: true});
    }
  });
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest && event.target.closest("#submit-vote");
    if (button && Date.now() - swappedAt < 400) { event.preventDefault(); event.stopPropagation(); }
  }, true);

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.metaKey || (event.ctrlKey && event.key !== "Enter")) return;
    var target = event.target;
    var typing = target && (target.tagName === "TEXTAREA" ||
      (target.tagName === "INPUT" && target.type === "text"));
    if (typing) {
      if (event.key === "Escape") { target.blur(); }
      else if (event.key === "Enter" && (event.ctrlKey || target.tagName === "INPUT")) {
        event.preventDefault(); submit();
      }
      return;
    }
    if (event.key === "g" || event.key === "?") { event.preventDefault(); toggleGuidelines(); return; }
    if (event.key === "u") {
      var undo = document.getElementById("undo-form");
      if (undo) { event.preventDefault(); submit(undo); }
      return;
    }
    if (!form()) return;
    if (VOTE_KEYS[event.key]) {
      event.preventDefault();
      if (pick(VOTE_KEYS[event.key])) submit();
      return;
    }
    if (SELECT_KEYS[event.key]) { event.preventDefault(); pick(SELECT_KEYS[event.key]); return; }
    if (event.key === "s") {
      event.preventDefault();
      pick("skip");
      var reason = document.getElementById("id_skip_reason");
      if (reason) reason.focus();
      return;
    }
    if (event.key === "r") {
      event.preventDefault();
      var rationale = document.getElementById("id_rationale");
      if (rationale) rationale.focus();
      return;
    }
    if (event.key === "Enter") { event.preventDefault(); submit(); }
  });
})();
