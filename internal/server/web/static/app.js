// gabarit console: behaviour shared by the pages that show face crops or
// take photos.
"use strict";

(function () {
  // A crop the server cannot make (the image left its source, or a face
  // of a video) becomes a plain placeholder instead of a broken image.
  function placeholder(img) {
    const div = document.createElement("div");
    div.className = "crop placeholder";
    div.textContent = "No still image: the image can no longer be read from its source.";
    img.replaceWith(div);
  }

  function watch(img) {
    if (img.complete && img.naturalWidth === 0) {
      placeholder(img);
      return;
    }
    img.addEventListener("error", () => placeholder(img), { once: true });
  }

  window.gabaritWatchCrop = watch;
  document.querySelectorAll("img.crop").forEach(watch);

  // Photos are checked before they are sent: a file input says the most
  // the server takes in one request (data-max-bytes, in bytes), and a
  // larger photo is refused next to the input, with its size and the
  // limit, before any upload.
  function size(n, unit, name) {
    const v = n / unit;
    return String(v >= 100 ? Math.round(v) : Number(v.toFixed(1))) + " " + name;
  }

  function note(input) {
    let p = document.getElementById(input.id + "-size");
    if (!p) {
      p = document.createElement("p");
      p.id = input.id + "-size";
      p.className = "upload-note error-text";
      p.setAttribute("role", "alert");
      p.hidden = true;
      input.insertAdjacentElement("afterend", p);
      const by = input.getAttribute("aria-describedby");
      input.setAttribute("aria-describedby", by ? by + " " + p.id : p.id);
    }
    return p;
  }

  // tooLarge returns what is wrong with the size of files for input, or ""
  // when they may be sent.
  function tooLarge(input, files) {
    const limit = Number(input.dataset.maxBytes);
    if (!(limit > 0)) {
      return "";
    }
    const max = size(limit, 1024 * 1024, "MiB");
    const i = files.findIndex((f) => f.size > limit);
    if (i >= 0) {
      const which = files.length > 1 ? "Photo " + (i + 1) : "This photo";
      return which + " is " + size(files[i].size, 1e6, "MB") + "; the limit is " + max + ".";
    }
    const total = files.reduce((n, f) => n + f.size, 0);
    if (total > limit) {
      return "These " + files.length + " photos are " + size(total, 1e6, "MB") + " together; the limit for one request is " + max + ".";
    }
    return "";
  }

  // checkUpload shows what is wrong with the size of files next to input
  // (or clears it) and reports whether they may be sent.
  function checkUpload(input, files) {
    const msg = tooLarge(input, files);
    const p = note(input);
    p.textContent = msg;
    p.hidden = msg === "";
    input.setCustomValidity(msg);
    return msg === "";
  }

  window.gabaritCheckUpload = checkUpload;
  document.querySelectorAll('input[type="file"][data-max-bytes]').forEach((input) => {
    input.addEventListener("change", () => checkUpload(input, Array.from(input.files || [])));
  });
})();
