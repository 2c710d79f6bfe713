// Times: the server writes UTC in <time datetime="...">; show them in the viewer's zone.
function syncdLocalTimes(root) {
  root.querySelectorAll("time[datetime]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when)) {
      el.title = el.textContent;
      el.textContent = when.toLocaleString(undefined, {dateStyle: "medium", timeStyle: "medium"});
      el.dataset.local = "1";  // shown in the viewer's zone (tests wait for this)
    }
  });
}
document.addEventListener("DOMContentLoaded", function () { syncdLocalTimes(document); });
document.addEventListener("htmx:afterSwap", function (e) { syncdLocalTimes(e.target); });
