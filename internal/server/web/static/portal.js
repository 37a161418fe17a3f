// gabarit rights portal: checks the chosen selfies before the request is
// sent (POST /api/v1/portal/selfies-check), lists the result of each photo
// and whether they show one person, and disables the submit button while a
// chosen photo is unusable or the photos would be refused together. Photos
// larger than the server takes are refused before any upload (app.js).
// Nothing is kept by the check. Without scripts the form posts as it is,
// and the server refuses a photo without a face.
"use strict";

(function () {
  const form = document.getElementById("portal-form");
  const input = document.getElementById("selfie");
  const list = document.getElementById("selfie-checks");
  const button = document.getElementById("portal-submit");
  if (!form || !input || !list || !button) {
    return;
  }
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  let round = 0; // the files being checked, to ignore the answers of an earlier choice

  // check posts the photos and returns the server's answer, or null when
  // they could not be checked (the server then decides when they are sent).
  async function check(files) {
    const body = new FormData();
    files.forEach((f) => body.append("selfie", f));
    const headers = { Accept: "application/json" };
    if (csrf) {
      headers["X-CSRF-Token"] = csrf;
    }
    try {
      const resp = await fetch("/api/v1/portal/selfies-check", {
        method: "POST",
        body: body,
        headers: headers,
        credentials: "same-origin",
      });
      if (!resp.ok) {
        return null;
      }
      return await resp.json();
    } catch (e) {
      return null;
    }
  }

  function show(item, n, text, kind) {
    item.textContent = "photo " + n + ": " + text;
    item.className = kind;
  }

  input.addEventListener("change", async () => {
    const mine = ++round;
    const files = Array.from(input.files || []);
    list.replaceChildren();
    list.hidden = files.length === 0;
    button.disabled = false;
    if (window.gabaritCheckUpload && !window.gabaritCheckUpload(input, files)) {
      list.hidden = true; // too large: said next to the input, and not sent
      button.disabled = true;
      return;
    }
    const items = files.map((f, i) => {
      const li = document.createElement("li");
      show(li, i + 1, "checking…", "pending");
      list.append(li);
      return li;
    });
    if (files.length === 0) {
      return;
    }
    const answer = await check(files);
    if (mine !== round) {
      return;
    }
    const answers = answer && Array.isArray(answer.photos) && answer.photos.length === files.length ? answer.photos : files.map(() => null);
    let unusable = 0;
    answers.forEach((a, i) => {
      if (a === null) {
        show(items[i], i + 1, "could not be checked now; it is checked when you send the request", "warn");
      } else if (!a.usable) {
        unusable++;
        show(items[i], i + 1, a.message, "bad");
      } else if (a.message) {
        show(items[i], i + 1, a.message, "warn");
      } else {
        show(items[i], i + 1, "ok", "ok");
      }
    });
    if (answer && answer.one_person === false) {
      const li = document.createElement("li");
      li.id = "selfies-together";
      li.textContent = answer.message;
      li.className = "bad";
      list.append(li);
      unusable++;
    }
    button.disabled = unusable > 0;
  });
})();
