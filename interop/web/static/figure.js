// Draw the page's figure (a Plotly figure as JSON in #figure-data) with the locally served plotly.js.
(function () {
  var data = document.getElementById("figure-data"), target = document.getElementById("figure");
  if (!data || !target || !window.Plotly) return;
  var fig = JSON.parse(data.textContent);
  window.Plotly.newPlot(target, fig.data, fig.layout, { responsive: true, displaylogo: false })
    .then(function () { target.dataset.ready = "1"; });
})();
