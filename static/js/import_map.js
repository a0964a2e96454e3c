// The mapping page of an import (templates/audiences/import_map.html). The server renders the page for the first
// choices and checks whatever it is sent (audiences.services.imports); this script keeps two things in step:
// - the preview of list columns: their first values split again when the list separator changes, as the import
//   splits them (audiences.attributes.list_items: items stripped, empty ones left out);
// - "Match rows to profiles by" offers only the identities a column fills (data-identity on the targets' options),
//   and moves to email, else to the first of them, when the chosen one is no longer mapped.
"use strict";

const SHOWN_CHARACTERS = 30; // as the template's truncatechars:30

function listItems(text, separator) {
  return text
    .split(separator)
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

function shown(item) {
  return item.length > SHOWN_CHARACTERS ? `${item.slice(0, SHOWN_CHARACTERS - 1)}…` : item;
}

function splitPreviews(form) {
  const select = form.querySelector('select[name="list_separator"]');
  if (!select) {
    return;
  }
  const separator = select.value;
  for (const preview of form.querySelectorAll(".list-preview[data-samples]")) {
    preview.querySelector(".list-preview-separator").textContent = separator;
    const lines = JSON.parse(preview.dataset.samples).map((sample) => {
      const line = document.createElement("li");
      const items = listItems(sample, separator);
      for (const item of items) {
        const chip = document.createElement("span");
        chip.className = "list-item";
        chip.textContent = shown(item);
        line.append(chip);
      }
      if (!items.length) {
        line.textContent = "(no item)";
      }
      return line;
    });
    preview.querySelector("ul").replaceChildren(...lines);
  }
}

function offerMappedIdentities(form) {
  const matchOn = form.querySelector('select[name="match_on"]');
  if (!matchOn) {
    return;
  }
  const mapped = [];
  for (const target of form.querySelectorAll('select[name^="target_"]')) {
    const identity = target.selectedOptions[0]?.dataset.identity;
    if (identity && !mapped.includes(identity)) {
      mapped.push(identity);
    }
  }
  if (!mapped.length) {
    // Nothing to match on yet: every choice stays open, and the server names what is missing.
    for (const option of matchOn.options) {
      option.disabled = false;
    }
    return;
  }
  for (const option of matchOn.options) {
    option.disabled = !mapped.includes(option.value);
  }
  if (!mapped.includes(matchOn.value)) {
    matchOn.value = mapped.includes("email") ? "email" : mapped[0];
  }
}

for (const form of document.querySelectorAll("form[data-import-mapping]")) {
  offerMappedIdentities(form);
  form.addEventListener("change", (event) => {
    if (event.target.name === "list_separator") {
      splitPreviews(form);
    } else if (event.target.name.startsWith("target_")) {
      offerMappedIdentities(form);
    }
  });
}
