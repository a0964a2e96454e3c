// The campaign form: only the channel configurations the chosen category may use are offered. A configuration's
// option says what it is kept for (data-purpose: marketing, transactional or both); the server refuses a mismatch
// all the same (campaigns.services.lifecycle).
"use strict";

function offerCompatibleConfigurations(form) {
  const category = form.querySelector('input[name="category"]:checked');
  const select = form.querySelector('select[name="channel_configuration"]');
  if (!category || !select) {
    return;
  }
  for (const option of select.options) {
    const purpose = option.dataset.purpose;
    const fits = !purpose || purpose === "both" || purpose === category.value;
    option.hidden = !fits;
    option.disabled = !fits;
    if (!fits && option.selected) {
      select.value = "";
    }
  }
}

for (const form of document.querySelectorAll("form[data-configuration-filter]")) {
  offerCompatibleConfigurations(form);
  form.addEventListener("change", (event) => {
    if (event.target.name === "category") {
      offerCompatibleConfigurations(form);
    }
  });
}
