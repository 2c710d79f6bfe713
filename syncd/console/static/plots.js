// The plots page: series from /plots/data, drawn with uPlot (served from /static).
(function () {
  var charts = [];
  function chart(el, title, labels, colors, data) {
    var series = [{}].concat(labels.map(function (l, i) {
      return {label: l, stroke: colors[i], width: 2};
    }));
    var width = Math.min(1000, el.parentElement.clientWidth || 800);
    charts.push(new uPlot({title: title, width: width, height: 260, series: series,
                           scales: {x: {time: true}}}, data, el));
  }
  function load() {
    var range = document.getElementById("range").value;
    fetch("/plots/data?range=" + range, {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (d) {
        charts.forEach(function (c) { c.destroy(); });
        charts = [];
        chart(document.getElementById("per-hour"), "per hour", ["events", "actions"],
              ["#2a6fdb", "#1a9b5b"], [d.hours, d.events, d.actions]);
        chart(document.getElementById("failures"), "per hour", ["failures"], ["#c0392b"],
              [d.hours, d.failures]);
        document.getElementById("p50").textContent = d.latency.p50;
        document.getElementById("p95").textContent = d.latency.p95;
        document.getElementById("samples").textContent = d.latency.samples;
        var table = document.getElementById("by-rule");
        table.querySelectorAll("tr.row").forEach(function (r) { r.remove(); });
        var most = d.failures_by_rule.length ? d.failures_by_rule[0][1] : 1;
        d.failures_by_rule.forEach(function (pair) {
          var tr = document.createElement("tr");
          tr.className = "row";
          var a = document.createElement("td");
          var link = document.createElement("a");
          link.href = "/activity?rule=" + encodeURIComponent(pair[0]);
          link.textContent = pair[0];
          a.appendChild(link);
          var n = document.createElement("td");
          n.className = "num";
          n.textContent = pair[1];
          var bar = document.createElement("td");
          var fill = document.createElement("div");
          fill.className = "bar";
          fill.style.width = Math.max(2, 300 * pair[1] / most) + "px";
          bar.appendChild(fill);
          tr.append(a, n, bar);
          table.appendChild(tr);
        });
        document.body.dataset.plotted = range;
      });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.getElementById("range").addEventListener("change", load);
    load();
  });
})();
