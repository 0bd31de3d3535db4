// Progress of a background job: poll its status, reload the page when it has finished.
(function () {
  var box = document.querySelector("[data-job]");
  if (!box) return;
  var bar = box.querySelector("progress"), label = box.querySelector("label");
  function poll() {
    fetch("/jobs/" + encodeURIComponent(box.dataset.job), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (job) {
        if (bar) bar.value = job.done;
        if (label) label.textContent = job.message + " (" + job.seconds + " s)";
        if (job.state === "done" || job.state === "failed") window.location.reload();
        else setTimeout(poll, 500);
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 300);
})();
// The twin page's record list fills the folder select with the chosen record's folder.
(function () {
  var rec = document.getElementById("w-record"), folder = document.getElementById("w-folder");
  if (!rec || !folder) return;
  rec.addEventListener("change", function () {
    var opt = rec.options[rec.selectedIndex];
    if (opt && opt.dataset.folder) folder.value = opt.dataset.folder;
  });
})();
