// gabarit console: behaviour shared by the pages that show face crops.
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
})();
