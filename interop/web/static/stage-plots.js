// The model page's simulate/reproduce stage figures: fetched after the page, drawn with plotly.js,
// each with a link to the same figure as PNG.
(function () {
  var box = document.getElementById("stage-plots");
  if (!box || !window.Plotly) return;
  fetch(box.dataset.src, { credentials: "same-origin" })
    .then(function (r) { return r.ok ? r.json() : []; })
    .then(function (figs) {
      figs.forEach(function (fig, k) {
        var figure = document.createElement("figure"), div = document.createElement("div");
        var caption = document.createElement("figcaption");
        figure.className = "plot";
        div.className = "figure";
        caption.textContent = fig.layout.title.text;
        figure.appendChild(div);
        figure.appendChild(caption);
        box.appendChild(figure);
        var link = document.createElement("a");
        link.href = box.dataset.png + k + ".png";
        link.textContent = "PNG: " + fig.layout.title.text;
        var p = document.createElement("p");
        p.appendChild(link);
        box.appendChild(p);
        window.Plotly.newPlot(div, fig.data, fig.layout, { responsive: true, displaylogo: false });
      });
      box.dataset.ready = String(figs.length);
    });
})();
