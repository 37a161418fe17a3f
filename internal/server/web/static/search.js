// gabarit console: the search page. It finds the faces of the chosen
// photo (POST /api/v1/detect), draws them numbered in reading order over
// the photo and offers each as a button with its thumbnail, so that the
// investigator picks one, then runs the search (POST /api/v1/searches) with
// the handle of the photo the detect step answered (the server kept the
// photo and its faces: nothing is sent or analysed twice; a handle no
// longer held is answered probe_gone, and the photo is sent instead) and
// shows the results without reloading. A photo larger than the server
// takes is refused before any upload (app.js). Without scripts, the form
// posts to /search and the server renders the same results.
"use strict";

(function () {
  const form = document.getElementById("search-form");
  if (!form) {
    return;
  }
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  const input = document.getElementById("photo");
  const zone = document.getElementById("dropzone");
  const preview = document.getElementById("preview");
  const stage = document.getElementById("stage");
  const img = document.getElementById("preview-img");
  const noPreview = document.getElementById("no-preview");
  const boxes = document.getElementById("boxes");
  const status = document.getElementById("detect-status");
  const choice = document.getElementById("face-choice");
  const options = document.getElementById("face-options");
  const faceField = document.getElementById("face-number");
  const faceInput = document.getElementById("face");
  const errorBox = document.getElementById("search-error");
  const button = document.getElementById("search-button");
  const area = document.getElementById("results-area");

  let file = null;
  let objectURL = null;
  let selected = -1; // -1: the best-quality face
  let picked = false; // the investigator chose the face (else the server takes the best-quality one)
  let detecting = 0; // the detection in flight, to ignore stale answers
  let probe = ""; // the server's handle on the photo and its faces, from the detect step

  // The face number is chosen on the photo instead, and a dropped photo
  // need not be in the file input.
  faceField.hidden = true;
  input.required = false;

  function showError(msg) {
    errorBox.textContent = msg;
    errorBox.hidden = !msg;
  }

  async function post(url, body) {
    const resp = await fetch(url, {
      method: "POST",
      body: body,
      headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
      credentials: "same-origin",
    });
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      data = null;
    }
    if (!resp.ok) {
      if (resp.status === 401) {
        throw new Error("Your session has ended: sign in again.");
      }
      const msg = data && data.message ? data.message : "the server answered " + resp.status;
      const err = new Error(msg.charAt(0).toUpperCase() + msg.slice(1) + ".");
      err.code = data && data.code;
      throw err;
    }
    return data;
  }

  // The preview of a file the browser cannot show (HEIC, say) is hidden
  // rather than left as a broken image; the server still reads it.
  img.addEventListener("error", () => {
    if (objectURL && img.src === objectURL) {
      stage.hidden = true;
      noPreview.hidden = false;
    }
  });

  function select(i) {
    selected = i;
    faceInput.value = i >= 0 ? String(i) : "";
    boxes.querySelectorAll(".box").forEach((b) => {
      const on = Number(b.dataset.index) === i;
      b.classList.toggle("selected", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
    options.querySelectorAll(".face-option").forEach((b) => {
      const on = Number(b.dataset.index) === i;
      b.classList.toggle("selected", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }

  // drawFaces shows the faces of the detect answer, numbered in reading
  // order as the server numbers them: a box over the photo for the
  // pointer, and a button with the face's thumbnail for everyone (the
  // boxes repeat the buttons, so they are hidden from assistive
  // technologies and the keyboard).
  function drawFaces(data) {
    boxes.replaceChildren();
    options.replaceChildren();
    probe = data.probe || "";
    const faces = data.faces || [];
    if (faces.length === 0) {
      status.textContent = "No face was found in this photo: choose another photo.";
      choice.hidden = true;
      button.disabled = true;
      return;
    }
    button.disabled = false;
    // The best-quality face is chosen, as the server does (the larger on a tie).
    let best = 0;
    faces.forEach((f, n) => {
      const [x, y, w, h] = f.box;
      const top = faces[best];
      if (f.quality > top.quality || (f.quality === top.quality && w * h > top.box[2] * top.box[3])) {
        best = n;
      }
      const name = "Face " + (f.index + 1) + " of " + faces.length;
      const pick = () => {
        picked = true;
        select(f.index);
      };
      const b = document.createElement("button");
      b.type = "button";
      b.className = "box";
      b.dataset.index = String(f.index);
      b.tabIndex = -1;
      b.setAttribute("aria-hidden", "true");
      b.style.left = (100 * x) / data.width + "%";
      b.style.top = (100 * y) / data.height + "%";
      b.style.width = (100 * w) / data.width + "%";
      b.style.height = (100 * h) / data.height + "%";
      b.setAttribute("aria-label", name);
      const num = document.createElement("span");
      num.className = "num";
      num.textContent = String(f.index + 1);
      b.appendChild(num);
      b.addEventListener("click", pick);
      boxes.appendChild(b);

      const opt = document.createElement("button");
      opt.type = "button";
      opt.className = "face-option";
      opt.dataset.index = String(f.index);
      opt.setAttribute("aria-label", name);
      opt.setAttribute("aria-pressed", "false");
      opt.title = name + ", detection quality " + f.quality.toFixed(2);
      if (f.thumb) {
        const im = document.createElement("img");
        im.src = f.thumb;
        im.alt = "";
        im.width = 48;
        im.height = 48;
        opt.appendChild(im);
      }
      opt.appendChild(text("span", "num", String(f.index + 1)));
      opt.addEventListener("click", pick);
      options.appendChild(opt);
    });
    if (faces.length === 1) {
      status.textContent = "One face found.";
      choice.hidden = true;
    } else {
      status.textContent = faces.length + " faces found, numbered left to right and top to bottom: choose the one to search (the best-quality one is chosen).";
      choice.hidden = false;
    }
    select(faces[best].index);
  }

  async function setFile(f) {
    if (!f) {
      return;
    }
    if (f.type && !f.type.startsWith("image/")) {
      showError("This file is not a photo.");
      return;
    }
    probe = "";
    if (window.gabaritCheckUpload && !window.gabaritCheckUpload(input, [f])) {
      // Too large: said next to the input, and not sent.
      file = null;
      ++detecting;
      preview.hidden = true;
      showError("");
      return;
    }
    file = f;
    showError("");
    if (objectURL) {
      URL.revokeObjectURL(objectURL);
    }
    objectURL = URL.createObjectURL(f);
    stage.hidden = false;
    noPreview.hidden = true;
    img.src = objectURL;
    preview.hidden = false;
    boxes.replaceChildren();
    options.replaceChildren();
    choice.hidden = true;
    picked = false;
    select(-1);
    status.textContent = "Finding the faces…";
    const mine = ++detecting;
    const fd = new FormData();
    fd.append("photo", f);
    try {
      const data = await post("/api/v1/detect", fd);
      if (mine === detecting) {
        drawFaces(data);
      }
    } catch (e) {
      if (mine === detecting) {
        status.textContent = "";
        showError(e.message);
      }
    }
  }

  input.addEventListener("change", () => setFile(input.files[0]));

  ["dragenter", "dragover"].forEach((ev) =>
    zone.addEventListener(ev, (e) => {
      e.preventDefault();
      zone.classList.add("over");
    }),
  );
  ["dragleave", "drop"].forEach((ev) =>
    zone.addEventListener(ev, (e) => {
      e.preventDefault();
      zone.classList.remove("over");
    }),
  );
  zone.addEventListener("drop", (e) => {
    const files = e.dataTransfer && e.dataTransfer.files;
    if (files && files.length > 0) {
      try {
        input.files = files; // keep the form whole for the fallback
      } catch (err) {
        // Some browsers refuse: the file is kept in the script.
      }
      setFile(files[0]);
    }
  });

  function text(tag, cls, s) {
    const el = document.createElement(tag);
    if (cls) {
      el.className = cls;
    }
    el.textContent = s;
    return el;
  }

  function timecode(ms) {
    const s = Math.floor(ms / 1000);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0") + "." + Math.floor((ms % 1000) / 100);
  }

  function fact(dl, term, value, cls) {
    dl.appendChild(text("dt", "", term));
    const dd = text("dd", cls || "", "");
    if (value instanceof Node) {
      dd.appendChild(value);
    } else {
      dd.textContent = value;
    }
    dl.appendChild(dd);
    return dd;
  }

  function link(href, s) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = s;
    return a;
  }

  // strangers, count and rate format numbers as the server's templates do.
  function strangers(v) {
    if (v == null || Number.isNaN(v) || v < 0) {
      return "an unknown number of";
    }
    if (v < 0.001) {
      return "fewer than 0.001";
    }
    if (v < 10) {
      return "about " + String(Number(v.toPrecision(2)));
    }
    return "about " + count(Math.round(v));
  }

  function count(n) {
    return Number(n).toLocaleString("en-US");
  }

  function rate(v) {
    return String(Number((v * 100).toPrecision(3))) + "%";
  }

  function badge(cls, s) {
    return text("span", "badge " + cls, s);
  }

  function notice(cls, strong, rest) {
    const div = text("div", "notice warn " + cls, "");
    div.setAttribute("role", "note");
    div.appendChild(text("strong", "", strong));
    div.appendChild(document.createTextNode(" " + rest));
    return div;
  }

  // renderResults builds the same markup as the server's "results" template.
  function renderResults(res) {
    const sec = document.createElement("section");
    sec.id = "results";
    sec.className = "results";
    sec.setAttribute("aria-live", "polite");
    sec.appendChild(text("h2", "", "Results"));
    const rec = "/searches/" + res.search_id;
    const note = text("p", "audit-note", "Search ");
    note.appendChild(link(rec, "#" + res.search_id));
    note.appendChild(
      document.createTextNode(
        " is recorded in the audit log (entry " + res.audit_id + "), with its purpose, your name and a hash of the photo — never the photo." +
          " Faces in the photo: " + res.probe_faces + ".",
      ),
    );
    sec.appendChild(note);
    if (res.exploratory) {
      const ex = notice("exploratory", "Exploratory search",
        "below the calibrated operating point: its weak results are not matches, and many are strangers.");
      if (res.exploratory_reason) {
        ex.appendChild(document.createTextNode(" Reason given: "));
        ex.appendChild(text("q", "reason", res.exploratory_reason));
      }
      sec.appendChild(ex);
    }
    const decision = text("div", "decision", "");
    const pf = res.probe_face;
    if (pf) {
      const fig = document.createElement("figure");
      fig.className = "probe-figure";
      const im = document.createElement("img");
      im.className = "crop probe";
      im.src = "/api/v1/searches/" + res.search_id + "/probe.jpg";
      im.alt = "The face searched";
      im.width = 120;
      im.height = 120;
      fig.appendChild(im);
      fig.appendChild(text("figcaption", "", "Face searched: " + (pf.index + 1) + " of " + res.probe_faces + " (" + pf.chosen + "), quality " + pf.quality.toFixed(2)));
      decision.appendChild(fig);
    }
    const meta = text("dl", "meta", "");
    const op = text("div", "", "");
    op.appendChild(text("dt", "", "Operating point"));
    const opv = text("dd", "", res.operating_point.toFixed(3) + " ");
    opv.appendChild(text("span", "muted small", "alone; " + res.group_operating_point.toFixed(3) +
      " with look-alikes (second best) · FPIR " + rate(res.fpir) + ", " + count(res.gallery) + " faces"));
    op.appendChild(opv);
    meta.appendChild(op);
    const th = text("div", "", "");
    th.appendChild(text("dt", "", "Threshold"));
    const thv = text("dd", "", res.threshold.toFixed(3));
    if (res.exploratory) {
      thv.appendChild(document.createTextNode(" "));
      thv.appendChild(badge("warn", "exploratory"));
    }
    th.appendChild(thv);
    meta.appendChild(th);
    decision.appendChild(meta);
    sec.appendChild(decision);
    if (pf && pf.warning) {
      const w = pf.warning;
      sec.appendChild(notice("probe-warning", "Low-quality probe face.", w.charAt(0).toUpperCase() + w.slice(1) + "."));
    }
    const results = res.results || [];
    if (results.length === 0) {
      const p = text("p", "nomatch", "");
      p.appendChild(text("strong", "", "No match."));
      p.appendChild(document.createTextNode(" No face in the declared collections is similar enough to the face searched."));
      sec.appendChild(p);
      return sec;
    }
    const intro = text("p", "count", "");
    intro.id = "results-count";
    intro.appendChild(text("strong", "", res.exploratory ?
      res.above + " result" + (res.above !== 1 ? "s" : "") + " at or above the threshold (matches and weak leads)" :
      res.above + " match" + (res.above !== 1 ? "es" : "")));
    intro.appendChild(document.createTextNode(" (showing " + (results.length === 1 ? "1" : "1–" + results.length) + ")"));
    if (res.above > results.length) {
      intro.appendChild(document.createTextNode(" — "));
      intro.appendChild(link(rec + "#results", "see every one on the search's page"));
    }
    intro.appendChild(document.createTextNode(". Most similar first. A result is a lead, not an identification: two verifiers must confirm it on the "));
    intro.appendChild(link(rec, "search's page"));
    intro.appendChild(document.createTextNode("."));
    sec.appendChild(intro);
    const ul = document.createElement("ul");
    ul.className = "grid";
    results.forEach((h, i) => {
      const li = document.createElement("li");
      li.className = "card hit";
      li.dataset.band = h.band;
      li.appendChild(text("span", "rank", String(i + 1)));
      if (h.time_code_ms != null) {
        li.appendChild(text("div", "crop placeholder", "Video frame at " + timecode(h.time_code_ms) + ", no still image"));
      } else {
        const im = document.createElement("img");
        im.className = "crop";
        im.src = "/api/v1/faces/" + h.face_id + "/crop";
        im.alt = "Face " + h.face_id + ", result " + (i + 1);
        im.width = 180;
        im.height = 180;
        if (window.gabaritWatchCrop) {
          window.gabaritWatchCrop(im);
        }
        li.appendChild(im);
      }
      const dl = document.createElement("dl");
      dl.className = "facts";
      const strength = text("span", "", "");
      if (h.band) {
        strength.appendChild(badge("band band-" + h.band, h.band));
        strength.appendChild(document.createTextNode(" "));
      }
      strength.appendChild(text("strong", "similarity", h.similarity.toFixed(3)));
      fact(dl, "Strength", strength);
      if (h.band) {
        fact(dl, "Strangers", strangers(h.expected_strangers) + " strangers expected at this score in a gallery of " + count(res.gallery) + " faces", "strangers");
      }
      fact(dl, "Source", "#" + h.source_id + " · " + h.legal_basis);
      fact(dl, "Where", h.locator, "locator").title = h.locator;
      fact(dl, "Face", String(h.face_id) + (h.time_code_ms != null ? " at " + timecode(h.time_code_ms) : ""));
      li.appendChild(dl);
      ul.appendChild(li);
    });
    sec.appendChild(ul);
    return sec;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showError("");
    if (!file && input.files.length > 0) {
      file = input.files[0];
    }
    if (!file) {
      showError("Choose a photo first.");
      return;
    }
    if (window.gabaritCheckUpload && !window.gabaritCheckUpload(input, [file])) {
      return; // too large: said next to the input
    }
    const purpose = document.getElementById("purpose").value.trim();
    if (!purpose) {
      showError("State the purpose of the search: it is recorded in the audit log.");
      document.getElementById("purpose").focus();
      return;
    }
    // The photo held since the detect step is searched by its handle; the
    // photo itself goes only when there is none, or it is no longer held.
    const formData = (withPhoto) => {
      const fd = new FormData();
      if (withPhoto) {
        fd.append("photo", file);
      } else {
        fd.append("probe", probe);
      }
      fd.append("purpose", purpose);
      fd.append("case", document.getElementById("case").value.trim());
      fd.append("k", document.getElementById("k").value);
      if (picked && selected >= 0) {
        fd.append("face", String(selected));
      }
      // An examiner's exploratory search: the fields exist only for them.
      ["threshold", "reason"].forEach((name) => {
        const el = document.getElementById(name);
        if (el && el.value.trim() !== "") {
          fd.append(name, el.value.trim());
        }
      });
      return fd;
    };
    button.disabled = true;
    const label = button.textContent;
    button.textContent = "Searching…";
    try {
      let res;
      try {
        res = await post("/api/v1/searches", formData(!probe));
      } catch (err) {
        if (!probe || err.code !== "probe_gone") {
          throw err;
        }
        probe = "";
        res = await post("/api/v1/searches", formData(true));
      }
      probe = ""; // a handle serves one search
      area.replaceChildren(renderResults(res));
      area.scrollIntoView({ block: "nearest" });
    } catch (err) {
      showError(err.message);
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  });
})();
