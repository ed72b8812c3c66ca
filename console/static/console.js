// The console's only script: live parts by plain fetch, nothing loaded from elsewhere.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// fetch for the console's own endpoints: the session cookie goes along, and the
// CSRF token in its header (state-changing requests are refused without it).
function consoleFetch(url, options) {
  const opts = Object.assign({credentials: "same-origin"}, options || {});
  opts.headers = Object.assign({"X-CSRF-TOKEN": csrfToken()}, opts.headers || {});
  return fetch(url, opts);
}

// <div data-live-url="..." data-live-every="2000">: replaced by the fragment the URL
// renders, every few seconds; with data-live-until-done, until the fragment says data-live-done
// (then the page is loaded again, so that its status and actions follow).
function startLive(element) {
  const every = parseInt(element.dataset.liveEvery || "2000", 10);
  const done = () => "liveUntilDone" in element.dataset && element.querySelector("[data-live-done]");
  const tick = () => {
    consoleFetch(element.dataset.liveUrl).then(r => r.ok ? r.text() : Promise.reject(r.status)).then(html => {
      element.innerHTML = html;
      if (done()) window.location.reload();
      else setTimeout(tick, every);
    }).catch(() => setTimeout(tick, every * 2));
  };
  if (!done()) setTimeout(tick, every);
}

// <form data-preview-url="..." data-preview-target="#id">: on every change of the form,
// POST it to the preview URL and show the fragment returned.
function startPreview(form) {
  const target = document.querySelector(form.dataset.previewTarget);
  let timer = null, serial = 0;
  const refresh = () => {
    const mine = ++serial;
    target.setAttribute("aria-busy", "true");
    consoleFetch(form.dataset.previewUrl, {method: "POST", body: new FormData(form)})
      .then(r => r.text()).then(html => {
        if (mine !== serial) return;
        target.innerHTML = html;
        target.removeAttribute("aria-busy");
      });
  };
  const later = () => { clearTimeout(timer); timer = setTimeout(refresh, 300); };
  form.addEventListener("input", later);
  form.addEventListener("change", later);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live-url]").forEach(startLive);
  document.querySelectorAll("form[data-preview-url]").forEach(startPreview);
});
