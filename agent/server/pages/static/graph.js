// Draws the /graph chart from the page's JSON block (no inline script: the page's
// Content-Security-Policy allows only files under /static/). Labels reach the DOM through
// uPlot's textContent, never as HTML.
(function () {
  "use strict";
  var source = document.getElementById("graph-data");
  var target = document.getElementById("chart");
  if (!source || !target || typeof uPlot === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var palette = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
  ];
  var many = data.series.length > 12;
  var series = [{ label: "time" }];
  var drawn = 0;
  data.series.forEach(function (s, i) {
    var present = 0;
    s.values.forEach(function (v) { if (v !== null) { present += 1; } });
    drawn += present;
    series.push({
      label: s.name,
      stroke: palette[i % palette.length],
      width: 1.5,
      spanGaps: false,
      // dots where a line alone would be too short to see
      points: { show: present <= 60, size: 5 },
    });
  });
  function size() {
    return { width: Math.max(target.clientWidth, 300), height: 340 };
  }
  var dims = size();
  var chart = new uPlot({
    width: dims.width,
    height: dims.height,
    series: series,
    scales: { x: { time: true } },
    axes: [{}, { size: 70 }],
    legend: { show: !many, live: true },
    cursor: { points: { size: 6 } },
  }, [data.times].concat(data.series.map(function (s) { return s.values; })), target);
  // What the browser tests read: the chart exists and how many points it was given.
  target.setAttribute("data-points", String(drawn));
  target.setAttribute("data-series", String(data.series.length));
  target.classList.add("drawn");
  var pending = null;
  window.addEventListener("resize", function () {
    if (pending) { window.cancelAnimationFrame(pending); }
    pending = window.requestAnimationFrame(function () { chart.setSize(size()); });
  });
})();
