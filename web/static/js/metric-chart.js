// The metric page's history chart: the readings as a line, and each improvement's
// baseline and target as a band between two lines. The data is the page's own JSON
// (script#metric-chart-data), the same the tables show.
(function () {
  'use strict';

  var canvas = document.getElementById('metric-chart');
  var source = document.getElementById('metric-chart-data');
  if (!canvas || !source || typeof window.Chart === 'undefined') {
    return;
  }
  var data = JSON.parse(source.textContent);
  var texts = JSON.parse(document.getElementById('metric-chart-texts').textContent);
  var labels = data.points.map(function (p) { return p.period; });
  var palette = ['#1e7b45', '#8a5a00', '#7a3db8', '#b42318', '#0f766e', '#9d174d'];

  function constant(value) {
    return labels.map(function () { return value; });
  }

  var datasets = [{
    label: data.code + ' (' + texts.value + ')',
    data: data.points.map(function (p) { return p.value; }),
    borderColor: '#1d5fbf',
    backgroundColor: '#1d5fbf',
    tension: 0.2,
    pointRadius: 3,
    order: 0
  }];
  data.bands.forEach(function (band, i) {
    var colour = palette[i % palette.length];
    var baseline = band.baseline === null ? band.target : band.baseline;
    var target = band.target === null ? band.baseline : band.target;
    datasets.push({
      label: band.number + ' ' + texts.baseline,
      data: constant(baseline),
      borderColor: colour,
      borderDash: [6, 4],
      borderWidth: 1,
      pointRadius: 0,
      fill: false,
      order: 1
    });
    datasets.push({
      label: band.number + ' ' + texts.target,
      data: constant(target),
      borderColor: colour,
      backgroundColor: colour + '26',
      borderWidth: 2,
      pointRadius: 0,
      fill: '-1',
      order: 1
    });
  });

  new window.Chart(canvas, {
    type: 'line',
    data: { labels: labels, datasets: datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: 'index', intersect: false },
      plugins: { legend: { position: 'bottom' } },
      scales: { y: { grace: '5%', title: { display: true, text: texts.value } } }
    }
  });
}());
