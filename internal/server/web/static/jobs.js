// gabarit console: live progress of ingest jobs on the sources page. While
// a job is queued or running it polls GET /api/v1/jobs every second and
// redraws the jobs table; when a job ends it refreshes the sources' counts
// from GET /api/v1/sources. Without scripts, reloading the page shows the
// same table.
"use strict";

(function () {
  const table = document.getElementById("jobs");
  if (!table) {
    return;
  }
  const body = document.getElementById("jobs-body");
  const status = document.getElementById("jobs-status");
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  const canCancel = table.dataset.canCancel === "1";
  const active = (s) => s === "queued" || s === "running";
  let timer = null;
  let wasActive = table.dataset.active === "1";

  function el(tag, cls, s) {
    const e = document.createElement(tag);
    if (cls) {
      e.className = cls;
    }
    if (s !== undefined) {
      e.textContent = s;
    }
    return e;
  }

  function cell(tr, cls, s) {
    const td = el("td", cls, s);
    tr.appendChild(td);
    return td;
  }

  function stamp(iso) {
    if (!iso) {
      return "";
    }
    return iso.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC");
  }

  function row(j) {
    const tr = el("tr");
    tr.dataset.job = String(j.id);
    tr.dataset.state = j.state;
    cell(tr, "", "#" + j.id);
    cell(tr, "", "#" + j.source_id);
    const st = cell(tr, "");
    st.appendChild(el("span", "badge state-" + j.state, j.state));
    if (j.error) {
      st.appendChild(el("div", "small error-text", j.error));
    }
    if (j.cancelled_by) {
      st.appendChild(el("div", "muted small", "by " + j.cancelled_by));
    }
    const pc = cell(tr, "progress-cell");
    const bar = el("progress");
    bar.max = j.total_files > 0 ? j.total_files : 1;
    bar.value = j.total_files > 0 ? j.files_seen : j.state === "done" ? 1 : 0;
    if (j.total_files === 0 && j.state === "running") {
      bar.removeAttribute("value"); // indeterminate while the files are counted
    }
    pc.appendChild(bar);
    pc.appendChild(el("span", "small", j.files_seen + (j.total_files > 0 ? " / " + j.total_files : "") + " files"));
    cell(tr, "num", String(j.images));
    cell(tr, "num", String(j.faces));
    cell(tr, "num", j.skipped + " · " + j.failed_files);
    cell(tr, "num", String(j.images_per_second));
    const by = cell(tr, "small", j.started_by);
    by.appendChild(el("br"));
    by.appendChild(document.createTextNode(stamp(j.started)));
    const act = cell(tr, "");
    if (canCancel && active(j.state)) {
      const f = el("form", "inline");
      f.method = "post";
      f.action = "/jobs/" + j.id + "/cancel";
      const h = el("input");
      h.type = "hidden";
      h.name = "csrf_token";
      h.value = csrf;
      f.appendChild(h);
      const b = el("button", "button danger small", "Cancel");
      b.type = "submit";
      f.appendChild(b);
      act.appendChild(f);
    }
    const rows = [tr];
    if (j.errors && j.errors.length > 0) {
      const er = el("tr", "job-errors");
      er.appendChild(el("td"));
      const td = el("td");
      td.colSpan = 9;
      const d = el("details");
      d.appendChild(el("summary", "", j.errors.length + " file" + (j.errors.length > 1 ? "s" : "") + " not ingested"));
      const ul = el("ul", "small");
      j.errors.forEach((fe) => {
        const li = el("li");
        li.appendChild(el("code", "", fe.file));
        li.appendChild(document.createTextNode(": " + fe.reason));
        ul.appendChild(li);
      });
      d.appendChild(ul);
      td.appendChild(d);
      er.appendChild(td);
      rows.push(er);
    }
    return rows;
  }

  async function getJSON(url) {
    const resp = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!resp.ok) {
      throw new Error("the server answered " + resp.status);
    }
    return resp.json();
  }

  async function refreshCounts() {
    const srcs = await getJSON("/api/v1/sources");
    srcs.forEach((s) => {
      const tr = document.querySelector('tr[data-source="' + s.id + '"]');
      if (!tr) {
        return;
      }
      tr.querySelector('[data-count="images"]').textContent = String(s.images);
      tr.querySelector('[data-count="faces"]').textContent = String(s.faces);
    });
  }

  async function poll() {
    timer = null;
    let jobs;
    try {
      jobs = await getJSON("/api/v1/jobs");
    } catch (e) {
      status.textContent = "Progress cannot be read now (" + e.message + "); retrying.";
      timer = setTimeout(poll, 3000);
      return;
    }
    status.textContent = "";
    const rows = [];
    jobs.forEach((j) => rows.push(...row(j)));
    if (rows.length > 0) {
      body.replaceChildren(...rows);
    }
    const now = jobs.some((j) => active(j.state));
    table.dataset.active = now ? "1" : "";
    if (wasActive && !now) {
      status.textContent = "All jobs have ended.";
      try {
        await refreshCounts();
      } catch (e) {
        status.textContent = "All jobs have ended; reload the page for the new counts.";
      }
    }
    wasActive = now;
    if (now) {
      timer = setTimeout(poll, 1000);
    }
  }

  if (wasActive) {
    timer = setTimeout(poll, 1000);
  }
})();
