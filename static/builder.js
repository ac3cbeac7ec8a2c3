// The segment builder's value chips and pickers: what htmx cannot do alone.
// Each chosen value is a chip holding one hidden input ("+value" included,
// "-value" excluded); toggling, removing and adding chips edits those inputs
// and fires an "input" event so the live preview recounts.
(function () {
  "use strict";

  function editorOf(el) { return el.closest(".chips-editor"); }

  function fill(template, value) { return (template || "").split("{value}").join(value); }

  function changed(editor) {
    editor.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function setChipState(chip, exclude) {
    const editor = editorOf(chip);
    const input = chip.querySelector("input[type=hidden]");
    const toggle = chip.querySelector(".chip-toggle");
    const label = chip.querySelector(".chip-label").textContent;
    input.value = (exclude ? "-" : "+") + input.value.slice(1);
    chip.classList.toggle("exclude", exclude);
    chip.classList.toggle("include", !exclude);
    toggle.setAttribute("aria-pressed", exclude ? "true" : "false");
    toggle.setAttribute("aria-label", fill(exclude ? editor.dataset.excludeText : editor.dataset.includeText, label));
    toggle.title = exclude ? editor.dataset.excludeTitle : editor.dataset.includeTitle;
  }

  function hasValue(editor, value) {
    return Array.from(editor.querySelectorAll(".chips input[type=hidden]"))
      .some((input) => input.value.slice(1) === value);
  }

  function addChip(editor, value, label) {
    value = value.trim();
    if (!value || hasValue(editor, value)) return false;
    const template = editor.querySelector("template.chip-template");
    const chip = template.content.firstElementChild.cloneNode(true);
    chip.querySelector("input[type=hidden]").value = "+" + value;
    chip.querySelector(".chip-label").textContent = label || value;
    chip.querySelector(".chip-label").title = value;
    chip.querySelector(".chip-remove").setAttribute("aria-label", fill(editor.dataset.removeText, label || value));
    editor.querySelector("ul.chips").appendChild(chip);
    setChipState(chip, false);
    changed(editor);
    return true;
  }

  function closeSuggestions(editor) {
    const box = editor.querySelector(".suggestions");
    if (box) box.innerHTML = "";
    const search = editor.querySelector(".chip-search");
    if (search) search.setAttribute("aria-expanded", "false");
  }

  function suggestionButtons(editor) {
    return Array.from(editor.querySelectorAll(".suggestions button.suggestion"));
  }

  function fold(text) { return (text || "").trim().toLocaleLowerCase(); }

  function chooseTyped(editor, search) {
    const typed = search.value.trim();
    const buttons = suggestionButtons(editor);
    let pick = buttons.find((b) => fold(b.dataset.value) === fold(typed) || fold(b.dataset.label) === fold(typed));
    if (!pick && editor.dataset.free !== "1" && buttons.length) pick = buttons[0];
    if (pick) {
      addChip(editor, pick.dataset.value, pick.dataset.label);
    } else if (typed && editor.dataset.free === "1") {
      addChip(editor, typed, typed);
    } else {
      return;
    }
    search.value = "";
    closeSuggestions(editor);
    refocusClosed(search);
  }

  // Menus (Add block, Add filter, Add condition) close on Escape and on a click elsewhere.
  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach((menu) => {
      if (menu !== except) menu.removeAttribute("open");
    });
  }

  // Focus back in the search after a value is chosen (or Escape) must not reopen the
  // list over the next filter: the search asks again only when typed into or refocused.
  function refocusClosed(search) {
    search.dataset.quiet = "1";
    search.focus({ preventScroll: true });
  }

  // A click outside a picker closes its suggestions.
  function closeOtherPickers(target) {
    document.querySelectorAll(".picker").forEach((picker) => {
      if (!picker.contains(target)) {
        const editor = editorOf(picker);
        if (editor && picker.querySelector(".suggestions").innerHTML !== "") closeSuggestions(editor);
      }
    });
  }

  document.addEventListener("click", (event) => {
    closeMenus(event.target.closest("details.menu"));
    closeOtherPickers(event.target);
    const toggle = event.target.closest(".chip-toggle");
    if (toggle) {
      const chip = toggle.closest(".chip");
      setChipState(chip, !chip.classList.contains("exclude"));
      changed(editorOf(chip));
      return;
    }
    const remove = event.target.closest(".chip-remove");
    if (remove) {
      const editor = editorOf(remove);
      remove.closest(".chip").remove();
      changed(editor);
      editor.querySelector(".chip-search").focus();
      return;
    }
    const suggestion = event.target.closest("button.suggestion");
    if (suggestion) {
      const editor = editorOf(suggestion);
      addChip(editor, suggestion.dataset.value, suggestion.dataset.label);
      const search = editor.querySelector(".chip-search");
      search.value = "";
      closeSuggestions(editor);
      refocusClosed(search);
      return;
    }
    const apply = event.target.closest("[data-apply-filters]");
    if (apply) {
      document.getElementById("preview-members-flag").value = "1";
      htmx.trigger(document.body, "apply-filters");
      return;
    }
    const copy = event.target.closest("[data-copy]");
    if (copy) {
      const source = document.querySelector(copy.dataset.copy);
      const status = copy.parentElement.querySelector(".copied");
      const text = source ? source.textContent : "";
      const done = () => { if (status) status.textContent = copy.dataset.copiedText || "✓"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, () => selectText(source));
      } else {
        selectText(source);
      }
    }
  });

  function selectText(node) {
    const range = document.createRange();
    range.selectNodeContents(node);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (!(target instanceof Element) || !target.closest("#builder-wrap")) return;
    const menu = target.closest("details.menu[open]");
    if (menu && event.key === "Escape") {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
      return;
    }
    const editor = editorOf(target);
    if (target.classList.contains("chip-search")) {
      if (event.key === "Enter") {
        event.preventDefault();
        chooseTyped(editor, target);
      } else if (event.key === "ArrowDown") {
        const first = suggestionButtons(editor)[0];
        if (first) { event.preventDefault(); first.focus(); }
      } else if (event.key === "Escape") {
        closeSuggestions(editor);
      } else if (event.key === "Backspace" && target.value === "") {
        const last = editor.querySelector(".chips .chip:last-child .chip-remove");
        if (last) last.focus();
      }
      return;
    }
    if (target.classList.contains("suggestion")) {
      const buttons = suggestionButtons(editor);
      const n = buttons.indexOf(target);
      if (event.key === "ArrowDown" && n < buttons.length - 1) { event.preventDefault(); buttons[n + 1].focus(); }
      if (event.key === "ArrowUp") {
        event.preventDefault();
        if (n > 0) buttons[n - 1].focus(); else editor.querySelector(".chip-search").focus();
      }
      if (event.key === "Escape") { closeSuggestions(editor); refocusClosed(editor.querySelector(".chip-search")); }
      return;
    }
    // Enter in a filter input must not save the whole segment.
    if (event.key === "Enter" && target.matches("input:not([type=submit]):not([type=button])")) {
      event.preventDefault();
    }
  });

  // Suggestions close when focus leaves their picker.
  document.addEventListener("focusout", (event) => {
    const picker = event.target.closest && event.target.closest(".picker");
    if (!picker) return;
    setTimeout(() => {
      if (!picker.contains(document.activeElement)) {
        delete picker.querySelector(".chip-search").dataset.quiet;
        const editor = editorOf(picker);
        if (editor) closeSuggestions(editor);
      }
    }, 150);
  });

  document.addEventListener("htmx:configRequest", (event) => {
    const elt = event.detail.elt;
    if (!(elt instanceof Element) || !elt.classList.contains("chip-search")) return;
    // a stage picker offers the stages of the pipelines chosen in its block
    if (elt.dataset.pipelines) {
      const block = elt.closest(".block");
      const pipelines = [];
      block.querySelectorAll("select.field-select").forEach((select) => {
        if (select.value !== "pipeline") return;
        select.closest(".filter").querySelectorAll(".chips input[type=hidden]").forEach((input) => {
          if (input.value[0] === "+") pipelines.push(input.value.slice(1));
        });
      });
      if (pipelines.length) event.detail.parameters.pipeline = pipelines;
    }
    // a segment cannot contain itself: do not offer it
    if (elt.dataset.excludeSegment) {
      const own = document.querySelector("input[name=segment_code]");
      if (own) event.detail.parameters.exclude = own.value;
    }
  });

  // A preview computed for an older layout of the builder (blocks or filters
  // added or removed since) would put its messages at the wrong filters: drop it.
  // A newer preview is on its way (the re-render triggers one).
  document.addEventListener("htmx:beforeSwap", (event) => {
    // suggestions someone is moving through with the arrow keys stay put
    const into = event.detail.target;
    if (into && into.classList && into.classList.contains("suggestions") && into.contains(document.activeElement)) {
      event.detail.shouldSwap = false;
      return;
    }
    const xhr = event.detail.xhr;
    const rev = xhr && xhr.getResponseHeader("X-Builder-Rev");
    const builder = document.getElementById("builder");
    if (rev !== null && rev !== undefined && builder && rev !== builder.dataset.rev) {
      event.detail.shouldSwap = false;
    }
  });

  // The count on screen is marked pending from a change until the preview for
  // that change (or a later one) is shown: people see it is being recounted.
  let wanted = 0;
  let shown = 0;
  function markPending() {
    wanted += 1;
    const result = document.getElementById("preview-result");
    if (result) result.dataset.pending = "1";
  }
  document.addEventListener("input", (event) => {
    const target = event.target;
    if (target instanceof Element && target.closest("#builder-wrap") && !target.classList.contains("chip-search")) {
      markPending();
    }
  });
  document.addEventListener("htmx:beforeRequest", (event) => {
    const elt = event.detail.elt;
    if (elt instanceof Element && elt.classList.contains("chip-search") && elt.dataset.quiet === "1") {
      const typing = elt.value.trim() !== "";
      delete elt.dataset.quiet;
      if (!typing) { event.preventDefault(); return; }
    }
    const path = event.detail.requestConfig && event.detail.requestConfig.path;
    if (path && path.indexOf("/segments/builder") !== -1) markPending();
    if (elt && elt.id === "preview") {
      event.detail.xhr.previewFor = wanted;
      previewXhr = event.detail.xhr;
    }
  });
  // Leaving the page while a preview is counting: the server stops it in the
  // database (a newer preview stops an older one by itself).
  let previewXhr = null;
  window.addEventListener("pagehide", () => {
    const preview = document.getElementById("preview");
    const token = document.querySelector('meta[name="csrf-token"]');
    if (!previewXhr || previewXhr.readyState === 4 || !preview || !token || !navigator.sendBeacon) return;
    const form = new FormData();
    form.append("csrf_token", token.content);
    navigator.sendBeacon(preview.dataset.cancelUrl, form);
  });
  document.addEventListener("htmx:afterSwap", (event) => {
    const xhr = event.detail.xhr;
    if (event.detail.target && event.detail.target.id === "preview-result" && xhr && xhr.previewFor !== undefined) {
      shown = Math.max(shown, xhr.previewFor);
      if (shown >= wanted) delete event.detail.target.dataset.pending;
    }
  });

  // A pasted definition that does not load: its message is beside the text, the caret
  // at the error, and saving waits until the text is fixed (loaded) or cleared.
  function jsonState() {
    const problems = document.getElementById("json-problems");
    const text = document.getElementById("definition-json");
    const save = document.getElementById("save-button");
    if (!problems || !text) return;
    const error = problems.querySelector("#json-error");
    if (save) save.disabled = Boolean(error);
    if (error) {
      text.setAttribute("aria-invalid", "true");
      text.closest("details").open = true;
      const where = parseInt(error.dataset.where, 10);
      text.focus();
      if (!Number.isNaN(where)) text.setSelectionRange(where, where);
    } else {
      text.removeAttribute("aria-invalid");
    }
  }
  document.addEventListener("DOMContentLoaded", jsonState);
  document.addEventListener("input", (event) => {
    if (event.target.id === "definition-json" && event.target.value.trim() === "") {
      document.getElementById("json-problems").innerHTML = "";
      jsonState();
    }
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (target && target.id === "json-problems") jsonState();
    const elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    const loading = elt && (elt.getAttribute("hx-vals") || "").indexOf("load_json") !== -1;
    if (target && target.id === "builder-wrap" && loading) {
      // loaded: the builder shows it now, and "Current definition" has its JSON
      document.getElementById("definition-json").value = "";
      document.getElementById("json-problems").innerHTML = "";
      jsonState();
    }
    if (target && target.classList && target.classList.contains("suggestions")) {
      const search = target.closest(".picker").querySelector(".chip-search");
      search.setAttribute("aria-expanded", target.querySelector("button.suggestion") ? "true" : "false");
      // answers that arrive after focus moved away are not shown
      if (document.activeElement !== search && !target.contains(document.activeElement)) target.innerHTML = "";
    }
  });
})();
