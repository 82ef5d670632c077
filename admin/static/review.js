// Keyboard shortcuts of the review queue (served from /static, so the CSP needs no
// 'unsafe-inline'). Every action is also a plain form on the page; this file only moves the
// focus and presses those forms' buttons.
//
//   j / k  next / previous item
//   a      approve the focused item (with the variant chosen on its card)
//   r      reject: opens the item's reason field
//   e      edit: opens the item's edit form
//
// Shortcuts never fire while typing in a field, nor with a modifier key held.
(function () {
  "use strict";

  function typing(target) {
    if (!target || !target.closest) return false;
    if (target.isContentEditable) return true;
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  function cards() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-review-item]"));
  }

  function current(list) {
    var active = document.activeElement;
    for (var i = 0; i < list.length; i++) {
      if (list[i] === active || list[i].contains(active)) return i;
    }
    return -1;
  }

  function focusCard(card) {
    card.focus();
    card.scrollIntoView({ block: "nearest" });
  }

  function focusField(details) {
    var field = details.querySelector("textarea, input:not([type=hidden])");
    if (field) field.focus();
    return field !== null;
  }

  function openSection(card, name) {
    var details = card.querySelector("details[data-section='" + name + "']");
    if (!details) return;
    details.open = true;
    // the edit form is loaded when its section opens: focus it once it is there
    if (!focusField(details)) {
      details.addEventListener("htmx:afterSettle", function () { focusField(details); }, { once: true });
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    if (typing(event.target)) return;
    var list = cards();
    if (list.length === 0) return;
    var at = current(list);
    var key = event.key;
    if (key === "j" || key === "k") {
      var next = at < 0 ? 0 : at + (key === "j" ? 1 : -1);
      if (next >= 0 && next < list.length) focusCard(list[next]);
      event.preventDefault();
      return;
    }
    if (at < 0) return;
    var card = list[at];
    if (key === "a") {
      var approve = card.querySelector("[data-action='approve']");
      if (approve && !approve.disabled) approve.click();
      event.preventDefault();
    } else if (key === "r") {
      openSection(card, "reject");
      event.preventDefault();
    } else if (key === "e") {
      openSection(card, "edit");
      event.preventDefault();
    }
  });
})();
