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

// A 401 from the console means the session ended (expired or signed out elsewhere):
// say so once at the top of the page, with a link to the sign-in that comes back here,
// instead of showing the refusal page inside a box or trying again.
const SESSION_ENDED = "Your session ended: sign in again";

function sessionEnded() {
  let notice = document.getElementById("session-ended");
  if (!notice) {
    notice = document.createElement("p");
    notice.id = "session-ended";
    notice.className = "error session-ended";
    notice.setAttribute("role", "alert");
    const link = document.createElement("a");
    link.href = "/console/sign-in?next=" + encodeURIComponent(window.location.pathname + window.location.search);
    link.textContent = SESSION_ENDED;
    notice.appendChild(link);
    const main = document.querySelector("main") || document.body;
    main.insertBefore(notice, main.firstChild);
  }
  return notice;
}

class SessionEnded extends Error {}

// The answer's text, or a rejection: SessionEnded on 401 (the notice is shown), the status otherwise.
function answerText(r) {
  if (r.status === 401) { sessionEnded(); return Promise.reject(new SessionEnded()); }
  return r.ok ? r.text() : Promise.reject(r.status);
}

// <div data-live-url="..." data-live-every="2000">: replaced by the fragment the URL
// renders, every few seconds; with data-live-until-done, until the fragment says data-live-done
// (then the page is loaded again, so that its status and actions follow).
function startLive(element) {
  const every = parseInt(element.dataset.liveEvery || "2000", 10);
  const done = () => "liveUntilDone" in element.dataset && element.querySelector("[data-live-done]");
  const tick = () => {
    consoleFetch(element.dataset.liveUrl).then(answerText).then(html => {
      element.innerHTML = html;
      if (done()) window.location.reload();
      else setTimeout(tick, every);
    }).catch(error => { if (!(error instanceof SessionEnded)) setTimeout(tick, every * 2); });
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
      .then(answerText).then(html => {
        if (mine !== serial) return;
        target.innerHTML = html;
        target.removeAttribute("aria-busy");
      }).catch(() => { if (mine === serial) target.removeAttribute("aria-busy"); });
  };
  const later = () => { clearTimeout(timer); timer = setTimeout(refresh, 300); };
  form.addEventListener("input", later);
  form.addEventListener("change", later);
}

// A form posted with an ended session would answer with the refusal page and lose what was
// typed: before it goes, ask whether the session still lives (which also renews its cookie);
// if not, keep the page as it is and show the notice.
function guardSubmit(form) {
  form.addEventListener("submit", event => {
    if (form.dataset.sessionChecked) return;
    event.preventDefault();
    const submitter = event.submitter;
    consoleFetch("/console/session").then(r => {
      if (r.status === 401) { sessionEnded(); return; }
      form.dataset.sessionChecked = "1";
      form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
    }, () => { form.dataset.sessionChecked = "1"; form.requestSubmit(); });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live-url]").forEach(startLive);
  document.querySelectorAll("form[data-preview-url]").forEach(startPreview);
  document.querySelectorAll('form[method="post"] input[name="csrf_token"]').forEach(input => guardSubmit(input.form));
});
