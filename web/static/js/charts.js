/* Draws each <canvas data-chart> with Chart.js when the page loaded it (the tables
   beside them carry the same numbers and links without JavaScript). A click on a bar,
   point or slice opens the register filtered to it: the chart's `links` hold one URL
   per dataset and label. */
(function () {
  "use strict";
  if (!window.Chart) { return; }
  document.documentElement.classList.add("charts");
  var palette = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var spec;
    try { spec = JSON.parse(canvas.getAttribute("data-chart")); } catch (e) { return; }
    var round = spec.type === "doughnut" || spec.type === "pie";
    var datasets = spec.datasets.map(function (set, i) {
      var colour = round ? spec.labels.map(function (_, j) { return palette[j % palette.length]; })
                         : palette[i % palette.length];
      return { label: set.label, data: set.data, backgroundColor: colour, borderColor: colour, fill: false, spanGaps: true };
    });
    var chart = new window.Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: round ? {} : {
          x: { stacked: !!spec.stacked },
          y: { stacked: !!spec.stacked, beginAtZero: true, ticks: { precision: 0 } }
        },
        onHover: function (event, elements) {
          canvas.style.cursor = elements.length ? "pointer" : "default";
        },
        onClick: function (event, elements) {
          if (!elements.length) { return; }
          var hit = elements[0];
          var links = spec.links[hit.datasetIndex] || [];
          if (links[hit.index]) { window.location.assign(links[hit.index]); }
        }
      }
    });
    canvas.setAttribute("data-drawn", "1");
    canvas.chart = chart;
  });
})();
